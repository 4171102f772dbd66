"""Which map and which point of it the reader reports as a finding's peak (and follows for its regions and
heatmap). Maps: "cam_x_opacity", the CAM scaled to [0, 1] times sigmoid(opacity) (the reader's until session
31), "opacity", sigmoid(opacity) alone (the manifest's regions.cam_exponent = 0, since session 31), and
"opacity_x_lungs", that times the lung prior (the manifest's regions.lung_prior, since session 32;
lung_prior.py). Points: "argmax", the maximum of the upsampled map (the rule until session 31), and
"hot_centre", the heat-weighted centre of the hot region holding it (src/regions.rs, hot_centre;
export.hot_centre_peak). Scored on the shipped model with the rules opacity_head.py scores heads by:
- the 31 NIH expert boxes, on the films and on simulated photos of them (export.photo_view, one per photo seed
  in --photo-seeds; opacity_head.py uses 99 alone);
- how often the peak lies near the image's edge (outer_band) or on its midline (midline) on the 338 NIH
  pneumonia films;
- synthetic opacities drawn into the validation normals (blobs, the head's training shape, and the shapes it
  never saw), originals and photographed apart, for each seed given (opacity_head.py's validation uses 7).

Usage (from the repository root; about two minutes per seed on 2 cores):
  PYTHONPATH=models/training python models/training/peak_rule.py --data ../shared/data --seeds 7 21 31 \
      --photo-seeds 99 98 97
"""
import argparse
import json
import os

import numpy as np
import onnxruntime as ort

import data
import export
import opacity_head as oh

RULES = {"argmax": export.argmax_peak, "hot_centre": export.hot_centre_peak}
# name: (regions.cam_exponent, whether the manifest's regions.lung_prior weighs it)
MAPS = {"cam_x_opacity": (1.0, False), "opacity": (0.0, False), "opacity_x_lungs": (0.0, True)}


def outer_band(u, v):
    """A peak near the image's edge (outside 15-85 % of the width or 15-80 % of the height): peripheral
    disease (costophrenic angles, chest wall, apices) or off the lungs (under the diaphragm, a corner)."""
    return u < 0.15 or u > 0.85 or v < 0.15 or v > 0.8


def midline(u):
    """A peak on the middle 16 % of the image's width: mostly the trachea, mediastinum, heart or spine on a
    PA or AP film (paramediastinal disease is rarer)."""
    return 0.42 < u < 0.58


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("XRAY_DATA", "../shared/data"))
    ap.add_argument("--model", default="models/xray-reader.onnx")
    ap.add_argument("--seeds", type=int, nargs="*", default=[7])
    ap.add_argument("--photo-seeds", type=int, nargs="+", default=[99])
    args = ap.parse_args()
    data.configure_for_onnx(args.model)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(args.model, so, providers=["CPUExecutionProvider"])
    with open(os.path.splitext(args.model)[0] + ".manifest.json") as f:
        lungs = np.array(json.load(f)["regions"]["lung_prior"], np.float32)

    hits = {}

    def score(g, checks):
        """Every map x rule on input g, one forward pass; checks maps each set's name to hit(u, v), whether a
        peak at normalised (u, v) counts for it (is on the lesion, say)."""
        cam, opacity = sess.run(["cam", oh.OUTPUT], {"image": data.to_input(g)[None, None]})
        for name, (exponent, weighed) in MAPS.items():
            m = oh.localisation_map(cam[0, 0], opacity[0, 0], exponent, lungs if weighed else None)
            for rule, peak in RULES.items():
                u, v = peak(m)
                for kind, hit in checks.items():
                    hits.setdefault(kind, {}).setdefault(f"{name}/{rule}", []).append(bool(hit(u, v)))

    recs = data.load_records(args.data)
    for j, r in enumerate([r for r in recs if r["bbox"]]):
        img, (top, bottom, left, right) = data.read_with_frame(r["path"])
        H, W = img.shape
        bx = export.parse_boxes(r["bbox"])
        views = [("nih_boxes", img[top:bottom, left:right], (top, bottom, left, right))]
        views += [("nih_boxes_photos", export.photo_view((s, 0, j), img), (0, H, 0, W)) for s in args.photo_seeds]
        for kind, view, (t, b, l, rt) in views:
            score(view, {kind: lambda u, v: export.in_boxes(l + u * (rt - l), t + v * (b - t), bx)})
    # not hit rates: how often the peak lies in the outer band or on the midline, on every NIH pneumonia film
    # (training ones too)
    for r in [r for r in recs if r["source"] == "nih" and r["label"] == 1]:
        img, (top, bottom, left, right) = data.read_with_frame(r["path"])
        H, W = img.shape
        film = img[top:bottom, left:right]
        score(film, {
            "nih_pneumonia_peaks_in_the_outer_band":
                lambda u, v: outer_band((left + u * (right - left)) / W, (top + v * (bottom - top)) / H),
            "nih_pneumonia_peaks_on_the_midline": lambda u, v: midline((left + u * (right - left)) / W),
        })
    val = [r for r in recs if r["label"] == 0 and r["val"]]
    for seed in args.seeds:
        for name, offset, shapes in (("blob", 1, (oh.blob,)), ("other_shapes", 3, oh.OTHER_SHAPES)):
            rng = np.random.default_rng(seed + offset)
            for g, y, photo, _ in oh.samples(rng, val, (seed, offset + 1), shapes=shapes):
                if y.max() == 0:
                    continue
                score(g, {f"{name}_{'photos' if photo else 'originals'}_seed{seed}":
                          lambda u, v: y[min(int(v * 14), 13), min(int(u * 14), 13)] >= 0.5})
    out = {kind: {"n": len(next(iter(d.values()))), **{k: int(np.sum(h)) for k, h in d.items()}}
           for kind, d in hits.items()}
    print(json.dumps(out, indent=1))
    combos = list(next(iter(hits.values())))
    print(f"{'set':34s}" + "".join(f"{c:>28s}" for c in combos))
    for kind, d in hits.items():
        print(f"{kind:34s}" + "".join(f"{int(np.sum(d[c])):>20d} / {len(d[c]):<5d}" for c in combos))


if __name__ == "__main__":
    main()
