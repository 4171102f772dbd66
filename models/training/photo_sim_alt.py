"""A second, independent phone-photo generator, for evaluation only: never used to train, fit or choose anything.

The held-out set's photos come from a generator this project will never see. `photo_sim.py` made the training
photos, and the film detector was developed against its photos, so numbers on its photos flatter both. This
generator differs on purpose in what `photo_sim` keeps simple:
- scenes: the film on a lightbox panel that is larger than the film (dark frame, uneven tubes), held against a
  window (a bright, out-of-focus real scene behind it), or shown on a monitor (dark bezel, RGB sub-pixel
  grid, a reflection across the glass); backgrounds are textured real photographs (scikit-image's bundled
  samples: public domain / CC0), not smooth gradients;
- geometry: stronger tilt and rotation, a slightly bent film, barrel/pincushion lens distortion of the whole
  photo;
- things in the way: a finger over one edge, a soft shadow, a printed label on the film;
- camera: per-channel white balance, sharpening, chroma noise, 1024-1600 px photos, JPEG.

`photograph(rng, grey)` returns (RGB uint8 photo, [film outline, exposed-area outline if the film has a clear margin]).
"""
import cv2
import numpy as np

TEXTURES = ("brick", "grass", "gravel", "coffee", "chelsea", "astronaut", "rocket", "camera", "coins",
            "immunohistochemistry", "hubble_deep_field")


def _texture(rng, h, w, name=None):
    """A crop of a bundled photograph, scaled to cover h x w, as float RGB."""
    from skimage import data as skd

    img = getattr(skd, name or TEXTURES[rng.integers(len(TEXTURES))])().astype(np.float32)
    if img.ndim == 2:
        img = img[..., None].repeat(3, 2)
    img = img[..., :3]
    if img.max() <= 1.0:
        img *= 255
    s = max(h / img.shape[0], w / img.shape[1]) * rng.uniform(1.0, 1.6)
    img = cv2.resize(img, (int(np.ceil(img.shape[1] * s)), int(np.ceil(img.shape[0] * s))))
    y = rng.integers(0, img.shape[0] - h + 1)
    x = rng.integers(0, img.shape[1] - w + 1)
    return np.ascontiguousarray(img[y:y + h, x:x + w])


def _quad(rng, W, H, cover):
    """Corners of a film covering about `cover` of the photo's width, tilted and rotated more than photo_sim's."""
    fw = W * cover
    fh = min(fw * rng.uniform(1.0, 1.3), H * 0.9)
    cx = W / 2 + rng.uniform(-0.08, 0.08) * W
    cy = H / 2 + rng.uniform(-0.06, 0.06) * H
    base = np.array([[-fw / 2, -fh / 2], [fw / 2, -fh / 2], [fw / 2, fh / 2], [-fw / 2, fh / 2]])
    a = np.deg2rad(rng.uniform(-20, 20))
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    q = base @ rot.T
    # perspective: one side nearer the camera than the opposite one
    side = rng.integers(4)
    k = rng.uniform(0, 0.12)
    i, j = side, (side + 1) % 4
    mid = (q[i] + q[j]) / 2
    q[i] += (q[i] - mid) * k
    q[j] += (q[j] - mid) * k
    q += rng.uniform(-0.03, 0.03, (4, 2)) * np.array([fw, fh])
    q += np.array([cx, cy])
    q[:, 0] = np.clip(q[:, 0], 3, W - 4)
    q[:, 1] = np.clip(q[:, 1], 3, H - 4)
    return q.astype(np.float32)


def _film(rng, grey):
    """The film sheet (the radiograph, sometimes with a clear margin, often with a printed label; bent slightly)
    and the width of its margin in pixels (0: none)."""
    film = grey.astype(np.float32)
    h, w = film.shape
    m = 0
    if rng.random() < 0.4:
        m = int(rng.uniform(0.02, 0.05) * max(h, w))
        film = cv2.copyMakeBorder(film, m, m, m, m, cv2.BORDER_CONSTANT, value=float(rng.uniform(215, 250)))
        h, w = film.shape
    if rng.random() < 0.5:
        lw, lh = int(w * rng.uniform(0.15, 0.3)), int(h * rng.uniform(0.04, 0.08))
        x = int(rng.choice([0.03, 0.97 - lw / w]) * w)
        y = int(rng.choice([0.03, 0.97 - lh / h]) * h)
        film[y:y + lh, x:x + lw] = rng.uniform(200, 250)
        for r in range(3):
            yy = y + int((r + 0.6) * lh / 4)
            film[yy:yy + max(1, lh // 10), x + lw // 10:x + int(lw * rng.uniform(0.5, 0.9))] = rng.uniform(20, 80)
    # a sheet that is not quite flat: a smooth vertical displacement along x
    amp = rng.uniform(0, 0.012) * h
    xx, yy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    yy = yy + amp * np.sin(np.pi * xx / w) * (yy / h - 0.5) * 2
    return cv2.remap(film, xx, yy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE), m


def _inner(quad, w, h, m):
    """Corners of the exposed area (m pixels in from each edge of a w x h sheet) when the sheet lies at quad."""
    src = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float32)
    M = cv2.getPerspectiveTransform(src, quad.astype(np.float32))
    inner = np.array([[m, m], [w - 1 - m, m], [w - 1 - m, h - 1 - m], [m, h - 1 - m]], np.float32)
    return cv2.perspectiveTransform(inner[None], M)[0]


def _warp_in(canvas, layer, quad, alpha=1.0):
    """Paste an (h, w[, 3]) layer into canvas at quad; returns the coverage mask."""
    h, w = layer.shape[:2]
    H, W = canvas.shape[:2]
    src = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float32)
    M = cv2.getPerspectiveTransform(src, quad.astype(np.float32))
    warped = cv2.warpPerspective(layer, M, (W, H), flags=cv2.INTER_LINEAR)
    if warped.ndim == 2:
        warped = warped[..., None]
    mask = cv2.warpPerspective(np.ones((h, w), np.float32), M, (W, H), flags=cv2.INTER_LINEAR)[..., None] * alpha
    canvas[:] = warped * mask + canvas * (1 - mask)
    return mask


