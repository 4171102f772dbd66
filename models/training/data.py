"""Loading ../shared/data and the patient-level split shared by training, export and evaluation."""
import csv
import hashlib
import json
import os

import cv2
import numpy as np

MAX_SIDE = 320  # images are cached at most this large; the model sees 224


def is_validation(source, patient, percent):
    """Deterministic patient-level split: a patient is in validation iff its hash falls under `percent`."""
    h = hashlib.sha256(f"{source}:{patient}".encode()).digest()
    return int.from_bytes(h[:4], "little") % 100 < percent


VAL_PERCENT = {"kermany": 15, "nih": 25}


def load_records(data_dir):
    recs = []
    for source in ("kermany", "nih"):
        with open(os.path.join(data_dir, f"{source}.csv")) as f:
            for row in csv.DictReader(f):
                recs.append({
                    "source": source,
                    "path": os.path.join(data_dir, row["path"]),
                    "rel": row["path"],
                    "label": 1 if row["label"] == "PNEUMONIA" else 0,
                    "patient": row["patient"],
                    "bbox": row.get("bbox_xywh", ""),
                    "val": is_validation(source, row["patient"], VAL_PERCENT[source]),
                })
    return recs


def training_normals(recs, rng, per_source):
    """Up to `per_source` normal training-split films of each source, drawn with `rng` (shuffled in place)."""
    films = []
    for source in ("kermany", "nih"):
        normals = [r for r in recs if r["source"] == source and r["label"] == 0 and not r["val"]]
        rng.shuffle(normals)
        films += normals[:per_source]
    return films


def _imread_grey(path):
    img = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise IOError(f"cannot read {path}")
    return img


def _fit(img, max_side):
    h, w = img.shape
    s = max_side / max(h, w)
    if s < 1:
        img = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    return img


def _trimmed(img):
    top, bottom, left, right = flat_border(img)
    return img[top:bottom, left:right]


def read_grey(path, max_side=MAX_SIDE, trim=None):
    """The file as the reader sees it: grey, flat padding trimmed (when configured, or when `trim` says so),
    at most max_side. A film to be photographed is read with trim=False: a printed film keeps its padding,
    and the reader trims the photo's edges, not the film's."""
    img = _imread_grey(path)
    if TRIM if trim is None else trim:
        img = _trimmed(img)
    return _fit(img, max_side)


def read_views(path, max_side=MAX_SIDE):
    """(as read, as printed): read_grey's image and, when padding was trimmed from it, the whole file at
    most max_side (what a phone photo of the printed film shows); None for the second when it is the same."""
    img = _imread_grey(path)
    if not TRIM:
        return _fit(img, max_side), None
    inner = _trimmed(img)
    return _fit(inner, max_side), (_fit(img, max_side) if inner.shape != img.shape else None)


def percentile_normalise(grey, low=1.0, high=99.0):
    """Map the image's [low, high] percentiles to [0, 1] and clip: exposure-invariant, as in the reader."""
    g = grey.astype(np.float32)
    lo, hi = np.percentile(g, [low, high])
    if hi - lo < 1e-3:
        return np.zeros_like(g)
    return np.clip((g - lo) / (hi - lo), 0, 1)


# Local contrast equalisation (CLAHE) after the percentile mapping, against glare, vignetting and exposure
# gradients in photos of films (train.py --clahe; model 1.2.0 on). The parameters are written into the
# manifest's input.clahe by export.py, and src/preprocess.rs does the same. Set from a checkpoint's
# config.json by configure(); off by default.
CLAHE_SPEC = {"clip_limit": 2.0, "tiles": [8, 8]}
CLAHE = False

# Flat padding around the radiograph (PACS black bars, scanner frames, squared-up exports) is cut off
# before anything else (train.py --trim; written into the manifest's input.trim_border by export.py; the
# reader's film stage does the same, src/border.rs). Off by default.
TRIM_SPEC = {"max_range": 6, "min_keep": 0.5}
TRIM = False


def flat_border(grey, max_range=TRIM_SPEC["max_range"], min_keep=TRIM_SPEC["min_keep"]):
    """(top, bottom, left, right) of the part of a uint8 image inside its flat edge rows and columns.

    A row or column is flat when its grey levels (within the part still kept) span at most `max_range`.
    Flat rows are peeled from the top and bottom, then flat columns from the left and right, and again
    until nothing changes. When less than `min_keep` of the height or width would remain, nothing is
    trimmed (a blank or nearly blank image is left to the reader's other checks)."""
    h, w = grey.shape
    t, b, l, r = 0, h, 0, w

    def flat(v):
        return int(v.max()) - int(v.min()) <= max_range

    changed = True
    while changed:
        changed = False
        while b > t and flat(grey[t, l:r]):
            t += 1
            changed = True
        while b > t and flat(grey[b - 1, l:r]):
            b -= 1
            changed = True
        if b <= t:
            break
        while r > l and flat(grey[t:b, l]):
            l += 1
            changed = True
        while r > l and flat(grey[t:b, r - 1]):
            r -= 1
            changed = True
        if r <= l:
            break
    if b - t < min_keep * h or r - l < min_keep * w:
        return 0, h, 0, w
    return t, b, l, r


def read_with_frame(path):
    """(the file as read, grey, uncut; (top, bottom, left, right) of the part the reader keeps of it: inside
    its flat padding when trimming is configured, else all of it), for scoring peaks in the file's pixels."""
    img = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    h, w = img.shape
    return img, (flat_border(img) if TRIM else (0, h, 0, w))


def configure(config):
    """Match the preprocessing to a checkpoint's config.json (train.py --clahe, --trim)."""
    global CLAHE, TRIM
    CLAHE = bool(config.get("clahe", False))
    TRIM = bool(config.get("trim", False))


def configure_for_onnx(onnx_path):
    """Match the preprocessing to an exported model's manifest (next to it, as export.py writes it)."""
    with open(os.path.splitext(onnx_path)[0] + ".manifest.json") as f:
        spec = json.load(f)["input"]
    clahe, trim = spec.get("clahe"), spec.get("trim_border")
    if clahe not in (None, CLAHE_SPEC):
        raise ValueError(f"{onnx_path}: manifest CLAHE {clahe} is not data.py's {CLAHE_SPEC}")
    if trim not in (None, TRIM_SPEC):
        raise ValueError(f"{onnx_path}: manifest trim_border {trim} is not data.py's {TRIM_SPEC}")
    configure({"clahe": clahe is not None, "trim": trim is not None})


def to_input(grey, size=224):
    """grey uint8/float (any size) -> float32 [size, size] in [0, 1], exactly the reader's preprocessing
    (with CLAHE when configured: on the 8-bit rounding of the percentile-mapped image, then mapped again)."""
    g = cv2.resize(grey.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
    x = percentile_normalise(g)
    if CLAHE:
        u = np.round(x * 255).astype(np.uint8)
        x = percentile_normalise(cv2.createCLAHE(clipLimit=CLAHE_SPEC["clip_limit"],
                                                    tileGridSize=tuple(CLAHE_SPEC["tiles"])).apply(u))
    return x.astype(np.float32)
