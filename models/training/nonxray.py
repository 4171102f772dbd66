"""Images that are not chest X-rays, for measuring the out-of-distribution refusal (never for fitting it).

scikit-image's bundled sample photographs (public domain / CC0, shipped inside the package, no download)
plus random crops of them and procedurally generated textures. Returned as grey arrays, as the model sees.
"""
import warnings

import numpy as np

BUNDLED = ["astronaut", "brick", "camera", "cat", "checkerboard", "clock", "coffee", "coins", "colorwheel",
           "grass", "gravel", "horse", "hubble_deep_field", "immunohistochemistry", "logo", "microaneurysms",
           "moon", "page", "retina", "rocket", "text"]


def _grey(img):
    img = np.asarray(img)
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    if img.ndim == 3:
        img = img[..., :3].astype(np.float32)
        img = img[..., 0] * 0.299 + img[..., 1] * 0.587 + img[..., 2] * 0.114
    img = img.astype(np.float32)
    if img.max() <= 1.0:
        img *= 255
    return img


def images(seed=0):
    from skimage import data as skd

    rng = np.random.default_rng(seed)
    names, out = [], []
    for n in BUNDLED:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                img = _grey(getattr(skd, n)())
        except Exception:
            continue
        names.append(n)
        out.append(img)
        h, w = img.shape
        for c in range(3):
            ch, cw = int(h * rng.uniform(0.4, 0.8)), int(w * rng.uniform(0.4, 0.8))
            y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
            names.append(f"{n}-crop{c}")
            out.append(img[y:y + ch, x:x + cw])
    for i in range(20):
        kind = i % 4
        yy, xx = np.mgrid[0:256, 0:256].astype(np.float32)
        if kind == 0:
            img = rng.uniform(0, 255, (256, 256))
        elif kind == 1:
            a = rng.uniform(0, np.pi)
            img = 127 + 120 * np.sin((xx * np.cos(a) + yy * np.sin(a)) * rng.uniform(0.05, 0.5))
        elif kind == 2:
            img = (xx * rng.uniform(-1, 1) + yy * rng.uniform(-1, 1)) % 255
        else:
            import cv2
            img = cv2.GaussianBlur(rng.uniform(0, 255, (256, 256)).astype(np.float32), (0, 0), rng.uniform(2, 12))
        names.append(f"synthetic-{['noise', 'grating', 'ramp', 'blobs'][kind]}-{i}")
        out.append(img.astype(np.float32))
    return names, out
