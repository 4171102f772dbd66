"""A third phone-photo generator, for evaluation only: never used to train, fit, tune or choose anything.

Session 12 improved the film detector while looking at the second generator's (`photo_sim_alt.py`) failures, so
for the film stage that generator is no longer an untouched stand-in for the held-out set's. This one was written
afterwards from a list of how films are photographed in clinics, not from the detector's failures, and it is
meant to be read once per change, with its numbers reported whether they go up or down. (Session 13 already
made one film-stage change after reading its failures, a film photographed from a step back; see the model
card. A fourth generator should judge the next one.) What it does that the other two do not:
- scenes: a film held up against a bright ceiling or sky by fingers at its edges; a film lying on a desk seen by
  reflected room light (not backlit: the desk shows through the clear parts, a sheen on top); a photo of a
  laptop screen showing the radiograph in a viewer (dark viewport, toolbar, corner text, a letterboxed image);
  a wall lightbox with a second film beside the one being read;
- exposure as a phone meters it: for the bright surround (the film comes out dark and crushed) or for the film
  (the lightbox and the film's brightest parts clip to white); a tone curve and local (HDR-like) tone mapping;
- the phone: noise reduction that smears fine texture, sharpening halos, lateral chromatic aberration,
  vignetting, 1000-2600 px photos, and a quarter of them stored sideways with an EXIF orientation tag (as phones
  do), some taken with the phone held sideways and no tag (the film lies at 90 degrees in the upright photo).

`photograph(rng, grey)` returns the RGB uint8 photo as displayed (after its EXIF rotation), the stored pixels and
the EXIF orientation to store them with (1, 6 or 8), the outlines a film detector may rightly return (TL, TR, BR,
BL by position in the displayed photo; None when the film runs out of the frame), and what was drawn (a dict).
"""
import cv2
import numpy as np

# scikit-image's bundled photographs (public domain / CC0) used as rooms, desks and windows
ROOMS = ("coffee", "chelsea", "astronaut", "rocket", "camera", "brick", "gravel", "grass")


def _photo(rng, h, w, name=None):
    from skimage import data as skd

    img = getattr(skd, name or ROOMS[rng.integers(len(ROOMS))])().astype(np.float32)
    if img.ndim == 2:
        img = img[..., None].repeat(3, 2)
    img = img[..., :3]
    s = max(h / img.shape[0], w / img.shape[1]) * rng.uniform(1.0, 1.4)
    img = cv2.resize(img, (int(np.ceil(img.shape[1] * s)), int(np.ceil(img.shape[0] * s))))
    y, x = rng.integers(0, img.shape[0] - h + 1), rng.integers(0, img.shape[1] - w + 1)
    return np.ascontiguousarray(img[y:y + h, x:x + w])


