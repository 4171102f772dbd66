"""How much of a generator's photo loss is the film stage's: read each photo as it is and with the radiograph cut out
exactly (its true outline warped to a rectangle), both through the CLI.

Takes the `--details` file of an `evaluate_cli.py` run (which names each photo and what was drawn for it) and
regenerates the chosen photos of a per-film generator (`evaluate_cli.PER_FILM`: the same seed, the same photo).
For the fourth generator's forwarded phone screens the true outline is the radiograph on the screen; for its
printouts, the printed area on the paper (the last outline the generator returns).

Usage (from models/training):
  python probe_cutout.py --data ../../../shared/data --bin ../../target/release/xray-reader \
      --details DETAILS.jsonl --view photo_fourth --scenes screen,printout
"""
import argparse
import json
import multiprocessing
import os
import shutil
import subprocess
import tempfile

import cv2
import numpy as np
from PIL import Image, ImageOps
from sklearn.metrics import roc_auc_score

import data
import evaluate_cli
import photo_sim


def _cut(args):
    view, i, path, tmp = args
    _, (photo, outlines, _) = evaluate_cli._per_film_photo(view, i, path, tmp)
    shown = np.array(ImageOps.exif_transpose(Image.open(photo)).convert("RGB"))  # outlines are in display pixels
    q = np.asarray(outlines[-1], np.float32)
    w, h = int(np.linalg.norm(q[1] - q[0])), int(np.linalg.norm(q[3] - q[0]))
    exact = photo_sim.flatten(np.random.default_rng(0), shown, q, (h, w), jitter=0.0)  # no corner error drawn
    cut = os.path.join(tmp, f"cut-{i}.png")
    cv2.imwrite(cut, exact[..., ::-1])
    return photo, cut


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("XRAY_DATA", "../shared/data"))
    ap.add_argument("--bin", default="target/release/xray-reader")
    ap.add_argument("--details", required=True, help="an evaluate_cli.py --details file that includes --view")
    ap.add_argument("--view", default="photo_fourth", choices=sorted(evaluate_cli.PER_FILM))
    ap.add_argument("--scenes", default="screen,printout", help="the `scene`s drawn to probe, comma-separated")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    recs = [r for r in data.load_records(args.data) if r["val"]]
    by_path = {r["path"]: i for i, r in enumerate(recs)}
    lines = [json.loads(line) for line in open(args.details)]
    scenes = args.scenes.split(",")
    picked, film = [], None
    for d in lines:  # each film's original comes before its photos
        if d["view"] == "original":
            film = by_path[d["file"]]
        elif d["view"] == args.view and d["drawn"]["scene"] in scenes and d["true_corners"] is not None:
            picked.append((film, d))
    tmp = tempfile.mkdtemp(prefix="xray-cutout-")
    with multiprocessing.Pool(args.jobs) as pool:
        made = pool.map(_cut, [(args.view, i, recs[i]["path"], tmp) for i, _ in picked])
    files = [p for pair in made for p in pair]
    out = subprocess.run([args.bin, "read", "--json", "--jobs", str(args.jobs)] + files, capture_output=True, text=True)
    reads = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(reads) == len(files), out.stderr
    shutil.rmtree(tmp)
    result = {}
    for scene in scenes:
        for source in ("kermany", "nih"):
            k = [j for j, (_, d) in enumerate(picked) if d["drawn"]["scene"] == scene and d["source"] == source]
            if not k:
                continue
            y = [picked[j][1]["label"] for j in k]
            row = {"n": len(k)}
            for name, off in (("as_photographed", 0), ("cut_out_exactly", 1)):
                rs = [reads[2 * j + off] for j in k]
                row[name] = {"auroc": float(roc_auc_score(y, [r["findings"][0]["probability"] for r in rs])),
                             "accepted": float(np.mean([evaluate_cli.accepted(r) for r in rs]))}
            result[f"{source}/{scene}"] = row
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
