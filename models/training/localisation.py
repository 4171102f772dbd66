"""Score a model's class-activation maps against the NIH expert boxes, fast enough to compare training
experiments before a full rebuild: the CAM peak (export.py's rule, the reader's too) inside a box, plus where
the peaks sit (1.1.0 puts 30 of 31 on the heart's side of the image). Each model is run with its own
preprocessing (the manifest next to the ONNX file, or the checkpoint's config.json).

Usage (from the repository root):
  PYTHONPATH=models/training python models/training/localisation.py --data ../shared/data --onnx models/xray-reader.onnx
  PYTHONPATH=models/training python models/training/localisation.py --data ../shared/data --checkpoint models/build/model.pt
"""
import argparse
import json
import os

import numpy as np
import torch

import data
import export
import net


def torch_runner(checkpoint):
    with open(os.path.join(os.path.dirname(checkpoint), "config.json")) as f:
        config = json.load(f)
    data.configure(config)
    model = net.XrayNet(net.load_imagenet_backbone(), output_stride=config.get("output_stride", 32))
    model.load_state_dict(torch.load(checkpoint, map_location="cpu"))
    model.eval()

    def run(xs):
        with torch.no_grad():
            x = torch.from_numpy(np.stack(xs).astype(np.float32))[:, None]
            _, cam, _, _, _ = model(x)
        return {"cam": cam.numpy()}

    return run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("XRAY_DATA", "../shared/data"))
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--onnx")
    src.add_argument("--checkpoint")
    args = ap.parse_args()
    torch.set_num_threads(2)
    if args.onnx:
        data.configure_for_onnx(args.onnx)
        run = export.Runner(args.onnx)
    else:
        run = torch_runner(args.checkpoint)
    recs = data.load_records(args.data)
    loc = export.localisation(run, recs)
    rows = loc.pop("per_image")
    us = np.array([r["peak"][0] for r in rows])
    boxed = {r["rel"]: r for r in recs if r["bbox"]}
    widths = np.array([r["width"] for r in rows])
    right = us / widths > 0.5
    left_box = np.array([
        np.mean([(b[0] + b[2] / 2) for b in export.parse_boxes(boxed[r["file"]]["bbox"])]) < w / 2
        for r, w in zip(rows, widths)])
    hits = np.array([r["hit"] for r in rows])
    loc.update({
        "peaks_in_image_right_half": int(right.sum()),
        "boxes_in_image_left_half": int(left_box.sum()),
        "hits_among_left_boxes": int(hits[left_box].sum()),
        "hits_among_right_boxes": int(hits[~left_box].sum()),
    })
    print(json.dumps(loc, indent=1))


if __name__ == "__main__":
    main()