def _scene(rng, grey, W, H):
    """The photo before the camera's processing, and the film's outlines: the sheet's, then (when the sheet has
    a clear margin) the exposed area's."""
    film, m = _film(rng, grey)
    outlines = lambda q: [q] + ([_inner(q, film.shape[1], film.shape[0], m)] if m else [])
    kind = rng.choice(["lightbox", "window", "monitor"], p=[0.5, 0.25, 0.25])
    if kind == "window":
        img = _texture(rng, H, W)
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(3, 12))
        img = 255 - (255 - img) * rng.uniform(0.15, 0.5)  # bright daylight behind
        light = rng.uniform(0.85, 1.0, 3) * 255
        quad = _quad(rng, W, H, rng.uniform(0.5, 0.8))
        _warp_in(img, film[..., None] / 255.0 * light, quad)
        return img, outlines(quad)
    room = _texture(rng, H, W)
    room = cv2.GaussianBlur(room, (0, 0), rng.uniform(0.5, 4)) * rng.uniform(0.4, 0.9)
    img = room.copy()
    if kind == "lightbox":
        panel_quad = _quad(rng, W, H, rng.uniform(0.8, 0.98))
        ph, pw = 400, 300
        white = np.array([rng.uniform(0.9, 1.0), rng.uniform(0.92, 1.0), rng.uniform(0.9, 1.0)]) * rng.uniform(215, 255)
        xx = np.linspace(0, 1, pw, dtype=np.float32)
        tubes = 1 - rng.uniform(0.03, 0.15) * (0.5 + 0.5 * np.cos(2 * np.pi * xx * rng.integers(2, 5)))
        panel = np.ones((ph, pw, 3), np.float32) * white * tubes[None, :, None]
        f = int(rng.uniform(0.02, 0.06) * pw)
        panel[:f], panel[-f:], panel[:, :f], panel[:, -f:] = [rng.uniform(20, 90)] * 4
        _warp_in(img, panel, panel_quad)
        # the film sits on the panel, inside its frame
        c = panel_quad.mean(0)
        shrink = rng.uniform(0.65, 0.85)
        quad = ((panel_quad - c) * shrink + c + rng.uniform(-0.03, 0.03, 2) * np.array([W, H])).astype(np.float32)
        lit = cv2.resize(panel[f:-f, f:-f], (film.shape[1], film.shape[0]))
        _warp_in(img, film[..., None] / 255.0 * lit, quad)
    else:  # monitor: bezel, glowing screen with sub-pixel grid, reflection
        screen_quad = _quad(rng, W, H, rng.uniform(0.75, 0.95))
        sh, sw = film.shape
        bez = int(rng.uniform(0.03, 0.08) * sw)
        screen = np.full((sh + 2 * bez, sw + 2 * bez, 3), rng.uniform(5, 35), np.float32)
        blue = np.array([rng.uniform(0.85, 1.0), rng.uniform(0.92, 1.0), 1.0]) * rng.uniform(200, 250)
        screen[bez:-bez, bez:-bez] = film[..., None] / 255.0 * blue
        _warp_in(img, screen, screen_quad)
        # the film (screen area) corners inside the monitor quad
        src = np.array([[0, 0], [sw + 2 * bez - 1, 0], [sw + 2 * bez - 1, sh + 2 * bez - 1], [0, sh + 2 * bez - 1]],
                       np.float32)
        M = cv2.getPerspectiveTransform(src, screen_quad)
        inner = np.array([[bez, bez], [bez + sw - 1, bez], [bez + sw - 1, bez + sh - 1], [bez, bez + sh - 1]],
                         np.float32)
        quad = cv2.perspectiveTransform(inner[None], M)[0]
        # sub-pixel grid: the camera samples an RGB stripe pattern at a period near its own pixel pitch
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        period = rng.uniform(2.2, 4.5)
        a = rng.uniform(-0.2, 0.2)
        u = (xx * np.cos(a) + yy * np.sin(a)) / period
        stripes = np.stack([np.cos(2 * np.pi * (u - k / 3)) for k in range(3)], -1)
        inside = cv2.fillConvexPoly(np.zeros((H, W), np.float32), quad.astype(np.int32), 1.0)[..., None]
        img *= 1 + inside * rng.uniform(0.05, 0.2) * stripes
        # a reflection: a soft bright diagonal band
        d = (xx * rng.uniform(-1, 1) + yy) / max(W, H) - rng.uniform(0.2, 0.8)
        img += rng.uniform(20, 70) * np.exp(-(d / rng.uniform(0.05, 0.2)) ** 2)[..., None]
    return img, outlines(quad)


