"""Train the reader's model on ../shared/data. Prints progress; writes a checkpoint to --out."""
import argparse
import json
import os
import time

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

import data
import net
import photo_sim

SIZE = 224


# train.py --metering (tried in session 14, shipped since 1.4.0; MODEL_CARD.md): the simulated photos also get a
# phone's metering and tone processing (photo_sim.meter). Recorded in config.json; later steps call configure().
METERING = False


def configure(config):
    """Match the augmentation to a checkpoint's config.json (train.py --metering)."""
    global METERING
    METERING = bool(config.get("metering", False))


def augment(rng, grey, as_photo=None, printed=None):
    """One training view of a film: a simulated phone photo (flattened with corner error) or a scan.
    `as_photo` True/False forces the kind (a photo then is always the flattened film); None draws it.
    `printed`: the film as printed, when it differs from `grey` (flat padding the reader trims from files
    but not from photos, where the padding is inside the film); photos are taken of it."""
    return augment_with_mask(rng, grey, None, as_photo, printed)[0]


def augment_with_mask(rng, grey, mask, as_photo=None, printed=None):
    """`augment`, with a mask of the film (same size, or None) carried through the same geometry; the mask
    comes back resized to the input, or None when unknown (the whole photo reached the model). A mask
    draws no random numbers, so the image is the one `augment` gives for the same generator state."""
    if printed is not None and mask is not None:
        raise ValueError("a mask is of the film as read, not as printed")
    r = rng.random()
    drawn = as_photo is None
    if (r < 0.45) if drawn else as_photo:
        film = grey if printed is None else printed
        photo, quad = photo_sim.photograph(rng, film, metering=METERING)
        if drawn and rng.random() < 0.1:  # the film detector failed: the whole photo reaches the model
            g, mask = photo_sim.to_grey(photo), None
        else:
            h, w = film.shape
            g = photo_sim.to_grey(photo_sim.flatten(rng, photo, quad, (h, w), jitter=rng.uniform(0, 0.05)))
    else:
        g = photo_sim.degrade(rng, grey.astype(np.float32))
    g = g.astype(np.float32)
    # geometry: small rotation / scale / shift, random crop, flip
    h, w = g.shape
    M = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-10, 10), rng.uniform(0.9, 1.15))
    M[:, 2] += rng.uniform(-0.06, 0.06, 2) * np.array([w, h])
    g = cv2.warpAffine(g, M, (w, h), borderMode=cv2.BORDER_REFLECT)
    if mask is not None:
        mask = cv2.warpAffine(mask, M, (w, h), borderMode=cv2.BORDER_CONSTANT)
    if rng.random() < 0.5:
        g = g[:, ::-1]
        mask = None if mask is None else mask[:, ::-1]
    if rng.random() < 0.3:  # resolution loss
        s = rng.uniform(0.3, 0.7)
        small = cv2.resize(g, (max(8, int(w * s)), max(8, int(h * s))), interpolation=cv2.INTER_AREA)
        g = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    x = data.to_input(g, SIZE)
    x = np.clip(x ** rng.uniform(0.8, 1.25), 0, 1)
    if mask is not None:
        mask = cv2.resize(np.ascontiguousarray(mask), (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    return x.astype(np.float32), mask


class TrainSet(torch.utils.data.Dataset):
    """Balanced draw: each item picks a (source, label) cell uniformly, then an image in it."""

    def __init__(self, images, labels, sources, n, seed, printed=None):
        self.images, self.n, self.seed = images, n, seed
        self.printed = printed if printed is not None else [None] * len(images)
        self.cells = [np.flatnonzero((sources == s) & (labels == l)) for s in (0, 1) for l in (0, 1)]
        self.labels = labels
        self.epoch = 0

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        rng = np.random.default_rng((self.seed, self.epoch, i))
        cell = self.cells[rng.integers(4)]
        j = cell[rng.integers(len(cell))]
        x = augment(rng, self.images[j], printed=self.printed[j])
        rot, inv = 0, 0
        if rng.random() < 0.3:
            rot = int(rng.integers(1, 4))
            x = np.rot90(x, -rot)  # rot * 90 degrees clockwise
        if rng.random() < 0.2:
            inv = 1
            x = 1.0 - x
        return (torch.from_numpy(np.ascontiguousarray(x))[None], float(self.labels[j]), rot, float(inv))


class PairSet(TrainSet):
    """Balanced draw as TrainSet, two views per film: a scan (rotated or inverted as in TrainSet, for those
    heads) and a simulated phone photo of the same film, upright, for the photo-consistency loss."""

    def __getitem__(self, i):
        rng = np.random.default_rng((self.seed, self.epoch, i))
        cell = self.cells[rng.integers(4)]
        j = cell[rng.integers(len(cell))]
        scan = augment(rng, self.images[j], as_photo=False)
        photo = augment(rng, self.images[j], as_photo=True, printed=self.printed[j])
        rot, inv = 0, 0
        if rng.random() < 0.3:
            rot = int(rng.integers(1, 4))
            scan = np.rot90(scan, -rot)
        if rng.random() < 0.2:
            inv = 1
            scan = 1.0 - scan
        t = lambda a: torch.from_numpy(np.ascontiguousarray(a))[None]
        return t(scan), t(photo), float(self.labels[j]), rot, float(inv)


def canonical_loss(model, batch):
    """TrainSet batch: the finding loss on upright, non-inverted samples; rotation and inversion heads on all."""
    x, y, rot, inv = batch
    x = x.float().contiguous(memory_format=torch.channels_last)
    logits, _, orient, inv_logit, _ = model.raw(x)
    canonical = (rot == 0) & (inv == 0)
    loss_f = F.binary_cross_entropy_with_logits(logits[canonical, 0], y[canonical].float()) \
        if canonical.any() else logits.sum() * 0
    return loss_f + 0.3 * F.cross_entropy(orient, rot) + \
        0.3 * F.binary_cross_entropy_with_logits(inv_logit[:, 0], inv.float())


def pair_loss(consistency):
    """PairSet batch loss: the finding loss on both views (the scan's only when it is upright and not
    inverted), plus `consistency` x the squared difference between the photo's logit and the (detached)
    scan's logit, so a phone photo of a film reads like the film; heads on the scans."""
    def loss_of(model, batch):
        scan, photo, y, rot, inv = batch
        b = scan.shape[0]
        x = torch.cat([scan, photo]).float().contiguous(memory_format=torch.channels_last)
        logits, _, orient, inv_logit, _ = model.raw(x)
        ls, lp = logits[:b, 0], logits[b:, 0]
        canonical = (rot == 0) & (inv == 0)
        y = y.float()
        loss = F.binary_cross_entropy_with_logits(lp, y)
        if canonical.any():
            loss = loss + F.binary_cross_entropy_with_logits(ls[canonical], y[canonical])
            loss = loss + consistency * ((lp[canonical] - ls[canonical].detach()) ** 2).mean()
        return loss + 0.3 * F.cross_entropy(orient[:b], rot) + \
            0.3 * F.binary_cross_entropy_with_logits(inv_logit[:b, 0], inv.float())
    return loss_of


def train_epoch(model, loader, opt, sched, epoch, batch_loss=canonical_loss):
    """One pass over `loader`, minimising `batch_loss(model, batch)`, printing progress; returns the mean
    loss. The caller sets train/eval modes."""
    te, tot, n = time.time(), 0.0, 0
    for step, batch in enumerate(loader):
        loss = batch_loss(model, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        tot, n = tot + loss.item(), n + 1
        if step % 25 == 0:
            print(f"  epoch {epoch + 1} step {step}/{len(loader)} loss {tot / n:.4f} "
                  f"({(time.time() - te) / (step + 1):.2f}s/step)", flush=True)
    return tot / n


def freeze_early_layers(model):
    """Freeze the stem and the first two stages (generic edges/textures at 112 and 56 px; halves the backward
    cost); returns those modules, which the caller keeps in eval mode, and the parameters left to train."""
    frozen = [model.backbone._conv_stem, model.backbone._bn0] + list(model.backbone._blocks[:3])
    for m in frozen:
        for p in m.parameters():
            p.requires_grad_(False)
    return frozen, [p for p in model.parameters() if p.requires_grad]


def load_split(data_dir):
    """The patient-level split: training films (grey images, labels, sources 0 Kermany / 1 NIH), the
    validation inputs (preprocessed, labels, source names), and the training films as printed (None where
    the same: data.read_views); prints the counts."""
    t0 = time.time()
    recs = data.load_records(data_dir)
    train = [r for r in recs if not r["val"]]
    val = [r for r in recs if r["val"]]
    images, printed = zip(*[data.read_views(r["path"]) for r in train])
    labels = np.array([r["label"] for r in train])
    sources = np.array([0 if r["source"] == "kermany" else 1 for r in train])
    val_x = [data.to_input(data.read_grey(r["path"]), SIZE) for r in val]
    val_y = np.array([r["label"] for r in val])
    val_s = np.array([r["source"] for r in val])
    print(f"loaded {len(train)} train / {len(val)} validation images in {time.time() - t0:.0f}s", flush=True)
    return list(images), labels, sources, val_x, val_y, val_s, list(printed)


def validation_summary(model, val_x, val_y, val_s):
    """AUROC per source and the heads' accuracy on the validation films, as one progress line."""
    p, o, iv = evaluate(model, val_x)
    msg = [f"{s} AUROC {roc_auc_score(val_y[val_s == s], p[val_s == s]):.4f}" for s in ("kermany", "nih")]
    return " | ".join(msg) + f" | upright {np.mean(o.argmax(1) == 0):.3f} | not-inverted {np.mean(iv < 0.5):.3f}"


def evaluate(model, xs, batch=64):
    model.eval()
    probs, rots, invs = [], [], []
    with torch.no_grad():
        for i in range(0, len(xs), batch):
            x = torch.from_numpy(np.stack(xs[i:i + batch]).astype(np.float32))[:, None].contiguous(memory_format=torch.channels_last)
            p, _, o, inv, _ = model(x)
            probs.append(p[:, 0].numpy())
            rots.append(o.numpy())
            invs.append(inv[:, 0].numpy())
    return np.concatenate(probs), np.concatenate(rots), np.concatenate(invs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("XRAY_DATA", "../shared/data"))
    ap.add_argument("--out", default="models/build")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--per-epoch", type=int, default=2400)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--output-stride", type=int, default=16, choices=[16, 32],
                    help="16 gives a 14x14 CAM at 224 px (dilated last stages), 32 a 7x7 one")
    ap.add_argument("--clahe", action="store_true",
                    help="CLAHE after the percentile mapping (data.py; the shipped model since 1.2.0)")
    ap.add_argument("--trim", action="store_true",
                    help="cut flat padding off the films' edges first (data.flat_border), as the reader does")
    ap.add_argument("--metering", action="store_true",
                    help="photos also exposed and tone-mapped as a phone does (photo_sim.meter; shipped since 1.4.0)")
    args = ap.parse_args()
    data.configure(vars(args))
    configure(vars(args))
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(1)

    t0 = time.time()
    images, labels, sources, val_x, val_y, val_s, printed = load_split(args.data)

    model = net.XrayNet(net.load_imagenet_backbone(), output_stride=args.output_stride)
    model = model.to(memory_format=torch.channels_last)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(vars(args), f)
    frozen, params = freeze_early_layers(model)
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-4)
    ds = TrainSet(images, labels, sources, args.per_epoch, args.seed, printed)
    steps = args.epochs * (args.per_epoch // args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps, pct_start=0.1)

    for epoch in range(args.epochs):
        ds.epoch = epoch
        loader = torch.utils.data.DataLoader(ds, batch_size=args.batch, num_workers=1, drop_last=True,
                                             persistent_workers=False)
        model.train()
        for m in frozen:
            m.eval()
        te = time.time()
        loss = train_epoch(model, loader, opt, sched, epoch)
        summary = validation_summary(model, val_x, val_y, val_s)
        print(f"epoch {epoch + 1}/{args.epochs} loss {loss:.4f} | {summary} | {time.time() - te:.0f}s", flush=True)
        torch.save(model.state_dict(), os.path.join(args.out, "model.pt"))
    print(f"training done in {(time.time() - t0) / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
