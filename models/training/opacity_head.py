"""The opacity head: where on the film density has been added, learned without lesion labels.

The classifier's CAM follows the heart shadow (MODEL_CARD.md, localisation), and image-level labels do not
teach lesion position. This head learns it from synthetic opacities instead: soft, textured, brighter blobs
(what consolidation and infiltrates add to a film: density) drawn into the lung-dark parts of *normal
training films*, some of them then photographed (photo_sim). A small convolutional head (3x3 conv, ReLU,
3x3 conv) on the frozen features of block 7 (80 channels, 14x14, the same grid as the CAM) is trained to
say which cells hold the blob. Since 1.6.0, five such heads (seeds 7-11) are trained and grafted as one
whose logit is their mean: single heads scored 57-59 % on the synthetic validation set and 9-15 of the 31
boxes depending on the seed alone; their mean is steadier and scored higher on the synthetic set, also on
lesion shapes it never saw (session 28's notes). It is grafted onto the exported ONNX file as a sixth output,
`opacity` (per-cell logits); the backbone and the other five outputs are unchanged, bit for bit. The reader's regions
then follow the CAM (scaled to [0, 1] over the film) times sigmoid(opacity): where the classifier's evidence
and added density coincide (src/regions.rs, manifest `outputs.opacity`).

Scored on synthetic patches in validation normals (originals and photos apart: the only data variants of the
head were chosen on), and on the 31 NIH expert boxes (never used here) with export.localisation's rule, on the
films and on one simulated photo of each, next to the CAM alone.

Usage (from the repository root; models/build.sh runs it after export.py):
  PYTHONPATH=models/training python models/training/opacity_head.py --data ../shared/data \
      --model models/xray-reader.onnx
"""
import argparse
import hashlib
import json
import os
import tempfile
import time

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import helper, numpy_helper

import data
import export
import net

FEATURES = "/_blocks.7/Add_output_0"  # 80 channels at 14x14 (output stride 16)
OUTPUT = "opacity"
PREFIX = "opacity_head/"
HIDDEN = 32
PHOTO_SHARE = 0.5
HEADS = 5
# the manifest's regions.cam_exponent written with the grafted head: the reader's map is the opacity map alone
# (session 31, models/training/peak_rule.py: lesions found more often than with the CAM weighed in)
CAM_EXPONENT = 0.0


def strip_head(m):
    """Remove a previously grafted head, so the script can be rerun on its own output."""
    g = m.graph
    keep = [n for n in g.node if not n.name.startswith(PREFIX)]
    del g.node[:]
    g.node.extend(keep)
    inits = [i for i in g.initializer if not i.name.startswith(PREFIX)]
    del g.initializer[:]
    g.initializer.extend(inits)
    outs = [o for o in g.output if o.name != OUTPUT]
    del g.output[:]
    g.output.extend(outs)
    return m


def feature_session(model):
    m = strip_head(onnx.load(model))
    m.graph.output.append(helper.make_tensor_value_info(FEATURES, onnx.TensorProto.FLOAT, None))
    path = os.path.join(tempfile.mkdtemp(), "features.onnx")
    onnx.save(m, path)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def lung_dark(grey):
    """Where a blob may go: between the film's 10th and 45th percentiles after a blur (dark, but not the
    background outside the body), inside the central 70 % (a crude, label-free stand-in for the lungs)."""
    h, w = grey.shape
    b = cv2.GaussianBlur(grey.astype(np.float32), (0, 0), max(h, w) / 40)
    lo, hi = np.percentile(b, [10, 45])
    m = (b > lo) & (b < hi)
    m[: int(0.12 * h)] = m[int(0.85 * h):] = False
    m[:, : int(0.15 * w)] = m[:, int(0.85 * w):] = False
    return m


def _texture(rng, h, w):
    """Multiplicative grain around 1: blurred noise, 10-35 % of its spread."""
    tex = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), rng.uniform(3, 8))
    return 1 + rng.uniform(0.1, 0.35) * tex / (tex.std() + 1e-6)


