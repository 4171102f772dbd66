"""Paired comparison of two exported models on the same validation films and simulated photos.

With 168 adult validation films a single AUROC has a ~0.05-wide confidence interval, so two models' separate
intervals overlap for almost any change. Scoring both on the same films and bootstrapping the *difference*
(the same resampled films for both) is much tighter. Each model reads the originals with the preprocessing
its manifest names (CLAHE, padding trim); photos are export.py's (same seeds, of the films as printed, so
the same photos for both models).

Usage (from the repository root):
  PYTHONPATH=models/training python models/training/compare_models.py \
      --a OLD/xray-reader.onnx --b models/xray-reader.onnx [--data ../shared/data]
Prints, per source and for originals, photos and the drop (originals - photos): AUROC of A and of B, the
difference B - A and its 95 % bootstrap interval (2,000 resamples of films, stratified by label).
About 2 minutes on 2 cores.
"""
import argparse
import os

import numpy as np
from sklearn.metrics import roc_auc_score

import data
import export


def scores(onnx_path, val, photos):
    data.configure_for_onnx(onnx_path)
    run = export.Runner(onnx_path)
    greys = [data.read_grey(r["path"]) for r in val]  # as this model's reader reads the file
    orig = run([data.to_input(g, export.SIZE) for g in greys])["probabilities"][:, 0]
    phot = run([data.to_input(g, export.SIZE) for g in photos])["probabilities"][:, 0]
    return orig, phot


NAMES = ("originals", "photos", "drop")


def aurocs(y, orig, photo):
    """AUROC on the originals, on the photos, and the drop between them."""
    o, p = roc_auc_score(y, orig), roc_auc_score(y, photo)
    return np.array([o, p, o - p])


def paired(y, a, b, n=2000, seed=0):
    """95 % bootstrap intervals of aurocs(B) - aurocs(A), resampling films (the same films for both models,
    stratified by label); a and b are each model's (originals, photos) scores."""
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    diffs = []
    for _ in range(n):
        i = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        diffs.append(aurocs(y[i], *(s[i] for s in b)) - aurocs(y[i], *(s[i] for s in a)))
    return np.percentile(diffs, [2.5, 97.5], axis=0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("XRAY_DATA", "../shared/data"))
    ap.add_argument("--a", required=True, help="baseline ONNX (manifest next to it)")
    ap.add_argument("--b", required=True, help="candidate ONNX (manifest next to it)")
    ap.add_argument("--seed", type=int, default=1234, help="export.py's photo seed")
    args = ap.parse_args()
    val = [r for r in data.load_records(args.data) if r["val"]]
    films = [data.read_grey(r["path"], trim=False) for r in val]  # as printed, padding and all
    photos = [export.photo_view((args.seed, 7, i), g) for i, g in enumerate(films)]
    y_all = np.array([r["label"] for r in val])
    src = np.array([r["source"] for r in val])
    a_o, a_p = scores(args.a, val, photos)
    b_o, b_p = scores(args.b, val, photos)
    print(f"A = {args.a}\nB = {args.b}")
    for s in ("kermany", "nih"):
        k = src == s
        y, a, b = y_all[k], (a_o[k], a_p[k]), (b_o[k], b_p[k])
        va, vb = aurocs(y, *a), aurocs(y, *b)
        lo, hi = paired(y, a, b)
        for j, name in enumerate(NAMES):
            print(f"{s:8s} {name:9s} (n={len(y)}) A {va[j]:.3f}  B {vb[j]:.3f}  B-A {vb[j] - va[j]:+.3f} "
                  f"[{lo[j]:+.3f}, {hi[j]:+.3f}]", flush=True)

if __name__ == "__main__":
    main()
