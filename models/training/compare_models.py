"""Paired comparison of two exported models on the same validation films and simulated photos.

With 168 adult validation films a single AUROC has a ~0.05-wide confidence interval, so two models' separate
intervals overlap for almost any change. Scoring both on the same films and bootstrapping the *difference*
(the same resampled films for both) is much tighter. Each model is run with the preprocessing its manifest
names (CLAHE or not); photos are export.py's (same seeds, so the same photos for both models).

Usage (from the repository root):
  PYTHONPATH=models/training python models/training/compare_models.py \
      --a OLD/xray-reader.onnx --b models/xray-reader.onnx [--data ../shared/data]
Prints, per source and for originals, photos and the drop (originals - photos): AUROC of A and of B, the
difference B - A and its 95 % bootstrap interval (2,000 resamples of films, stratified by label).
About 3 minutes on 2 cores.
"""
import argparse
import os

import numpy as np
from sklearn.metrics import roc_auc_score

import data
import export


def scores(onnx_path, greys, photos):
    data.configure_for_onnx(onnx_path)
    run = export.Runner(onnx_path)
    orig = run([data.to_input(g, export.SIZE) for g in greys])["probabilities"][:, 0]
    phot = run([data.to_input(g, export.SIZE) for g in photos])["probabilities"][:, 0]
    return orig, phot


def paired(y, stats_a, stats_b, n=2000, seed=0):
    """Bootstrap of stat(B) - stat(A) over films (stratified by label); each stats_* maps indices to a number."""
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    diffs = []
    for _ in range(n):
        i = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        diffs.append(stats_b(i) - stats_a(i))
    return float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("XRAY_DATA", "../shared/data"))
    ap.add_argument("--a", required=True, help="baseline ONNX (manifest next to it)")
    ap.add_argument("--b", required=True, help="candidate ONNX (manifest next to it)")
    ap.add_argument("--seed", type=int, default=1234, help="export.py's photo seed")
    args = ap.parse_args()
    val = [r for r in data.load_records(args.data) if r["val"]]
    greys = [data.read_grey(r["path"]) for r in val]
    photos = [export.photo_view((args.seed, 7, i), g) for i, g in enumerate(greys)]
    y_all = np.array([r["label"] for r in val])
    src = np.array([r["source"] for r in val])
    a_o, a_p = scores(args.a, greys, photos)
    b_o, b_p = scores(args.b, greys, photos)
    print(f"A = {args.a}\nB = {args.b}")
    for s in ("kermany", "nih"):
        k = src == s
        y = y_all[k]
        rows = {
            "originals": (lambda i, p=a_o[k]: roc_auc_score(y[i], p[i]), lambda i, p=b_o[k]: roc_auc_score(y[i], p[i])),
            "photos": (lambda i, p=a_p[k]: roc_auc_score(y[i], p[i]), lambda i, p=b_p[k]: roc_auc_score(y[i], p[i])),
            "drop": (lambda i, o=a_o[k], p=a_p[k]: roc_auc_score(y[i], o[i]) - roc_auc_score(y[i], p[i]),
                     lambda i, o=b_o[k], p=b_p[k]: roc_auc_score(y[i], o[i]) - roc_auc_score(y[i], p[i])),
        }
        everything = np.arange(len(y))
        for name, (fa, fb) in rows.items():
            lo, hi = paired(y, fa, fb)
            va, vb = fa(everything), fb(everything)
            print(f"{s:8s} {name:9s} (n={len(y)}) A {va:.3f}  B {vb:.3f}  B-A {vb - va:+.3f} [{lo:+.3f}, {hi:+.3f}]",
                  flush=True)


if __name__ == "__main__":
    main()
