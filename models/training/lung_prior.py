"""The lung prior: where on a film the lungs usually are, as weights on the model's 14x14 grid that the
reader multiplies into a finding's map before it looks for the peak and the regions (manifest
`regions.lung_prior`; src/regions.rs, localisation_map).

The opacity map alone (session 31) finds more lesions than with the CAM weighed in, but it also fires on
places off the lungs: the trachea and mediastinum, under the diaphragm, above the shoulders, an image
corner. No lung masks come with the data, so the prior is learned without labels, from the training
normals as the model sees them (data.to_input): on each, the lung fields are the dark parts of the blurred
film (below its `DARK_PERCENTILE`th percentile) that do not touch the image's edge (the air outside the
body does) and are not tiny, with their holes filled (a vessel, or an opacity, inside a lung). Their mean
over the films, on the model's grid, is the atlas. The prior is the atlas smoothed by `SMOOTH` cells and
scaled to a maximum of 1, then mapped to weights: 1 wherever it is at least `SATURATION` (the usual lung
fields, apices included, count in full: the prior only holds back places the lungs seldom reach), falling
linearly below that to a floor of `FLOOR` where no lung ever was, so that strong evidence outside the usual
lung fields (an unusual framing, a rotated patient) can still win. The settings were chosen
with peak_rule.py among a few (smoothing 0-2 cells, floor 0.05-0.5, linear or saturating at 0.15-0.7): most
did about as well on the real films' boxes; smoothing 0.4 with a saturation of 0.3 kept the peaks off the
midline (the trachea, mediastinum and heart, where the lungs are not) and lost little on synthetic
opacities near the film's top, where TB sits (models/MODEL_CARD.md, localisation, session 32).

Scored with models/training/peak_rule.py (maps "opacity" and "opacity_x_lungs").

Usage (from the repository root; models/build.sh runs it after opacity_head.py; under a minute):
  PYTHONPATH=models/training python models/training/lung_prior.py --data ../shared/data \
      --model models/xray-reader.onnx
"""
import argparse
import json
import os

import cv2
import numpy as np

import data

GRID = 14  # the CAM's and the opacity map's grid
DARK_PERCENTILE = 45
WORK = 56  # the side the lung fields are found at
SMOOTH = 0.4  # cells
SATURATION = 0.3
FLOOR = 0.15


def _off_edge(mask, connectivity):
    """The mask's connected components that do not touch the image's edge."""
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=connectivity)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    return labels, stats[:, cv2.CC_STAT_AREA], edge


def lung_fields(x, dark_percentile=DARK_PERCENTILE, n=WORK):
    """Boolean n x n mask of the lung fields of a model input x (float [0, 1], any size)."""
    g = cv2.resize(x.astype(np.float32), (n, n), interpolation=cv2.INTER_AREA)
    b = cv2.GaussianBlur(g, (0, 0), n / 40)
    dark = b < np.percentile(b, dark_percentile)
    labels, area, edge = _off_edge(dark, 8)
    keep = [i for i in range(1, len(area)) if i not in edge and area[i] > 0.01 * n * n]
    lungs = np.isin(labels, keep)
    # holes: parts of the rest (4-connected, the complement of an 8-connected set) that do not reach the edge
    labels, _, edge = _off_edge(~lungs, 4)
    return lungs | (~lungs & ~np.isin(labels, edge))


def atlas(inputs):
    """Mean of the inputs' lung fields on the model's grid."""
    return np.mean([cv2.resize(lung_fields(x).astype(np.float32), (GRID, GRID), interpolation=cv2.INTER_AREA)
                    for x in inputs], 0)


def prior(atl, smooth=SMOOTH, saturation=SATURATION, floor=FLOOR):
    a = cv2.GaussianBlur(atl.astype(np.float32), (0, 0), smooth) if smooth > 0 else atl.astype(np.float32)
    return np.minimum(1, floor + (1 - floor) * a / a.max() / saturation)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("XRAY_DATA", "../shared/data"))
    ap.add_argument("--model", default="models/xray-reader.onnx", help="its manifest beside it is rewritten")
    ap.add_argument("--films", type=int, default=300, help="normal training films per source")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--smooth", type=float, default=SMOOTH, help="cells")
    ap.add_argument("--saturation", type=float, default=SATURATION,
                    help="share of the atlas's maximum from which a cell weighs 1")
    ap.add_argument("--floor", type=float, default=FLOOR)
    args = ap.parse_args()
    data.configure_for_onnx(args.model)
    recs = data.load_records(args.data)
    films = data.training_normals(recs, np.random.default_rng(args.seed), args.films)
    p = prior(atlas([data.to_input(data.read_grey(r["path"])) for r in films]), args.smooth, args.saturation,
              args.floor)
    np.set_printoptions(precision=2, linewidth=160)
    print(f"lung prior from {len(films)} normal training films:\n{p}", flush=True)
    path = os.path.splitext(args.model)[0] + ".manifest.json"
    with open(path) as f:
        manifest = json.load(f)
    manifest["regions"]["lung_prior"] = [[round(float(v), 3) for v in row] for row in p]
    with open(path, "w") as f:
        json.dump(manifest, f, separators=(",", ":"))
    print(f"wrote regions.lung_prior ({GRID}x{GRID}) into {path}", flush=True)


if __name__ == "__main__":
    main()