def _finger(rng, img, quad):
    """A finger (skin-coloured rounded bar with shading) from the photo's edge over the film's edge."""
    H, W = img.shape[:2]
    i = rng.integers(4)
    t = rng.uniform(0.2, 0.8)
    p = quad[i] * (1 - t) + quad[(i + 1) % 4] * t  # a point on one film edge
    c = quad.mean(0)
    out = p - c
    out /= np.linalg.norm(out) + 1e-6
    tip = p - out * rng.uniform(0.02, 0.08) * max(W, H)
    base = tip + out * max(W, H)
    width = rng.uniform(0.04, 0.07) * max(W, H)
    mask = np.zeros((H, W), np.float32)
    cv2.line(mask, tuple(int(v) for v in tip), tuple(int(v) for v in base), 1.0, int(width))
    cv2.circle(mask, tuple(int(v) for v in tip), int(width / 2), 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), width * 0.08)[..., None]
    skin = np.array([rng.uniform(150, 235), rng.uniform(110, 180), rng.uniform(85, 150)], np.float32)
    img[:] = img * (1 - mask) + skin * mask * rng.uniform(0.6, 1.0)


def _lens(rng, img, quads):
    """Barrel or pincushion distortion about the centre; returns the distorted image and outlines."""
    H, W = img.shape[:2]
    k = rng.uniform(-0.06, 0.04)
    c = np.array([W / 2, H / 2], np.float32)
    norm = max(W, H) / 2
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    dx, dy = (xx - c[0]) / norm, (yy - c[1]) / norm
    f = 1 + k * (dx * dx + dy * dy)
    out = cv2.remap(img, c[0] + dx * f * norm, c[1] + dy * f * norm, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    # a source point s lands at output p with s = c + (p - c)(1 + k|p - c|^2): solve for p per corner
    def moved(s):
        d = (s - c) / norm
        p = d.copy()
        for _ in range(30):
            p = d / (1 + k * float(p @ p))
        return c + p * norm

    return out, [np.array([moved(s) for s in q], np.float32) for q in quads]


def _camera(rng, img):
    img = img * rng.uniform(0.85, 1.15, 3)  # white balance
    gamma = rng.uniform(0.75, 1.3)
    img = 255.0 * np.clip(img / 255.0, 0, 1) ** gamma
    if rng.random() < 0.7:  # phone sharpening
        blur = cv2.GaussianBlur(img, (0, 0), rng.uniform(1, 2.5))
        img = img + rng.uniform(0.3, 1.0) * (img - blur)
    if rng.random() < 0.4:  # hand shake or focus
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.8, 2.0))
    img = img + rng.normal(0, rng.uniform(1, 6), img.shape)  # chroma noise: each channel its own
    img = np.clip(img, 0, 255).astype(np.uint8)
    ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(50, 93))])
    return cv2.imdecode(enc, cv2.IMREAD_COLOR)


def photograph(rng, grey):
    """A phone photo (RGB uint8) of the film `grey` and the outlines a film detector may rightly return, corners
    TL, TR, BR, BL in photo pixels: the sheet's, then the exposed area's when the sheet has a clear margin."""
    long_side = int(rng.uniform(1024, 1600))
    W, H = (long_side * 3 // 4, long_side) if rng.random() < 0.75 else (long_side, long_side * 3 // 4)
    img, quads = _scene(rng, grey, W, H)
    quad = quads[0]
    if rng.random() < 0.3:  # a soft shadow over part of the photo
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        a = rng.uniform(0, 2 * np.pi)
        d = ((xx - W / 2) * np.cos(a) + (yy - H / 2) * np.sin(a)) / max(W, H) - rng.uniform(-0.3, 0.3)
        img *= (1 - rng.uniform(0.15, 0.4) / (1 + np.exp(-d / 0.05)))[..., None]
    if rng.random() < 0.35:
        _finger(rng, img, quad)
    img, quads = _lens(rng, img, quads)
    return _camera(rng, img[..., ::-1].astype(np.float32))[..., ::-1], quads