def blob(rng, h, w, centre):
    """(textured mask, smooth mask) in [0, 1]: 1-4 rotated elliptic Gaussians, 5-22 % of the long side."""
    s = max(h, w)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    mask = np.zeros((h, w), np.float32)
    size = rng.uniform(0.05, 0.22) * s
    for _ in range(rng.integers(1, 5)):
        cy = centre[0] + rng.normal(0, 0.3) * size
        cx = centre[1] + rng.normal(0, 0.3) * size
        sy, sx = size * rng.uniform(0.3, 0.7, 2)
        a = rng.uniform(0, np.pi)
        dx, dy = xx - cx, yy - cy
        u = dx * np.cos(a) + dy * np.sin(a)
        v = -dx * np.sin(a) + dy * np.cos(a)
        mask = np.maximum(mask, np.exp(-0.5 * ((u / sx) ** 2 + (v / sy) ** 2)))
    return np.clip(mask * _texture(rng, h, w), 0, 1), mask


def _normalised(m):
    return m / max(float(m.max()), 1e-6)


# Other lesion shapes, never trained on: a check of how far "a soft patch" carries to what TB and other
# diseases look like. Each returns (textured density, region mask) like `blob`.

def nodules(rng, h, w, centre):
    """A cluster of 3-15 small round densities (nodular, miliary or tree-in-bud-like), 1-3 % of the long side."""
    s = max(h, w)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    spread = rng.uniform(0.06, 0.18) * s
    m = np.zeros((h, w), np.float32)
    for _ in range(rng.integers(3, 16)):
        cy, cx = centre[0] + rng.normal(0, 0.4) * spread, centre[1] + rng.normal(0, 0.4) * spread
        r = rng.uniform(0.008, 0.03) * s
        m = np.maximum(m, np.clip((r - np.hypot(yy - cy, xx - cx)) / (0.8 * r) + 0.5, 0, 1))
    region = _normalised(cv2.GaussianBlur(m, (0, 0), spread * 0.25))
    return np.clip(m * _texture(rng, h, w), 0, 1), np.maximum(region, m)


def cavity(rng, h, w, centre):
    """A thick-walled ring, 3-8 % of the long side in radius, in a fainter haze: the wall adds density, the
    centre none."""
    s = max(h, w)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = rng.uniform(0.03, 0.08) * s
    d = np.hypot((yy - centre[0]) / rng.uniform(0.8, 1.2), xx - centre[1])
    wall = np.exp(-0.5 * ((d - r) / (r * rng.uniform(0.25, 0.5))) ** 2)
    haze = rng.uniform(0.2, 0.6) * np.exp(-0.5 * (d / (2 * r)) ** 2) * (d > r)
    m = cv2.GaussianBlur(np.maximum(wall, haze).astype(np.float32), (0, 0), 1.0)
    return np.clip(m * _texture(rng, h, w), 0, 1), np.maximum(np.exp(-0.5 * (d / (1.6 * r)) ** 2), wall)


def fissure_edge(rng, h, w, centre):
    """Consolidation with one straight, sharp border (a lobe against its fissure): a patch cut by a line."""
    textured, mask = blob(rng, h, w, centre)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = rng.uniform(0, 2 * np.pi)
    side = (xx - centre[1]) * np.cos(a) + (yy - centre[0]) * np.sin(a) + rng.uniform(-0.03, 0.03) * max(h, w)
    cut = np.clip(side / 1.5 + 0.5, 0, 1)
    return textured * cut, mask * cut


def streaks(rng, h, w, centre):
    """3-7 thin bright bands (fibrotic streaks), 6-16 % of the long side, crossing near one place."""
    s = max(h, w)
    m = np.zeros((h, w), np.float32)
    length = rng.uniform(0.06, 0.16) * s
    for _ in range(rng.integers(3, 8)):
        a = rng.uniform(0, np.pi)
        x0, y0 = centre[1] + rng.normal(0, 0.3) * length, centre[0] + rng.normal(0, 0.3) * length
        dx, dy = np.cos(a) * length / 2, np.sin(a) * length / 2
        cv2.line(m, (int(x0 - dx), int(y0 - dy)), (int(x0 + dx), int(y0 + dy)), 1.0,
                 max(1, int(rng.uniform(0.004, 0.012) * s)), cv2.LINE_AA)
    m = _normalised(cv2.GaussianBlur(m, (0, 0), 1.2))
    region = _normalised(cv2.GaussianBlur(m, (0, 0), length * 0.2))
    return np.clip(m * _texture(rng, h, w), 0, 1), np.maximum(region, m)


