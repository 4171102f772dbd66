"""Experiment: fine-tune a train.py checkpoint with an extra loss on the class-activation map, to see whether
the CAM peak moves from the heart onto the lesion (issue #2). Writes model.pt and config.json to --out, so
localisation.py --checkpoint OUT/model.pt scores it.

--topk W: multiple-instance loss, binary cross-entropy on the mean of the K highest CAM cells (K=--k), so a
normal film must have no hot cell and an abnormal one needs a few hot cells, not a warm heart shadow.
--prior W: anatomical prior, penalises positive CAM evidence over the heart and mediastinum (a fixed region of
the upright film, carried through the same geometric augmentation as the image; unknown, so unused, when
the whole photo reaches the model).
--puzzle W: tile consistency (after Puzzle-CAM, Jo & Yu 2021): the film is also read as 2x2 tiles, whose
CAMs stitched together must classify the film and match the whole film's CAM (L1, weight W), so evidence
has to sit where the local content supports it. BatchNorm is frozen (tiles would skew its statistics).
"""
import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

import data
import net
import train

SIZE = train.SIZE


def mediastinum_mask(h, w):
    """1 over the mediastinum and heart of an upright PA film framed by the image (heart on the image's
    right), 0 elsewhere: coarse on purpose."""
    m = np.zeros((h, w), np.float32)
    m[int(0.12 * h):int(0.55 * h), int(0.42 * w):int(0.58 * w)] = 1
    m[int(0.45 * h):int(0.85 * h), int(0.40 * w):int(0.70 * w)] = 1
    return m


def augment_with_mask(rng, grey):
    """train.augment with the mediastinum mask carried through (train.augment_with_mask: same images for the
    same seeds); an unknown mask comes back as zeros with `known` 0."""
    x, mask = train.augment_with_mask(rng, grey, mediastinum_mask(*grey.shape))
    if mask is None:
        return x, np.zeros((SIZE, SIZE), np.float32), 0.0
    return x, mask, 1.0


class MaskedSet(train.TrainSet):
    def __getitem__(self, i):
        rng = np.random.default_rng((self.seed, self.epoch, i))
        cell = self.cells[rng.integers(4)]
        j = cell[rng.integers(len(cell))]
        x, mask, known = augment_with_mask(rng, self.images[j])
        rot, inv = 0, 0
        if rng.random() < 0.3:
            rot = int(rng.integers(1, 4))
            x = np.rot90(x, -rot)
        if rng.random() < 0.2:
            inv = 1
            x = 1.0 - x
        return (torch.from_numpy(np.ascontiguousarray(x))[None], float(self.labels[j]), rot, float(inv),
                torch.from_numpy(mask)[None], known)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("XRAY_DATA", "../shared/data"))
    ap.add_argument("--init", required=True, help="train.py checkpoint (its config.json beside it)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--per-epoch", type=int, default=2400)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--seed", type=int, default=777)
    ap.add_argument("--topk", type=float, default=0.0, help="weight of the top-k multiple-instance loss")
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--prior", type=float, default=0.0, help="weight of the mediastinum prior")
    ap.add_argument("--puzzle", type=float, default=0.0, help="weight of the tile-consistency loss")
    ap.add_argument("--mean-weight", type=float, default=1.0, help="weight of the usual (mean-pooled) loss")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    with open(os.path.join(os.path.dirname(args.init), "config.json")) as f:
        config = json.load(f)
    data.configure(config)
    config["localise_finetune"] = vars(args)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f)
    model = net.XrayNet(net.load_imagenet_backbone(), output_stride=config.get("output_stride", 32))
    model.load_state_dict(torch.load(args.init, map_location="cpu"))
    model = model.to(memory_format=torch.channels_last)

    t0 = time.time()
    images, labels, sources, val_x, val_y, val_s, _ = train.load_split(args.data)  # photos of the films as read
    frozen, params = train.freeze_early_layers(model)
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-4)
    ds = MaskedSet(images, labels, sources, args.per_epoch, args.seed)
    steps = args.epochs * (args.per_epoch // args.batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)

    def batch_loss(model, batch):
        """train.canonical_loss with its weight --mean-weight, plus the CAM terms the flags turn on."""
        x, y, rot, inv, mask, known = batch
        x = x.float().contiguous(memory_format=torch.channels_last)
        logits, cam, orient, inv_logit, _ = model.raw(x)
        ok = (rot == 0) & (inv == 0)
        yy = y[ok].float()
        loss = 0.3 * F.cross_entropy(orient, rot) + \
            0.3 * F.binary_cross_entropy_with_logits(inv_logit[:, 0], inv.float())
        if ok.any():
            loss = loss + args.mean_weight * F.binary_cross_entropy_with_logits(logits[ok, 0], yy)
            if args.topk:
                cells = cam[ok, 0].flatten(1)
                top = cells.topk(args.k, dim=1).values.mean(1)
                loss = loss + args.topk * F.binary_cross_entropy_with_logits(top, yy)
            if args.puzzle:
                xo = x[ok]
                b, _, H, W = xo.shape
                tiles = xo.reshape(b, 1, 2, H // 2, 2, W // 2).permute(0, 2, 4, 1, 3, 5) \
                    .reshape(b * 4, 1, H // 2, W // 2).contiguous(memory_format=torch.channels_last)
                _, tcam, _, _, _ = model.raw(tiles)
                th, tw = tcam.shape[2:]
                stitched = tcam.reshape(b, 2, 2, 1, th, tw).permute(0, 3, 1, 4, 2, 5).reshape(b, 1, 2 * th, 2 * tw)
                loss = loss + F.binary_cross_entropy_with_logits(stitched.mean((1, 2, 3)), yy)
                loss = loss + args.puzzle * (cam[ok] - stitched).abs().mean()
            if args.prior:
                h, w = cam.shape[2:]
                m = F.adaptive_avg_pool2d(mask[ok].float(), (h, w))[:, 0] * known[ok].float()[:, None, None]
                pos = F.relu(cam[ok, 0]) ** 2
                loss = loss + args.prior * (pos * m).sum() / m.sum().clamp_min(1.0)
        return loss

    for epoch in range(args.epochs):
        ds.epoch = epoch
        loader = torch.utils.data.DataLoader(ds, batch_size=args.batch, num_workers=1, drop_last=True)
        model.train()
        for m in frozen:
            m.eval()
        if args.puzzle:
            model.eval()
        te = time.time()
        loss = train.train_epoch(model, loader, opt, sched, epoch, batch_loss)
        summary = train.validation_summary(model, val_x, val_y, val_s)
        print(f"epoch {epoch + 1}/{args.epochs} loss {loss:.4f} | {summary} | {time.time() - te:.0f}s", flush=True)
        torch.save(model.state_dict(), os.path.join(args.out, "model.pt"))
    print(f"done in {(time.time() - t0) / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
