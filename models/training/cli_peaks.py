"""Where the reader itself puts the `abnormal` finding's peak and regions, through its CLI (not the Python
pipeline: the reader decodes, detects the film and resizes in Rust): on the 31 NIH films with expert boxes,
whether the peak lies in a box; on the 338 NIH pneumonia films, how often the peak lies near the image's
edge (peak_rule.outer_band) or on its midline (peak_rule.midline), and how many positive reads come without
any highlighted region.

Usage (from the repository root, after `cargo build --release`; about a minute on 2 cores):
  PYTHONPATH=models/training python models/training/cli_peaks.py --data ../shared/data
  (--manifest PATH reads with another manifest for the bundled ONNX file, to compare reader settings)
"""
import argparse
import json
import os

import data
import evaluate_cli
import export
import peak_rule


def read(args, paths):
    extra = ["--model", args.model, "--manifest", args.manifest] if args.manifest else []
    return evaluate_cli.read_reports(args.bin, paths, 2, extra)


def abnormal(report):
    return next(f for f in report["findings"] if f["label"] == "abnormal")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("XRAY_DATA", "../shared/data"))
    ap.add_argument("--bin", default="target/release/xray-reader")
    ap.add_argument("--model", default="models/xray-reader.onnx", help="with --manifest")
    ap.add_argument("--manifest", help="read the ONNX file --model with this manifest instead of the bundled pair")
    args = ap.parse_args()
    recs = data.load_records(args.data)
    boxed = [r for r in recs if r["bbox"]]
    hits, misses = 0, []
    for r, rep in zip(boxed, read(args, [r["path"] for r in boxed])):
        x, y = abnormal(rep)["peak"]
        if export.in_boxes(x, y, export.parse_boxes(r["bbox"])):
            hits += 1
        else:
            misses.append(os.path.basename(r["path"]))
    pneumonia = [r for r in recs if r["source"] == "nih" and r["label"] == 1]
    band, mid, positives, without_region, refused = 0, 0, 0, 0, 0
    for rep in read(args, [r["path"] for r in pneumonia]):
        f = abnormal(rep)
        if not rep["accepted"]:
            refused += 1
        (x, y), w, h = f["peak"], rep["image"]["width"], rep["image"]["height"]
        band += peak_rule.outer_band(x / w, y / h)
        mid += peak_rule.midline(x / w)
        if f["positive"] and rep["accepted"]:
            positives += 1
            without_region += not f["regions"]
    result = {
        "manifest": args.manifest or "bundled",
        "nih_boxes_peak_inside": hits, "nih_boxes_n": len(boxed), "nih_boxes_missed": misses,
        "nih_pneumonia_n": len(pneumonia), "nih_pneumonia_peaks_in_the_outer_band": band,
        "nih_pneumonia_peaks_on_the_midline": mid,
        "nih_pneumonia_refused": refused, "nih_pneumonia_accepted_positive": positives,
        "nih_pneumonia_accepted_positive_without_a_region": without_region,
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
