"""A probe for radiographs framed by flat digital padding (PACS exports, scanned films, images squared up with
black bars): validation films with black (0) or near-black (8) borders added — pillarbox (15 % each side),
letterbox (10 % top and bottom), or all four sides (6-12 %) — read through the CLI next to the same films
unpadded. Prints, per kind, how often the padding was trimmed (models whose manifest has input.trim_border),
how often a "film" was found inside the frame, how often the read was refused,
and how far the probability moved from the unpadded read.

Usage: PYTHONPATH=models/training python models/training/probe_padding.py --bin target/release/xray-reader
(120 films, about a minute).
"""
import argparse
import json
import os
import subprocess
import tempfile

import cv2
import numpy as np

import data

KINDS = ("pillarbox", "letterbox", "all sides")


def borders(kind, h, w):
    """(top, bottom, left, right) in pixels."""
    if kind == 0:
        return 0, 0, int(w * 0.15), int(w * 0.15)
    if kind == 1:
        return int(h * 0.1), int(h * 0.1), 0, 0
    return int(h * 0.08), int(h * 0.12), int(w * 0.1), int(w * 0.06)


def read(binary, model, files):
    out = subprocess.run([binary, "read", "--json"] + (["--model", model] if model else []) + files,
                         capture_output=True, text=True)
    return {r["file"]: r for r in map(json.loads, out.stdout.splitlines())}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("XRAY_DATA", "../shared/data"))
    ap.add_argument("--bin", default="target/release/xray-reader")
    ap.add_argument("--model", help="ONNX file to read with instead of the bundled model (manifest next to it)")
    args = ap.parse_args()
    val = [r for r in data.load_records(args.data) if r["val"]]
    films = [r for r in val if r["source"] == "nih"][:60] + [r for r in val if r["source"] == "kermany"][::12][:60]
    tmp = tempfile.mkdtemp(prefix="xray-padding-")
    padded = []
    for i, r in enumerate(films):
        g = cv2.imread(r["path"], cv2.IMREAD_GRAYSCALE)
        t, b, left, right = borders(i % 3, *g.shape)
        path = os.path.join(tmp, f"{i:03d}.png")
        cv2.imwrite(path, cv2.copyMakeBorder(g, t, b, left, right, cv2.BORDER_CONSTANT, value=0 if i % 2 == 0 else 8))
        padded.append(path)
    plain = read(args.bin, args.model, [r["path"] for r in films])
    framed = read(args.bin, args.model, padded)
    for kind, name in enumerate(KINDS):
        idx = [i for i in range(len(films)) if i % 3 == kind]
        a = [plain[films[i]["path"]] for i in idx]
        b = [framed[padded[i]] for i in idx]
        moved = [abs(x["findings"][0]["probability"] - y["findings"][0]["probability"]) for x, y in zip(a, b)]
        print(f"{name:9s} n={len(idx)}: padding trimmed {sum(y['film'].get('padding_trimmed', False) for y in b)}, "
              f"film found in the frame {sum(y['film']['detected'] for y in b)}, "
              f"refused {sum(not y['accepted'] for y in b)} (unpadded {sum(not x['accepted'] for x in a)}), "
              f"probability moved: median {np.median(moved):.3f}, mean {np.mean(moved):.3f}, max {max(moved):.3f}")


if __name__ == "__main__":
    main()
