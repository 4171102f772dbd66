"""Quantization-aware fine-tuning: start from train.py's checkpoint, quantize every weight the export will
quantize (net.weight_levels: 4 or 6 bits per output channel) with a straight-through estimator, and
fine-tune briefly so the network adapts to the coarser weights. BatchNorm statistics stay frozen (the
export folds them into the convolutions, and per-channel quantization is unchanged by that scaling).
Writes model_q.pt next to model.pt; export.py ships it."""
import argparse
import json
import os
import time

import torch

import data
import net
import train

SIZE = train.SIZE


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("XRAY_DATA", "../shared/data"))
    ap.add_argument("--build", default="models/build")
    ap.add_argument("--out", default=None, help="where model_q.pt goes (default: --build)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--per-epoch", type=int, default=2400)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--seed", type=int, default=4321)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--consistency", type=float, default=0.0,
                    help="photo-consistency weight: > 0 trains on (scan, photo) pairs of each film, batch/2 pairs "
                         "per step, pulling the photo's logit towards the scan's")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)

    with open(os.path.join(args.build, "config.json")) as f:
        config = json.load(f)
    data.configure(config)
    train.configure(config)
    model = net.XrayNet(net.load_imagenet_backbone(), output_stride=config.get("output_stride", 32))
    model.load_state_dict(torch.load(os.path.join(args.build, "model.pt"), map_location="cpu"))

    t0 = time.time()
    images, labels, sources, val_x, val_y, val_s, printed = train.load_split(args.data)

    def report(tag):
        print(f"{tag} | " + train.validation_summary(model, val_x, val_y, val_s), flush=True)

    n = net.add_fake_quant(model)
    model = model.to(memory_format=torch.channels_last)
    print(f"fake-quantized {n} weight tensors", flush=True)
    report("quantized, before fine-tuning")

    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    pairs = args.consistency > 0
    batch = args.batch // 2 if pairs else args.batch
    per_epoch = args.per_epoch // 2 if pairs else args.per_epoch
    ds = (train.PairSet if pairs else train.TrainSet)(images, labels, sources, per_epoch, args.seed, printed)
    steps = args.epochs * (per_epoch // batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for epoch in range(args.epochs):
        ds.epoch = epoch
        loader = torch.utils.data.DataLoader(ds, batch_size=batch, num_workers=1, drop_last=True)
        model.eval()  # BatchNorm keeps its statistics; dropout-free network, so eval() only freezes BN
        te = time.time()
        loss = train.train_epoch(model, loader, opt, sched, epoch,
                                 train.pair_loss(args.consistency) if pairs else train.canonical_loss)
        report(f"epoch {epoch + 1}/{args.epochs} loss {loss:.4f} ({time.time() - te:.0f}s)")
    net.remove_fake_quant(model)
    out = args.out or args.build
    os.makedirs(out, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(out, "model_q.pt"))
    if out != args.build:  # localisation.py and photo_ablation.py read the architecture beside the checkpoint
        with open(os.path.join(out, "config.json"), "w") as f:
            json.dump(config, f)
    print(f"quantization-aware fine-tuning done in {(time.time() - t0) / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
