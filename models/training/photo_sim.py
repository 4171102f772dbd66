"""Photographic augmentation: what happens to a radiograph between the film and a phone's JPEG.

All functions take and return numpy arrays and draw randomness from an explicit np.random.Generator, so
the training run and the fixture/validation generators are reproducible from one seed.
"""
import cv2
import numpy as np

# Names of effects to leave out ("border", "cast", "exposure", "glare", "moire", "vignette", "blur", "noise",
# "jpeg", "jitter"): for photo_ablation.py only; empty (everything applied) everywhere else.
DISABLED = set()


def _background(rng, h, w):
    """A room/lightbox/desk background: a colour gradient with texture."""
    c0 = rng.uniform(0, 255, 3)
    c1 = rng.uniform(0, 255, 3)
    t = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
    if rng.random() < 0.5:
        t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    bg = (c0 * (1 - t) + c1 * t) * np.ones((h, w, 1), np.float32)
    noise = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), rng.uniform(1, 8))
    bg += noise[..., None] * rng.uniform(0, 40)
    return np.clip(bg, 0, 255)


def _film_with_border(rng, grey):
    """The film as it sits on a lightbox: optional clear (bright) or dark margin around the exposed area."""
    h, w = grey.shape
    if rng.random() < 0.5 and "border" not in DISABLED:
        m = int(rng.uniform(0.01, 0.06) * max(h, w))
        value = rng.uniform(200, 255) if rng.random() < 0.6 else rng.uniform(0, 40)
        out = np.full((h + 2 * m, w + 2 * m), value, np.float32)
        out[m:m + h, m:m + w] = grey
        return out
    return grey.astype(np.float32)


def random_quad(rng, W, H, min_cover=0.45, max_cover=0.85, tilt=0.12):
    """Four corners (TL, TR, BR, BL) of a tilted film inside a W x H photo."""
    cover = rng.uniform(min_cover, max_cover)
    fw, fh = W * cover, H * cover * rng.uniform(0.95, 1.1)
    fh = min(fh, H * 0.92)
    cx = W / 2 + rng.uniform(-1, 1) * (W - fw) / 3
    cy = H / 2 + rng.uniform(-1, 1) * (H - fh) / 3
    base = np.array([[-fw / 2, -fh / 2], [fw / 2, -fh / 2], [fw / 2, fh / 2], [-fw / 2, fh / 2]])
    a = np.deg2rad(rng.uniform(-12, 12))
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    q = base @ rot.T
    q += rng.uniform(-tilt, tilt, (4, 2)) * np.array([fw, fh])
    q += np.array([cx, cy])
    q[:, 0] = np.clip(q[:, 0], 2, W - 3)
    q[:, 1] = np.clip(q[:, 1], 2, H - 3)
    return q.astype(np.float32)


def photograph(rng, grey, out_size=None, metering=False):
    """Simulate a phone photo of a film on a lightbox/monitor. Returns (RGB uint8 photo, corners of the film).

    The corners are those of the whole film sheet (including any margin), in photo pixels, TL,TR,BR,BL.
    `metering` (`train.py --metering`, a session-14 experiment, shipped since 1.4.0) adds how a phone exposes and
    processes the scene (`meter`, and noise reduction in `degrade`); without it the photo and the random
    numbers drawn are those of earlier versions, so the validation photos stay comparable across models.
    """
    film = _film_with_border(rng, grey)
    fh, fw = film.shape
    if out_size is None:
        long_side = int(rng.uniform(256, 448))
        W, H = (long_side, int(long_side * 4 / 3)) if rng.random() < 0.7 else (int(long_side * 4 / 3), long_side)
    else:
        W, H = out_size
    quad = random_quad(rng, W, H)
    src = np.array([[0, 0], [fw - 1, 0], [fw - 1, fh - 1], [0, fh - 1]], np.float32)
    M = cv2.getPerspectiveTransform(src, quad)
    bg = _background(rng, H, W)
    # the film transmits the lightbox: a colour cast multiplies the film's grey
    cast = rng.uniform(0.8, 1.0, 3) if rng.random() < 0.7 else np.ones(3)
    if "cast" in DISABLED:
        cast = np.ones(3)
    film_rgb = film[..., None] * cast[None, None, :]
    warped = cv2.warpPerspective(film_rgb.astype(np.float32), M, (W, H), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.ones((fh, fw), np.float32), M, (W, H), flags=cv2.INTER_LINEAR)[..., None]
    img = warped * mask + bg * (1 - mask)
    if metering:
        img = meter(rng, img, mask[..., 0] > 0.5)
    img = degrade(rng, img, photo=True, denoise=metering)
    return img, quad