def _blur(img, sigma):
    """A wide Gaussian blur, done at a reduced scale when wide (the result is smooth either way)."""
    f = max(1, int(sigma // 4))
    if f == 1:
        return cv2.GaussianBlur(img, (0, 0), sigma)
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
    return cv2.resize(cv2.GaussianBlur(small, (0, 0), sigma / f), (w, h), interpolation=cv2.INTER_LINEAR)


def _order(q):
    """Corners TL, TR, BR, BL by position (the film may lie at 90 degrees in the photo)."""
    q = np.asarray(q, np.float32)
    c = q.mean(0)
    a = np.arctan2(q[:, 1] - c[1], q[:, 0] - c[0])
    q = q[np.argsort(a)]  # clockwise on screen (y down), starting anywhere
    start = int(np.argmin(q[:, 0] + q[:, 1]))
    return np.roll(q, -start, 0)


def _place(rng, W, H, fw, fh, tilt):
    """A quadrilateral for an fw x fh sheet centred near the middle, rotated by up to `tilt` degrees and seen
    at an angle (a keystone along one axis)."""
    c = np.array([W / 2 + rng.uniform(-0.07, 0.07) * W, H / 2 + rng.uniform(-0.07, 0.07) * H])
    q = np.array([[-fw / 2, -fh / 2], [fw / 2, -fh / 2], [fw / 2, fh / 2], [-fw / 2, fh / 2]])
    kx, ky = rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1)  # keystone: far side shorter
    q[:, 0] *= 1 + kx * np.sign(q[:, 1])
    q[:, 1] *= 1 + ky * np.sign(q[:, 0])
    a = np.deg2rad(rng.uniform(-tilt, tilt))
    q = q @ np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    return (q + c).astype(np.float32)


def _paste(canvas, layer, quad):
    """Warp an (h, w, 3) layer onto canvas at quad; returns the coverage mask (H, W, 1)."""
    h, w = layer.shape[:2]
    H, W = canvas.shape[:2]
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    M = cv2.getPerspectiveTransform(src, quad.astype(np.float32))
    out = cv2.warpPerspective(layer, M, (W, H), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.ones((h, w), np.float32), M, (W, H), flags=cv2.INTER_LINEAR)[..., None]
    canvas[:] = out * mask + canvas * (1 - mask)
    return mask


def _under(img, quad, wh):
    """What lies under a sheet of size wh placed at quad, in the sheet's own pixels (the light it filters)."""
    w, h = wh
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    M = cv2.getPerspectiveTransform(quad.astype(np.float32), src)
    return cv2.warpPerspective(img, M, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _fingers(rng, img, quad, n):
    """n fingertips pinching the sheet's edges (darker than a backlit film, rounded, shaded)."""
    H, W = img.shape[:2]
    for _ in range(n):
        i = rng.integers(4)
        t = rng.uniform(0.25, 0.75)
        p = quad[i] * (1 - t) + quad[(i + 1) % 4] * t
        out = p - quad.mean(0)
        out /= np.linalg.norm(out) + 1e-6
        width = rng.uniform(0.035, 0.06) * max(W, H)
        tip = p - out * rng.uniform(0.01, 0.05) * max(W, H)
        mask = np.zeros((H, W), np.float32)
        cv2.ellipse(mask, tuple(int(v) for v in tip), (int(width * 0.5), int(width * 0.9)),
                    float(np.degrees(np.arctan2(out[1], out[0])) + 90), 0, 360, 1.0, -1)
        base = tip + out * width * 3
        cv2.line(mask, tuple(int(v) for v in tip), tuple(int(v) for v in base), 1.0, int(width))
        mask = cv2.GaussianBlur(mask, (0, 0), width * 0.1)[..., None]
        # a fingertip in front of the light is lit from the room side only: much darker than the surround
        skin = np.array([rng.uniform(0.35, 0.8), rng.uniform(0.25, 0.6), rng.uniform(0.2, 0.5)], np.float32)
        img[:] = img * (1 - mask) + skin * rng.uniform(0.2, 0.6) * float(np.median(img)) * mask


def _sheet(rng, grey, size):
    """The film as the camera sees it in transmission (0..1, 1 = clear), at `size` (w, h), with an optional clear
    margin, and the margin's width as a fraction of the sheet."""
    t = cv2.resize(grey.astype(np.float32) / 255.0, size, interpolation=cv2.INTER_LINEAR)
    m = 0.0
    if rng.random() < 0.35:
        m = rng.uniform(0.015, 0.04)
        p = int(m * max(size))
        t = cv2.copyMakeBorder(t, p, p, p, p, cv2.BORDER_CONSTANT, value=float(rng.uniform(0.85, 0.97)))
        t = cv2.resize(t, size, interpolation=cv2.INTER_AREA)
    return t, m


def _inner(quad, m, sheet_wh):
    if m == 0:
        return None
    w, h = sheet_wh
    p = m * max(w, h)
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    M = cv2.getPerspectiveTransform(src, quad.astype(np.float32))
    inner = np.array([[p, p], [w - p, p], [w - p, h - p], [p, h - p]], np.float32)
    return cv2.perspectiveTransform(inner[None], M)[0]


def _scene(rng, grey, W, H, info):
    """Linear-light scene (0..1 of the surround's brightness, may exceed 1) and the film's outlines."""
    kind = info["scene"] = str(rng.choice(["held", "desk", "viewer", "wall"], p=[0.3, 0.15, 0.25, 0.3]))
    aspect = grey.shape[0] / grey.shape[1] * rng.uniform(1.0, 1.2)
    cover = rng.uniform(0.4, 0.7)
    fw = W * cover
    fh = min(fw * aspect, H * 0.88)
    fw = fh / aspect
    sheet_wh = (max(64, int(fw)), max(64, int(fh)))
    if kind == "viewer":
        # a laptop screen: dark viewer window, a toolbar, the radiograph letterboxed in the viewport, corner text
        iw, ih = sheet_wh
        bar = int(ih * rng.uniform(0.04, 0.08))
        sw, sh = int(iw * rng.uniform(1.15, 1.4)), ih + bar + 2 * int(ih * rng.uniform(0.02, 0.08))
        screen = np.full((sh, sw, 3), rng.uniform(0.0, 0.06), np.float32)
        screen[:bar] = rng.uniform(0.15, 0.35)
        for k in range(int(rng.integers(4, 9))):
            x = int(sw * 0.02 + k * bar * 1.3)
            screen[bar // 4: bar * 3 // 4, x:x + bar // 2] = rng.uniform(0.5, 0.9)
        x0, y0 = (sw - iw) // 2, bar + (sh - bar - ih) // 2
        t, _ = _sheet(rng, grey, (iw, ih))
        screen[y0:y0 + ih, x0:x0 + iw] = t[..., None] * rng.uniform(0.8, 1.0)
        text = np.zeros((sh, sw), np.uint8)
        for cx, cy in ((0.03, 0.15), (0.78, 0.15), (0.03, 0.93), (0.78, 0.93)):
            cv2.putText(text, "ID 0042  L", (int(cx * sw), int(cy * sh)), cv2.FONT_HERSHEY_SIMPLEX, sh / 900,
                        255, max(1, sh // 400))
        screen[text > 0] = 0.85
        q_screen = _place(rng, W, H, sw * 0.98, sh * 0.98, 8)
        img = _photo(rng, H, W) / 255.0 * rng.uniform(0.15, 0.5)
        src = np.array([[0, 0], [sw, 0], [sw, sh], [0, sh]], np.float32)
        M = cv2.getPerspectiveTransform(src, q_screen)
        _paste(img, screen * rng.uniform(1.2, 2.0), q_screen)
        quad = cv2.perspectiveTransform(np.array([[[x0, y0], [x0 + iw, y0], [x0 + iw, y0 + ih], [x0, y0 + ih]]],
                                                 np.float32), M)[0]
        # the screen's pixel grid beating with the sensor's: a slow sinusoid at an angle, over the screen only
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        a, per = rng.uniform(0, np.pi), rng.uniform(6, 30)
        beat = 1 + rng.uniform(0.04, 0.15) * np.sin(2 * np.pi * (xx * np.cos(a) + yy * np.sin(a)) / per)
        on = cv2.fillConvexPoly(np.zeros((H, W), np.float32), q_screen.astype(np.int32), 1.0)[..., None]
        img *= 1 + on * (beat[..., None] - 1)
        return img, [quad]
    quad = _place(rng, W, H, fw, fh, 15)
    t, m = _sheet(rng, grey, sheet_wh)
    outlines = [quad] + ([_inner(quad, m, sheet_wh)] if m else [])
    if kind == "held":
        # a bright ceiling or sky behind; the film is lit by it, fingers pinch its edges
        if rng.random() < 0.5:  # a window: the scene outside, out of focus
            sky = _photo(rng, H, W, rng.choice(["rocket", "astronaut"]))
            sky = _blur(sky, rng.uniform(0.01, 0.04) * max(W, H)) / 255.0
        else:  # a ceiling: white, brighter towards a light fitting
            yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
            lamp = np.array([rng.uniform(0, W), rng.uniform(0, H)])
            d2 = ((xx - lamp[0]) ** 2 + (yy - lamp[1]) ** 2) / (rng.uniform(0.2, 0.6) * max(W, H)) ** 2
            sky = (0.6 + 0.4 * np.exp(-d2))[..., None] * np.array([1.0, rng.uniform(0.95, 1), rng.uniform(0.85, 1)])
        img = (0.75 + 0.5 * sky) * rng.uniform(1.0, 1.6)
        _paste(img, t[..., None] * _under(img, quad, sheet_wh), quad)
        _fingers(rng, img, quad, int(rng.integers(1, 4)))
        img[:] = np.maximum(img, 0)
        return img, outlines
    if kind == "desk":
        # lying on a desk in room light: the desk shows through the clear parts (light crosses the film twice),
        # a broad sheen from a lamp on top; the desk itself is lit unevenly
        desk = _photo(rng, H, W, rng.choice(["brick", "gravel", "grass"]))
        desk = cv2.GaussianBlur(desk, (0, 0), rng.uniform(1, 4)) / 255.0
        desk = 0.35 + 0.65 * desk
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        lamp = np.array([rng.uniform(0, W), rng.uniform(0, H)])
        fall = 1 / (1 + ((xx - lamp[0]) ** 2 + (yy - lamp[1]) ** 2) / (rng.uniform(0.5, 1.2) * max(W, H)) ** 2)
        img = desk * (0.5 + 0.6 * fall[..., None])
        film = _under(img, quad, sheet_wh) * (t ** 2)[..., None] + 0.05
        _paste(img, film, quad)
        sheen = np.exp(-(((xx - lamp[0]) ** 2 + (yy - lamp[1]) ** 2) / (rng.uniform(0.1, 0.3) * max(W, H)) ** 2))
        on = cv2.fillConvexPoly(np.zeros((H, W), np.float32), quad.astype(np.int32), 1.0)
        img += (rng.uniform(0.1, 0.5) * sheen * on)[..., None]
        return img, outlines
    # a wall viewer with a second film beside this one, cut by the photo's edge
    room = _photo(rng, H, W) / 255.0 * rng.uniform(0.1, 0.4)
    img = room
    panel = np.array([[-0.7 * W, -0.1 * H], [1.7 * W, -0.1 * H], [1.7 * W, 1.1 * H], [-0.7 * W, 1.1 * H]])
    top, bot = rng.uniform(0.02, 0.12) * H, rng.uniform(0.88, 0.98) * H
    panel[:2, 1], panel[2:, 1] = top, bot
    lum = rng.uniform(1.0, 1.5) * np.array([rng.uniform(0.92, 1), rng.uniform(0.95, 1), 1.0])
    lit = np.ones((64, 256, 3), np.float32) * lum
    lit *= (1 - rng.uniform(0.05, 0.2) * np.cos(np.linspace(0, 2 * np.pi * rng.integers(3, 7), 256)))[None, :, None]
    _paste(img, lit, panel.astype(np.float32))
    side = rng.choice([-1, 1])
    gap = rng.uniform(0.02, 0.06) * W
    across = (quad[1] - quad[0] + quad[2] - quad[3]) / 2  # the sheet's own width direction
    other = quad + side * across * (1.12 + gap / fw)  # clear of the keystone: the sheets do not overlap
    t2, _ = _sheet(rng, grey[:, ::-1] if rng.random() < 0.5 else np.flipud(grey), sheet_wh)
    _paste(img, t2[..., None] * _under(img, other, sheet_wh), other)
    _paste(img, t[..., None] * _under(img, quad, sheet_wh), quad)
    return img, outlines


def _expose(rng, img, film, info):
    """Meter, tone-map and clip like a phone: linear scene -> display 0..1. `film`: the film's mask."""
    info["metered_for"] = "surround" if rng.random() < 0.5 else "film"
    if info["metered_for"] == "surround":
        gain = rng.uniform(0.55, 0.9) / np.percentile(img, 98)  # metered for the bright surround
    else:  # metered for the film (tap to focus): its mean comes out light, its brightest parts may clip
        gain = rng.uniform(0.25, 0.45) / max(float(img.mean(2)[film].mean()) if film.any() else 0, 1e-3)
    img = img * gain
    info["tone_mapped"] = bool(rng.random() < 0.5)
    if info["tone_mapped"]:  # local tone mapping: lift shadows and pull highlights by the neighbourhood's level
        lum = img.mean(2, keepdims=True)
        base = _blur(lum, max(img.shape[:2]) * rng.uniform(0.03, 0.08))
        base = base[..., None] if base.ndim == 2 else base
        img = img * (np.maximum(base, 0.05 * base.max()) ** -rng.uniform(0.1, 0.35))
        img = img / np.percentile(img, 99.5) * rng.uniform(0.9, 1.05)
    img = np.clip(img, 0, 1)
    s = rng.uniform(0.0, 0.6)  # an S-shaped tone curve on top of sRGB-like gamma
    img = img ** (1 / 2.2)
    return np.clip(img + s * img * (1 - img) * (img - 0.5) * 2, 0, 1)


def _camera(rng, img):
    """The phone's processing of a display-referred image (0..1): vignetting, chromatic aberration, noise then
    noise reduction, sharpening, 8-bit."""
    H, W = img.shape[:2]
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    r2 = ((xx - W / 2) ** 2 + (yy - H / 2) ** 2) / (max(W, H) / 2) ** 2
    img = img * (1 - rng.uniform(0.05, 0.35) * r2)[..., None]
    ca = rng.uniform(0, 0.003)  # red and blue magnified differently about the centre
    for ch, k in ((2, 1 + ca), (0, 1 - ca)):
        M = np.array([[k, 0, W / 2 * (1 - k)], [0, k, H / 2 * (1 - k)]], np.float32)
        img[..., ch] = cv2.warpAffine(img[..., ch], M, (W, H), borderMode=cv2.BORDER_REFLECT)
    sigma = rng.uniform(0.005, 0.04)
    img = img + rng.standard_normal(img.shape, dtype=np.float32) * sigma * np.sqrt(np.clip(img, 0.02, 1))
    u8 = np.clip(img * 255, 0, 255).astype(np.uint8)
    if sigma > 0.015:  # noise reduction: edges kept, fine texture smeared
        d = int(rng.integers(5, 10))
        u8 = cv2.bilateralFilter(u8, d, rng.uniform(20, 50), d)
    if rng.random() < 0.8:  # sharpening with halos
        f = u8.astype(np.float32)
        f = f + rng.uniform(0.5, 1.5) * (f - cv2.GaussianBlur(f, (0, 0), rng.uniform(1.5, 3)))
        u8 = np.clip(f, 0, 255).astype(np.uint8)
    return u8


def photograph(rng, grey):
    """(displayed RGB uint8 photo, stored RGB uint8 pixels, EXIF orientation to store them with, outlines or None,
    what was drawn: scene, metering, tone mapping, sideways, EXIF tag)."""
    long_side = int(rng.uniform(1000, 2600))
    portrait = rng.random() < 0.7
    W, H = (long_side * 3 // 4, long_side) if portrait else (long_side, long_side * 3 // 4)
    info = {}
    img, outlines = _scene(rng, grey, W, H, info)
    info["sideways"] = bool(rng.random() < 0.1)
    if info["sideways"]:  # phone held sideways, no tag: the film lies at 90 degrees in the photo
        k = int(rng.choice([1, 3]))
        img = np.ascontiguousarray(np.rot90(img, k))
        h0, w0 = H, W
        W, H = h0, w0

        def turn(q):
            # np.rot90 by k=1 (counter-clockwise): (x, y) -> (y, w0 - 1 - x); k=3: (x, y) -> (h0 - 1 - y, x)
            return np.stack([q[:, 1], w0 - 1 - q[:, 0]], 1) if k == 1 else np.stack([h0 - 1 - q[:, 1], q[:, 0]], 1)

        outlines = [turn(q) for q in outlines]
    film = cv2.fillConvexPoly(np.zeros((H, W), np.uint8), outlines[0].astype(np.int32), 1) > 0
    shown = _camera(rng, _expose(rng, img, film, info))
    outlines = [_order(q) for q in outlines]
    inside = all((q[:, 0] >= 0).all() and (q[:, 0] < W).all() and (q[:, 1] >= 0).all() and (q[:, 1] < H).all()
                 for q in outlines)
    # a quarter stored sideways with the EXIF tag that turns them upright (6: rotate 90 cw to display)
    orient = int(rng.choice([1, 6, 8], p=[0.75, 0.125, 0.125]))
    stored = shown if orient == 1 else np.ascontiguousarray(np.rot90(shown, 1 if orient == 6 else -1))
    info["exif_orientation"] = orient
    return shown, stored, orient, (outlines if inside else None), info


def save(path, stored, orient, quality):
    """Write a JPEG with its EXIF orientation tag, as a phone does (Pillow)."""
    from PIL import Image

    im = Image.fromarray(stored)
    exif = Image.Exif()
    exif[0x0112] = orient
    im.save(path, quality=quality, exif=exif.tobytes())