OTHER_SHAPES = (nodules, cavity, fissure_edge, streaks)


def add_opacity(rng, grey, shape=blob):
    """The film with a synthetic opacity, and its mask; (None, None) when no lung-dark place exists."""
    h, w = grey.shape
    ys, xs = np.nonzero(lung_dark(grey))
    if len(ys) == 0:
        return None, None
    i = rng.integers(len(ys))
    textured, mask = shape(rng, h, w, (ys[i], xs[i]))
    g = grey.astype(np.float32)
    white = np.percentile(g, 97)
    out = g + rng.uniform(0.2, 0.6) * textured * np.maximum(white - g, 0)
    return np.clip(out, 0, 255).astype(np.uint8), mask


def cell_targets(mask, n=14):
    m = cv2.resize(mask, (n, n), interpolation=cv2.INTER_AREA)
    return m / max(m.max(), 1e-6)


def samples(rng, recs, seed_base, photo_share=PHOTO_SHARE, shapes=(blob,)):
    """(grey input image, 14x14 target, photographed?, shape name) for each film with an opacity (photographed
    `photo_share` of the time; its shape taken in turn from `shapes`) and once clean (shape None)."""
    out = []
    for j, r in enumerate(recs):
        grey = data.read_grey(r["path"])
        g, mask = add_opacity(rng, grey, shapes[j % len(shapes)])
        if g is not None:
            y = cell_targets(mask)
            photo = rng.random() < photo_share
            if photo:
                g = export.photo_view((*seed_base, 0, j), g)
            out.append((g, y, photo, shapes[j % len(shapes)].__name__))
        photo = rng.random() < photo_share
        clean = export.photo_view((*seed_base, 1, j), grey) if photo else grey
        out.append((clean, np.zeros((14, 14), np.float32), photo, None))
    return out


