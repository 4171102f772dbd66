"""Images that are not chest X-rays, for measuring the out-of-distribution refusal (never for fitting it).

scikit-image's bundled sample photographs (public domain / CC0, shipped inside the package, no download)
plus random crops of them and procedurally generated textures. Returned as grey arrays, as the model sees.

`medical()`: medical images that are not chest radiographs (CT, MR, ultrasound, a nuclear-medicine scan),
the sample images bundled with pydicom (its test files; NEMA WG04 sample sets and others, "no restriction on
using these files" per pydicom's test_files/README.txt), displayed as a viewer would (percentile window).
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


# pydicom's bundled test images that are real medical images other than a chest radiograph (the other test
# files are synthetic, duplicates or too small to be images)
MEDICAL = {"693_J2KI.dcm": "ct-head", "J2K_pixelrep_mismatch.dcm": "ct-head-2", "CT_small.dcm": "ct-chest-axial",
           "JPEG2000.dcm": "nm-whole-body", "MR_small.dcm": "mr-small", "examples_overlay.dcm": "mr-abdomen",
           "examples_jpeg2k.dcm": "us-colour", "examples_palette.dcm": "us-palette"}


def medical(seed=1):
    """(names, grey float32 arrays): each image whole plus, where its shorter side is at least 256 pixels, three
    random crops (40-80 % of each side)."""
    import pydicom
    from pydicom.data import get_testdata_file

    rng = np.random.default_rng(seed)
    names, out = [], []
    for f, n in MEDICAL.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(get_testdata_file(f))
            a = ds.pixel_array  # colour (YBR) images come out as RGB
            if ds.get("PhotometricInterpretation", "") == "PALETTE COLOR":
                a = pydicom.pixels.apply_color_lut(a, ds)
        a = a.astype(np.float32)
        if a.ndim == 3 and a.shape[-1] == 3:
            a = a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114
        lo, hi = np.percentile(a, [0.5, 99.5])
        img = np.clip((a - lo) / max(hi - lo, 1e-6) * 255, 0, 255).astype(np.float32)
        names.append(n)
        out.append(img)
        h, w = img.shape
        for c in range(3 if min(h, w) >= 256 else 0):
            ch, cw = int(h * rng.uniform(0.4, 0.8)), int(w * rng.uniform(0.4, 0.8))
            y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
            names.append(f"{n}-crop{c}")
            out.append(img[y:y + ch, x:x + cw])
    return names, out
