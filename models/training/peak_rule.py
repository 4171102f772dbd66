"""Which point of the reader's map to report as a finding's peak: the maximum of the upsampled map (the rule
until session 31) or the heat-weighted centre of the hot region holding it (src/regions.rs, hot_centre;
export.hot_centre_peak). Both are scored on the shipped model's map (CAM x sigmoid(opacity)) with the rules
opacity_head.py scores heads by:
- the 31 NIH expert boxes, on the films and on one simulated photo of each (export.photo_view);
- synthetic opacities drawn into the validation normals (blobs, the head's training shape, and the shapes it
  never saw), originals and photographed apart, for each seed given (opacity_head.py's validation uses 7).

Usage (from the repository root; about a minute per seed on 2 cores):
  PYTHONPATH=models/training python models/training/peak_rule.py --data ../shared/data --seeds 7 21
"""
import argparse
import json
import os

import cv2
import numpy as np
import onnxruntime as ort

import data
import export
import opacity_head as oh

RULES = {"argmax": export.argmax_peak, "hot_centre": export.hot_centre_peak}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("XRAY_DATA", "../shared/data"))
    ap.add_argument("--model", default="models/xray-reader.onnx")
    ap.add_argument("--seeds", type=int, nargs="+", default=[7])
    args = ap.parse_args()
    data.configure_for_onnx(args.model)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(args.model, so, providers=["CPUExecutionProvider"])

    def reader_map(g):
        cam, opacity = sess.run(["cam", oh.OUTPUT], {"image": data.to_input(g)[None, None]})
        return oh.localisation_map(cam[0, 0], opacity[0, 0])

    hits = {}

    def add(kind, rule, hit):
        hits.setdefault(kind, {}).setdefault(rule, []).append(bool(hit))

    recs = data.load_records(args.data)
    for j, r in enumerate([r for r in recs if r["bbox"]]):
        img = cv2.imread(r["path"], cv2.IMREAD_GRAYSCALE)
        H, W = img.shape
        top, bottom, left, right = data.flat_border(img) if data.TRIM else (0, H, 0, W)
        bx = export.parse_boxes(r["bbox"])
        views = (("nih_boxes", img[top:bottom, left:right], (top, bottom, left, right)),
                 ("nih_boxes_photos", export.photo_view((99, 0, j), img), (0, H, 0, W)))
        for kind, view, (t, b, l, rt) in views:
            m = reader_map(view)
            for rule, peak in RULES.items():
                u, v = peak(m)
                add(kind, rule, export.in_boxes(l + u * (rt - l), t + v * (b - t), bx))
    val = [r for r in recs if r["label"] == 0 and r["val"]]
    for seed in args.seeds:
        for name, offset, shapes in (("blob", 1, (oh.blob,)), ("other_shapes", 3, oh.OTHER_SHAPES)):
            rng = np.random.default_rng(seed + offset)
            for g, y, photo, _ in oh.samples(rng, val, (seed, offset + 1), shapes=shapes):
                if y.max() == 0:
                    continue
                m = reader_map(g)
                for rule, peak in RULES.items():
                    u, v = peak(m)
                    add(f"{name}_{'photos' if photo else 'originals'}_seed{seed}", rule,
                        y[min(int(v * 14), 13), min(int(u * 14), 13)] >= 0.5)
    out = {kind: {"n": len(next(iter(d.values()))), **{rule: int(np.sum(h)) for rule, h in d.items()}}
           for kind, d in hits.items()}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