def head_net(channels, hidden=HIDDEN):
    return torch.nn.Sequential(torch.nn.Conv2d(channels, hidden, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.Conv2d(hidden, 1, 3, padding=1))


def train_head(feats, targets, epochs, seed, hidden=HIDDEN):
    """Feature maps [N,C,14,14] scaled per channel (no shift: zero padding stays zero), cells with target
    >= 0.5 positive, <= 0.05 negative, the rim between ignored; class-balanced BCE, AdamW."""
    scale = feats.std((0, 2, 3)) + 1e-3
    x = torch.from_numpy(feats / scale[:, None, None])
    t = torch.from_numpy(targets[:, None])
    weight = ((t >= 0.5) | (t <= 0.05)).float()
    y = (t >= 0.5).float()
    torch.manual_seed(seed)
    head = head_net(x.shape[1], hidden)
    drop = torch.nn.Dropout2d(0.2)
    opt = torch.optim.AdamW(head.parameters(), 3e-3, weight_decay=1e-2)
    pos_weight = (1 - y.mean()) / y.mean()
    for epoch in range(epochs):
        perm = torch.randperm(len(x))
        total = 0.0
        for i in range(0, len(x), 64):
            j = perm[i:i + 64]
            loss = (torch.nn.functional.binary_cross_entropy_with_logits(
                head(drop(x[j])), y[j], pos_weight=pos_weight, reduction="none") * weight[j]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(j)
        if epoch % 10 == 9 or epoch == epochs - 1:
            print(f"  epoch {epoch + 1}/{epochs}: loss {total / len(x):.4f}", flush=True)
    head.eval()
    return head, scale


def graft(model, heads, scale):
    """The heads as one set of ONNX nodes reading FEATURES, giving the mean of their logits: their hidden layers
    side by side (hidden x len(heads) channels), the second convolution's weights over all of them divided by
    the number of heads. The channel scale is folded into the first weights."""
    m = strip_head(onnx.load(model))
    g = m.graph
    n = len(heads)
    w1 = np.concatenate([h[0].weight.detach().numpy() for h in heads]) / scale[None, :, None, None]
    w1 = w1.astype(np.float32)
    b1 = np.concatenate([h[0].bias.detach().numpy() for h in heads]).astype(np.float32)
    w2 = (np.concatenate([h[2].weight.detach().numpy() for h in heads], axis=1) / n).astype(np.float32)
    b2 = np.mean([h[2].bias.detach().numpy() for h in heads], axis=0).astype(np.float32)
    # the first weights stored as the backbone's are (net.weight_levels: 6 bits per output channel, int8 QDQ)
    levels = net.weight_levels(w1.size)
    flat = w1.reshape(w1.shape[0], -1)
    w1_scale = (np.maximum(np.abs(flat).max(1), 1e-12) / levels).astype(np.float32)
    w1_q = np.clip(np.round(flat / w1_scale[:, None]), -levels, levels).astype(np.int8).reshape(w1.shape)
    inits = {
        PREFIX + "w1_q": w1_q, PREFIX + "w1_scale": w1_scale, PREFIX + "w1_zp": np.zeros(w1.shape[0], np.int8),
        PREFIX + "b1": b1, PREFIX + "w2": w2, PREFIX + "b2": b2,
    }
    g.initializer.extend(numpy_helper.from_array(v, k) for k, v in inits.items())
    pads = [1, 1, 1, 1]
    g.node.extend([
        helper.make_node("DequantizeLinear", [PREFIX + "w1_q", PREFIX + "w1_scale", PREFIX + "w1_zp"], [PREFIX + "w1"],
                         name=PREFIX + "w1_dq", axis=0),
        helper.make_node("Conv", [FEATURES, PREFIX + "w1", PREFIX + "b1"], [PREFIX + "hidden"], name=PREFIX + "conv1",
                         kernel_shape=[3, 3], pads=pads),
        helper.make_node("Relu", [PREFIX + "hidden"], [PREFIX + "relu"], name=PREFIX + "relu"),
        helper.make_node("Conv", [PREFIX + "relu", PREFIX + "w2", PREFIX + "b2"], [OUTPUT], name=PREFIX + "conv2",
                         kernel_shape=[3, 3], pads=pads),
    ])
    g.output.append(helper.make_tensor_value_info(OUTPUT, onnx.TensorProto.FLOAT, [1, 1, 14, 14]))
    onnx.checker.check_model(m)
    return m


def localisation_map(cam, opacity, cam_exponent=1.0, lung_prior=None):
    """The reader's map for peaks and regions (src/regions.rs, localisation_map): sigmoid(opacity) times the
    CAM scaled to [0, 1] over the film and raised to cam_exponent (the manifest's regions.cam_exponent; 0, the
    opacity map alone, since session 31: CAM_EXPONENT), times the lung prior when one is given (the manifest's
    regions.lung_prior, since session 32: lung_prior.py). This script's scores name the exponent 1 map
    "cam_x_opacity", as they did when it was the reader's."""
    s = 1 / (1 + np.exp(-np.clip(opacity, -30, 30)))
    if cam_exponent != 0:
        lo, hi = cam.min(), cam.max()
        c = (cam - lo) / (hi - lo) if hi - lo > 1e-6 else np.zeros_like(cam)
        s = c ** cam_exponent * s
    return s if lung_prior is None else s * np.asarray(lung_prior, np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("XRAY_DATA", "../shared/data"))
    ap.add_argument("--model", default="models/xray-reader.onnx", help="rewritten in place, manifest beside it")
    ap.add_argument("--films", type=int, default=300, help="normal training films per source")
    ap.add_argument("--epochs", type=int, default=120)
    ap.add_argument("--photo-share", type=float, default=PHOTO_SHARE,
                    help="share of training inputs photographed (photo_sim) and flattened")
    ap.add_argument("--hidden", type=int, default=HIDDEN, help="channels of the head's hidden layer")
    ap.add_argument("--heads", type=int, default=HEADS,
                    help="heads trained (seeds --seed, --seed + 1, ...) and grafted as one, giving their mean logit")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--train-shapes", default="blob",
                    help="comma-separated lesion shapes drawn into the training films in turn: blob (the default) "
                         "and any of " + ", ".join(f.__name__ for f in OTHER_SHAPES))
    args = ap.parse_args()
    shapes = {f.__name__: f for f in (blob, *OTHER_SHAPES)}
    train_shapes = tuple(shapes[n] for n in args.train_shapes.split(","))
    torch.set_num_threads(2)
    t0 = time.time()
    rng = np.random.default_rng(args.seed)
    data.configure_for_onnx(args.model)
    feat = feature_session(args.model)
    recs = data.load_records(args.data)

    train = data.training_normals(recs, rng, args.films)
    pairs = samples(rng, train, (args.seed, 1), args.photo_share, train_shapes)
    feats = np.stack([feat.run([FEATURES], {"image": data.to_input(g)[None, None]})[0][0] for g, _, _, _ in pairs])
    targets = np.stack([y for _, y, _, _ in pairs]).astype(np.float32)
    print(f"{len(pairs)} training inputs from {len(train)} normal films, {time.time() - t0:.0f} s", flush=True)
    trained = [train_head(feats.astype(np.float32), targets, args.epochs, args.seed + k, args.hidden)
               for k in range(args.heads)]
    heads, scale = [h for h, _ in trained], trained[0][1]  # the scale depends on the features alone
    grafted = graft(args.model, heads, scale)
    # scored through onnxruntime on the grafted file, with the features as an extra output for the single heads
    probe = onnx.ModelProto()
    probe.CopyFrom(grafted)
    probe.graph.output.append(helper.make_tensor_value_info(FEATURES, onnx.TensorProto.FLOAT, None))
    path = os.path.join(tempfile.mkdtemp(), "grafted.onnx")
    onnx.save(probe, path)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])

    def run(g):
        """The CAM and the grafted opacity map, and each head's own map (float weights, torch): one forward pass."""
        cam, opacity, f = sess.run(["cam", OUTPUT, FEATURES], {"image": data.to_input(g)[None, None]})
        with torch.no_grad():
            f = torch.from_numpy((f / scale[None, :, None, None]).astype(np.float32))
            each = [h(f)[0, 0].numpy() for h in heads]
        return cam[0, 0], opacity[0, 0], each

    def peak_in(v, y):
        u, w = export.cam_peak(v)
        return bool(y[min(int(w * 14), 13), min(int(u * 14), 13)] >= 0.5)

    # synthetic opacities in validation normals (originals and photos): the map's peak on the blob
    val = [r for r in recs if r["label"] == 0 and r["val"]]

    def synthetic_set(rng, seed_base, shapes):
        """Peak-on-lesion hits per map, per head (opacity alone), and which inputs were photographed."""
        hits = {"cam": [], "opacity": [], "cam_x_opacity": []}
        each_hits, photos, shape_of = [[] for _ in heads], [], []
        for g, y, photo, shape in samples(rng, val, seed_base, shapes=shapes):
            if y.max() == 0:
                continue
            cam, opacity, each = run(g)
            photos.append(photo)
            shape_of.append(shape)
            for k, v in (("cam", cam), ("opacity", opacity), ("cam_x_opacity", localisation_map(cam, opacity))):
                hits[k].append(peak_in(v, y))
            for h, v in zip(each_hits, each):
                h.append(peak_in(v, y))
        return hits, each_hits, np.array(photos), np.array(shape_of)

    synthetic, synthetic_each, photographed, _ = synthetic_set(np.random.default_rng(args.seed + 1), (args.seed, 2),
                                                               (blob,))
    # the same validation normals with lesion shapes the head never saw in training
    other, other_each, other_photographed, other_shape = synthetic_set(np.random.default_rng(args.seed + 3),
                                                                       (args.seed, 4), OTHER_SHAPES)

    # the NIH expert boxes, export.localisation's rule; then simulated photos of the same films (export.photo_view:
    # the film as printed, flattened back to its own frame with a 2 % corner error, so the boxes still apply)
    boxes = {"cam": [], "opacity": [], "cam_x_opacity": []}
    photo_boxes = {"cam": [], "opacity": [], "cam_x_opacity": []}
    boxes_each, photo_boxes_each = [[] for _ in heads], [[] for _ in heads]
    for j, r in enumerate([r for r in recs if r["bbox"]]):
        img, (top, bottom, left, right) = data.read_with_frame(r["path"])
        H, W = img.shape
        bx = export.parse_boxes(r["bbox"])
        views = ((boxes, boxes_each, img[top:bottom, left:right], (top, bottom, left, right)),
                 (photo_boxes, photo_boxes_each, export.photo_view((99, 0, j), img), (0, H, 0, W)))
        for hits, hits_each, view, (top, bottom, left, right) in views:
            cam, opacity, each = run(view)

            def inside(v):
                u, w = export.cam_peak(v)
                x, y = left + u * (right - left), top + w * (bottom - top)
                return export.in_boxes(x, y, bx)

            for k, v in (("cam", cam), ("opacity", opacity), ("cam_x_opacity", localisation_map(cam, opacity))):
                hits[k].append(inside(v))
            for h, v in zip(hits_each, each):
                h.append(inside(localisation_map(cam, v)))

    result = {
        "features": FEATURES, "hidden": args.hidden, "films_per_source": args.films, "training_inputs": len(pairs),
        "epochs": args.epochs, "seed": args.seed, "heads": args.heads,
        "photo_share": args.photo_share, "train_shapes": args.train_shapes,
        "synthetic_validation_peak_on_blob": {k: float(np.mean(v)) for k, v in synthetic.items()},
        "synthetic_validation_n": len(synthetic["cam"]),
        "synthetic_validation_originals": {k: float(np.mean(np.array(v)[~photographed])) for k, v in synthetic.items()},
        "synthetic_validation_photos": {k: float(np.mean(np.array(v)[photographed])) for k, v in synthetic.items()},
        "synthetic_validation_photos_n": int(photographed.sum()),
        "nih_boxes_peak_inside": {k: int(np.sum(v)) for k, v in boxes.items()},
        "nih_boxes_photos_peak_inside": {k: int(np.sum(v)) for k, v in photo_boxes.items()},
        "nih_boxes_n": len(boxes["cam"]),
        "other_shapes_peak_on_lesion": {k: float(np.mean(v)) for k, v in other.items()},
        "other_shapes_n": len(other["cam"]),
        "other_shapes_photos_n": int(other_photographed.sum()),
        "other_shapes_opacity_originals": float(np.mean(np.array(other["opacity"])[~other_photographed])),
        "other_shapes_opacity_photos": float(np.mean(np.array(other["opacity"])[other_photographed])),
        "other_shapes_opacity_by_shape": {
            f.__name__: float(np.mean(np.array(other["opacity"])[other_shape == f.__name__])) for f in OTHER_SHAPES},
        # each head on its own (seeds seed, seed + 1, ...; float weights): the spread the mean of them smooths
        "each_head_synthetic_peak_on_blob": [float(np.mean(v)) for v in synthetic_each],
        "each_head_other_shapes_peak_on_lesion": [float(np.mean(v)) for v in other_each],
        "each_head_nih_boxes_peak_inside": [int(np.sum(v)) for v in boxes_each],
        "each_head_nih_boxes_photos_peak_inside": [int(np.sum(v)) for v in photo_boxes_each],
    }
    print(json.dumps(result, indent=1), flush=True)

    onnx.save(grafted, args.model)
    sha = hashlib.sha256(open(args.model, "rb").read()).hexdigest()
    manifest_path = os.path.splitext(args.model)[0] + ".manifest.json"
    with open(manifest_path) as f:
        manifest = json.load(f)
    manifest["version"] = export.VERSION
    manifest["sha256"] = sha
    manifest["outputs"][OUTPUT] = OUTPUT
    manifest["regions"]["cam_exponent"] = CAM_EXPONENT
    # (a rerun on its own output replaces the head's words, as it replaces the head)
    manifest["about"]["architecture"] = manifest["about"]["architecture"].split("; opacity head")[0]
    manifest["about"]["architecture"] += (f"; opacity head (mean of {args.heads} heads, each 3x3 conv {args.hidden}, "
                                          "ReLU, 3x3 conv) on block 7's 14x14 features, trained on synthetic "
                                          "opacities in normal films")
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, separators=(",", ":"))
    metrics_path = os.path.join(os.path.dirname(args.model), "metrics.json")
    with open(metrics_path) as f:
        metrics = json.load(f)
    metrics["model"] = {"sha256": sha, "bytes": os.path.getsize(args.model)}
    metrics["opacity_head"] = result
    with open(metrics_path, "w") as f:
        json.dump(metrics, f, indent=1)
    print(f"wrote {args.model} ({os.path.getsize(args.model) / 1e6:.2f} MB), manifest and metrics "
          f"in {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