def meter(rng, img, film):
    """A phone's exposure and tone processing of the scene (float RGB 0..255; `film`: the film's pixels).

    Exposed for the film (a tap on it, or the film filling the metering area), its clear parts - mediastinum,
    bones, the margin - clip to white; exposed for the bright lightbox, the film comes out dark and its
    densest parts crush to black. Local (HDR-like) tone mapping then pulls each neighbourhood's level towards
    mid-grey while keeping its detail, which flattens the film's large-scale contrast."""
    lum = img.mean(2)
    inside = lum[film] if film.sum() > 100 else lum.ravel()
    r = rng.random()
    if r < 0.4:  # exposed for the film: everything above this percentile of the film clips
        level = np.percentile(inside, rng.uniform(65, 97))
        img = img * (rng.uniform(245, 255) / max(level, 1.0))
    elif r < 0.6:  # exposed for the light around it: everything below this percentile of the film crushes
        floor = np.percentile(inside, rng.uniform(3, 25))
        img = (img - floor) * (255.0 / max(255.0 - floor, 1.0))
    img = np.clip(img, 0, 255)
    if rng.random() < 0.35:
        H, W = img.shape[:2]
        lum = img.mean(2)
        base = cv2.GaussianBlur(lum, (0, 0), max(H, W) * rng.uniform(0.02, 0.1))
        shift = (128.0 - base) * rng.uniform(0.2, 0.6)
        img = np.clip(img + shift[..., None], 0, 255)
    return img


def degrade(rng, img, photo=False, denoise=False):
    """Camera/lighting/compression artefacts on a float image (H,W[,3]) in 0..255; returns uint8.
    `denoise`: sometimes a phone's noise reduction after the noise (edges kept, fine texture smeared)."""
    img = img.astype(np.float32)
    grey_input = img.ndim == 2
    if grey_input:
        img = img[..., None].repeat(3, 2)
    H, W = img.shape[:2]
    # exposure / gamma / contrast
    gamma, contrast, offset = rng.uniform(0.7, 1.4), rng.uniform(0.75, 1.2), rng.uniform(-25, 25)
    if "exposure" not in DISABLED:
        img = 255.0 * (np.clip(img / 255.0, 0, 1) ** gamma)
        img = (img - 128) * contrast + 128 + offset
    if (photo or rng.random() < 0.3) and "glare" not in DISABLED:
        # glare: one or two bright soft blobs
        for _ in range(rng.integers(0, 3)):
            yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
            cx, cy = rng.uniform(0, W), rng.uniform(0, H)
            s = rng.uniform(0.05, 0.25) * max(H, W)
            img += rng.uniform(30, 140) * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s))[..., None]
    if rng.random() < (0.35 if photo else 0.1) and "moire" not in DISABLED:
        # moire: interference of two fine gratings (photographing a monitor or a printed halftone)
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        f1, f2 = rng.uniform(0.3, 1.2), rng.uniform(0.3, 1.2)
        a1, a2 = rng.uniform(0, np.pi, 2)
        g = np.sin(f1 * (xx * np.cos(a1) + yy * np.sin(a1))) * np.sin(f2 * (xx * np.cos(a2) + yy * np.sin(a2)))
        img *= (1 + rng.uniform(0.03, 0.12) * g)[..., None]
    if photo and rng.random() < 0.6 and "vignette" not in DISABLED:
        # vignetting
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        r2 = ((xx - W / 2) / W) ** 2 + ((yy - H / 2) / H) ** 2
        img *= (1 - rng.uniform(0.1, 0.5) * r2)[..., None]
    if rng.random() < 0.5 and "blur" not in DISABLED:
        if rng.random() < 0.7:
            img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 1.6))
        else:
            k = int(rng.integers(3, 8))
            img = motion_blur(img, k, rng.uniform(0, 180))
    if rng.random() < 0.7 and "noise" not in DISABLED:
        img += rng.normal(0, rng.uniform(1, 10), img.shape[:2])[..., None]
    img = np.clip(img, 0, 255).astype(np.uint8)
    if denoise and rng.random() < 0.3:
        d = int(rng.integers(3, 8))
        img = cv2.bilateralFilter(img, d, rng.uniform(15, 45), d)
    if rng.random() < 0.8 and "jpeg" not in DISABLED:
        q = int(rng.integers(30, 95))
        ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])
        img = cv2.imdecode(enc, cv2.IMREAD_UNCHANGED)
    return img[..., 0] if grey_input else img


def motion_blur(img, length, angle):
    """A straight shake of `length` pixels at `angle` degrees."""
    kern = np.zeros((length, length), np.float32)
    kern[length // 2, :] = 1.0 / length
    rot = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), angle, 1.0)
    kern = cv2.warpAffine(kern, rot, (length, length))
    return cv2.filter2D(img, -1, kern / max(kern.sum(), 1e-6))


def flatten(rng, photo, quad, out_hw, jitter=0.03):
    """What an imperfect film detector gives back: the quad warped to a rectangle with corner error."""
    W = max(np.linalg.norm(quad[1] - quad[0]), 1)
    H = max(np.linalg.norm(quad[3] - quad[0]), 1)
    if "jitter" in DISABLED:
        jitter = 0.0
    q = quad + rng.uniform(-jitter, jitter, (4, 2)).astype(np.float32) * np.array([W, H], np.float32)
    oh, ow = out_hw
    dst = np.array([[0, 0], [ow - 1, 0], [ow - 1, oh - 1], [0, oh - 1]], np.float32)
    M = cv2.getPerspectiveTransform(q.astype(np.float32), dst)
    return cv2.warpPerspective(photo, M, (ow, oh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def to_grey(img):
    """ITU-R BT.601 luma, the same weights the Rust reader uses."""
    if img.ndim == 2:
        return img.astype(np.float32)
    return img[..., 0] * 0.299 + img[..., 1] * 0.587 + img[..., 2] * 0.114
