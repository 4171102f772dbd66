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


WORDS = ("patient name date of birth ward clinic haemoglobin glucose creatinine sodium potassium result units "
         "reference range referral letter dear colleague please review chest radiograph findings history cough "
         "fever weeks sputum sample negative positive tablets twice daily signature follow-up appointment").split()


def _font(rng, size):
    from PIL import ImageFont
    import glob
    fonts = sorted(glob.glob("/usr/share/fonts/truetype/*/*.ttf"))
    if fonts:
        return ImageFont.truetype(fonts[int(rng.integers(len(fonts)))], size)
    return ImageFont.load_default(size=size)  # Pillow's own font where the system has none


def _words(rng, n):
    return " ".join(WORDS[int(i)] for i in rng.integers(0, len(WORDS), n))


def _page(rng, kind, w, h):
    """A document as a scan or a PDF export shows it: a letter, a table of results or a form (RGB, uint8)."""
    from PIL import Image, ImageDraw
    paper = tuple(int(255 - rng.integers(0, 25)) for _ in range(3))
    im = Image.new("RGB", (w, h), paper)
    d = ImageDraw.Draw(im)
    font = _font(rng, int(rng.integers(14, 34)))
    ink = (int(rng.integers(0, 60)),) * 3
    y = int(rng.integers(20, 80))
    if kind == "table":
        cols = int(rng.integers(3, 7))
        while y < h - 60:
            d.line([(40, y), (w - 40, y)], fill=(70, 70, 70), width=2)
            for c in range(cols):
                text = _words(rng, 1) + (f" {rng.uniform(0, 200):.1f}" if c else "")
                d.text((50 + c * (w - 80) // cols, y + 5), text, font=font, fill=ink)
            y += font.size + 16
    else:
        while y < h - 50:
            d.text((int(rng.integers(30, 80)), y), _words(rng, int(rng.integers(3, 12))), font=font, fill=ink)
            y += int(font.size * rng.uniform(1.3, 2.2))
    if kind == "form":
        for _ in range(4):
            x0, y0 = int(rng.integers(30, w // 2)), int(rng.integers(30, h - 100))
            d.rectangle([x0, y0, x0 + int(rng.integers(100, w // 2)), y0 + int(rng.integers(30, 90))], outline=ink,
                        width=3)
        d.rectangle([20, 20, w // 3, 90], fill=tuple(int(c) for c in rng.integers(0, 256, 3)))  # a letterhead logo
    return np.asarray(im)


def _screenshot(rng, dark, w, h):
    """A phone or computer screenshot: an app bar, lines of text, buttons, in light or dark mode (RGB, uint8)."""
    from PIL import Image, ImageDraw
    bg = (int(rng.integers(10, 40)),) * 3 if dark else (int(rng.integers(235, 256)),) * 3
    fg = (int(rng.integers(200, 240)),) * 3 if dark else (int(rng.integers(10, 60)),) * 3
    accent = tuple(int(c) for c in rng.integers(0, 256, 3))
    im = Image.new("RGB", (w, h), bg)
    d = ImageDraw.Draw(im)
    bar = int(h * rng.uniform(0.05, 0.09))
    d.rectangle([0, 0, w, bar], fill=accent)
    font = _font(rng, int(w * rng.uniform(0.025, 0.045)))
    y = bar + 30
    while y < h - 2 * font.size:
        if rng.random() < 0.15:  # a button
            bw = int(w * rng.uniform(0.2, 0.5))
            d.rounded_rectangle([30, y, 30 + bw, y + 2 * font.size], radius=font.size // 2, fill=accent)
            y += 3 * font.size
        else:
            d.text((30, y), _words(rng, int(rng.integers(2, 8))), font=font, fill=fg)
            y += int(font.size * rng.uniform(1.4, 2.4))
    return np.asarray(im)


def _photographed(rng, rgb):
    """The page photographed lying on a desk: tilted, unevenly lit, slightly blurred, noisy."""
    import cv2
    h, w = rgb.shape[:2]
    W, H = int(w * 1.5), int(h * 1.4)
    desk = np.empty((H, W, 3), np.uint8)
    desk[:] = rng.integers([60, 50, 30], [160, 120, 90])
    j = lambda: rng.uniform(-0.08, 0.08)  # noqa: E731
    dst = np.float32([[W * (0.15 + j()), H * (0.1 + j())], [W * (0.85 + j()), H * (0.1 + j())],
                      [W * (0.85 + j()), H * (0.9 + j())], [W * (0.15 + j()), H * (0.9 + j())]])
    m = cv2.getPerspectiveTransform(np.float32([[0, 0], [w, 0], [w, h], [0, h]]), dst)
    out = cv2.warpPerspective(rgb, m, (W, H), dst=desk, borderMode=cv2.BORDER_TRANSPARENT).astype(np.float32)
    out *= np.linspace(rng.uniform(0.6, 1.0), rng.uniform(0.8, 1.1), W, dtype=np.float32)[None, :, None]
    out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.3, 1.2)) + rng.normal(0, 4, out.shape)
    return np.clip(out, 0, 255).astype(np.uint8)


def everyday(seed=2):
    """Everyday images a phone holds that are not X-rays, drawn here (no bundled or downloaded files): documents
    (a letter, a table of lab results, a form) as scans and as photos of the page on a desk, and screenshots in
    light and dark mode. (names, RGB uint8 arrays)."""
    rng = np.random.default_rng(seed)
    names, out = [], []
    for kind in ("letter", "table", "form"):
        for k in range(6):
            w, h = [(850, 1100), (1100, 850), (1240, 1754)][int(rng.integers(3))]
            page = _page(rng, kind, w, h)
            names += [f"{kind}-{k}-scan", f"{kind}-{k}-photo"]
            out += [page, _photographed(rng, page)]
    for dark in (False, True):
        for k in range(6):
            w, h = [(1080, 2340), (1920, 1080), (1170, 2532)][int(rng.integers(3))]
            names.append(f"screenshot-{'dark' if dark else 'light'}-{k}")
            out.append(_screenshot(rng, dark, w, h))
    return names, out
