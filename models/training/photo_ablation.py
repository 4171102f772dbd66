"""Where the AUROC drop from films to simulated phone photos comes from, at the model level (no film
detector): validation originals against export.py's simulated photos (same seeds, flattened with a 2 %
corner error) for one or more checkpoints, optionally with horizontal-flip averaging, and, for the first
checkpoint, the NIH validation photos again with one photographic effect at a time left out.

Usage (from the repository root; on 2 cores ~4 min for the photos, ~1 min per checkpoint, twice that with
--flip, ~9 min for --effects):
  PYTHONPATH=models/training python models/training/photo_ablation.py --data ../shared/data \
      --checkpoint models/build/model_q.pt [--checkpoint OTHER] [--flip] [--effects]
A model_q.pt checkpoint is evaluated with its weights quantized as the export quantizes them, and each
checkpoint with the preprocessing its config.json names (train.py --clahe).
"""
import argparse
import json
import os

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

import data
import export
import net
import photo_sim

EFFECTS = ["border", "cast", "exposure", "glare", "moire", "vignette", "blur", "noise", "jpeg", "jitter"]


def load(checkpoint):
    """The model, with its weights quantized if it is a model_q.pt, and its config.json (preprocessing)."""
    with open(os.path.join(os.path.dirname(checkpoint), "config.json")) as f:
        config = json.load(f)
    model = net.XrayNet(net.load_imagenet_backbone(), output_stride=config.get("output_stride", 32))
    model.load_state_dict(torch.load(checkpoint, map_location="cpu"))
    if os.path.basename(checkpoint).startswith("model_q"):
        net.add_fake_quant(model)
    return model.eval(), config


def logits(model, xs, flip=False):
    out = []
    with torch.no_grad():
        for i in range(0, len(xs), 64):
            x = torch.from_numpy(np.stack(xs[i:i + 64]).astype(np.float32))[:, None]
            out.append(model.raw(x.flip(3) if flip else x)[0][:, 0].numpy())
    return np.concatenate(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("XRAY_DATA", "../shared/data"))
    ap.add_argument("--checkpoint", action="append", required=True)
    ap.add_argument("--seed", type=int, default=1234, help="export.py's --seed (the photos' seeds)")
    ap.add_argument("--flip", action="store_true", help="also score the mean logit of the film and its mirror")
    ap.add_argument("--effects", action="store_true", help="leave one photographic effect out at a time")
    args = ap.parse_args()
    torch.set_num_threads(2)
    val = [r for r in data.load_records(args.data) if r["val"]]
    greys = [data.read_grey(r["path"]) for r in val]
    y = np.array([r["label"] for r in val])
    src = np.array([r["source"] for r in val])
    photo_films = [export.photo_view((args.seed, 7, i), g) for i, g in enumerate(greys)]
    inputs = lambda films: [data.to_input(g, export.SIZE) for g in films]
    for n, c in enumerate(args.checkpoint):
        model, config = load(c)
        data.configure(config)
        originals, photos = inputs(greys), inputs(photo_films)
        views = [("", False)] + ([(" (flip-averaged)", True)] if args.flip else [])
        for tag, flip in views:
            lo, lp = logits(model, originals), logits(model, photos)
            if flip:
                lo, lp = (lo + logits(model, originals, True)) / 2, (lp + logits(model, photos, True)) / 2
            cells = []
            for s in ("kermany", "nih"):
                k = src == s
                a, b = roc_auc_score(y[k], lo[k]), roc_auc_score(y[k], lp[k])
                cells.append(f"{s} originals {a:.4f} photos {b:.4f} drop {a - b:.4f}")
            print(f"{c}{tag}: " + " | ".join(cells), flush=True)
        if args.effects and n == 0:
            nih = np.flatnonzero(src == "nih")
            base = roc_auc_score(y[nih], logits(model, [originals[i] for i in nih]))
            for off in [[]] + [[e] for e in EFFECTS] + [EFFECTS]:
                photo_sim.DISABLED = set(off)
                without = inputs([export.photo_view((args.seed, 7, i), greys[i]) for i in nih])
                a = roc_auc_score(y[nih], logits(model, without))
                print(f"NIH photos without {'+'.join(off) or 'nothing'}: AUROC {a:.4f} drop {base - a:.4f}",
                      flush=True)
            photo_sim.DISABLED = set()


if __name__ == "__main__":
    main()
