"""A fourth phone-photo generator, for evaluation only: never used to train, fit, tune or choose anything.

Session 14 trained a model candidate with a phone's metering and tone processing (`photo_sim.meter`,
`train.py --metering`) after the third generator (`photo_sim_third.py`) showed that clipped highlights hurt, so
for judging such a model that generator is no longer untouched. This one was written in the same session, before
any model or film-detector result was read on it, from a list of how chest films reach a phone in places without a radiologist that none of the other
three draws:
- a photo of another phone's screen showing the radiograph (forwarded by a messaging app): status and
  navigation bars, letterboxing, the screen's subpixel stripes aliasing into moire, screen glare, then the
  app's downscale to 1280 px and a second JPEG;
- a paper printout of the radiograph (a laser print: grey paper white, dark-grey blacks, a halftone screen)
  lying on a table, under room light with the photographer's shadow across part of it;
- a film on a lightbox taken at a steep angle (up to 30 % keystone), bowed in the middle, with a window's
  reflection on it, sometimes running out of the frame on one side;
- a film held up against a window at dusk: little light, high sensor gain (colour noise), heavy noise
  reduction and hand-shake blur.
Then the phone: average metering (the scene's mean set to a drawn grey, whatever clips), a white-balance error
(tungsten, fluorescent), a display gamma, 720-3000 px, JPEG 55-95, a fifth stored sideways with an EXIF tag.

`photograph(rng, grey)` returns what `photo_sim_third.photograph` does: the photo as displayed, the stored
pixels, their EXIF orientation, the outlines a film detector may rightly return (TL, TR, BR, BL; None when the
film runs out of the frame) and what was drawn (a dict).
"""
import cv2
import numpy as np

import photo_sim
from photo_sim_third import _order, save  # noqa: F401  (save: the JPEG with its EXIF tag, as a phone writes it)

SCENES = ("screen", "printout", "oblique", "dusk")


def _linear(grey):
    """A radiograph's display grey (0..255) as the light it sends (0..1)."""
    return (np.asarray(grey, np.float32) / 255.0) ** 2.2


def _rect(w, h):
    return np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float32)


def _warp(layer, src, dst, W, H):
    """`layer` (h, w[, 3]) warped so that its points `src` land on `dst` in a W x H canvas, and its mask."""
    M = cv2.getPerspectiveTransform(src.astype(np.float32), dst.astype(np.float32))
    out = cv2.warpPerspective(layer.astype(np.float32), M, (W, H), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.ones(layer.shape[:2], np.float32), M, (W, H), flags=cv2.INTER_LINEAR)
    return (out if out.ndim == 3 else out[..., None].repeat(3, 2)), mask[..., None], M


def _quad(rng, W, H, w, h, cover, keystone, turn=8.0):
    """Corners of a w x h sheet seen in a W x H photo: scaled to cover `cover` of the photo's fitting side,
    turned up to `turn` degrees, one side shortened by `keystone` (seen at an angle), placed at random."""
    s = cover * min(W / w, H / h)
    q = (_rect(w, h) - np.array([w / 2, h / 2])) * s
    k = rng.uniform(0, keystone)
    axis = int(rng.integers(2))
    side = 1 if rng.random() < 0.5 else -1
    for i in range(4):  # the far side is shorter
        far = (q[i, 1 - axis] * side) < 0
        if far:
            q[i, axis] *= 1 - k
    a = np.deg2rad(rng.uniform(-turn, turn))
    q = q @ np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]], np.float32)
    span = q.max(0) - q.min(0)
    room = np.maximum(np.array([W, H]) - span, 0)
    q = q - q.min(0) + rng.uniform(0, 1, 2) * room
    return q.astype(np.float32)


def _room(rng, H, W):
    """A dim room or table: a smooth colour gradient with coarse texture, linear light."""
    c0, c1 = rng.uniform(0.01, 0.25, 3), rng.uniform(0.01, 0.25, 3)
    t = np.linspace(0, 1, H, dtype=np.float32)[:, None, None]
    bg = c0 * (1 - t) + c1 * t + np.zeros((1, W, 1), np.float32)
    tex = cv2.resize(rng.random((max(2, H // 40), max(2, W // 40))).astype(np.float32), (W, H))
    return bg * (0.8 + 0.4 * tex[..., None])


def _screen(rng, grey, W, H, info):
    """Another phone's screen showing the radiograph, lying on a table."""
    sw = int(min(W, H) * rng.uniform(0.45, 0.7))
    sh = int(sw * rng.uniform(2.0, 2.2))
    screen = np.full((sh, sw, 3), rng.uniform(0.0, 0.02), np.float32)  # dark theme around the image
    gh, gw = grey.shape
    iw = sw
    ih = min(int(gh * iw / gw), int(sh * 0.8))
    iw = int(gw * ih / gh)
    x0, y0 = (sw - iw) // 2, (sh - ih) // 2
    screen[y0:y0 + ih, x0:x0 + iw] = cv2.resize(_linear(grey), (iw, ih), interpolation=cv2.INTER_AREA)[..., None]
    bar = max(4, sh // 30)
    screen[:bar] = 0.05  # status bar with its icons
    for x in range(sw // 20, sw - sw // 20, max(3, sw // 14)):
        if rng.random() < 0.5:
            screen[bar // 4:bar - bar // 4, x:x + bar // 2] = 0.7
    screen[-2 * bar:] = 0.08  # navigation bar
    screen[-bar - bar // 4:-bar + bar // 4, sw // 2 - sw // 8:sw // 2 + sw // 8] = 0.6
    # subpixel stripes: each screen pixel is three coloured columns, which the camera aliases into moire
    pitch = rng.uniform(1.2, 3.0)
    x = np.arange(sw, dtype=np.float32) / pitch
    for c in range(3):
        screen[..., 2 - c] *= (0.55 + 0.45 * np.cos(2 * np.pi * (x - c / 3.0)))[None, :]
    screen *= rng.uniform(0.6, 1.2)  # its own brightness
    bezel = max(3, sw // 25)
    phone = np.full((sh + 2 * bezel, sw + 2 * bezel, 3), rng.uniform(0.005, 0.03), np.float32)
    phone[bezel:-bezel, bezel:-bezel] = screen
    q = _quad(rng, W, H, sw + 2 * bezel, sh + 2 * bezel, rng.uniform(0.55, 0.9), 0.12, turn=15)
    layer, mask, M = _warp(phone, _rect(sw + 2 * bezel, sh + 2 * bezel), q, W, H)
    img = layer * mask + _room(rng, H, W) * (1 - mask)
    # glare of a ceiling light on the glass
    cx, cy, r = rng.uniform(0, W), rng.uniform(0, H), rng.uniform(0.05, 0.2) * max(W, H)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    img += (rng.uniform(0.05, 0.4) * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r)))[..., None] * mask
    corners = cv2.perspectiveTransform((_rect(iw, ih) + [x0 + bezel, y0 + bezel])[None].astype(np.float32), M)[0]
    info["forwarded"] = True
    return img, [corners]


def _printout(rng, grey, W, H, info):
    """A laser printout of the radiograph on paper, lying on a table in room light."""
    pw = int(min(W, H) * rng.uniform(0.5, 0.8))
    ph = int(pw * 1.414)
    paper = np.full((ph, pw), rng.uniform(0.7, 0.85), np.float32)
    gh, gw = grey.shape
    m = int(pw * rng.uniform(0.05, 0.12))
    iw = pw - 2 * m
    ih = min(int(gh * iw / gw), ph - 2 * m)
    iw = int(gw * ih / gh)
    x0, y0 = (pw - iw) // 2, m + int(rng.uniform(0, 0.1) * ph)
    y0 = min(y0, ph - ih - m)
    ink = cv2.resize(np.asarray(grey, np.float32) / 255.0, (iw, ih), interpolation=cv2.INTER_AREA)
    # halftone: a 45-degree dot screen; the printed fraction of each cell is the ink's darkness
    cell = rng.uniform(3, 6)
    yy, xx = np.mgrid[0:ih, 0:iw].astype(np.float32)
    u, v = (xx + yy) / (cell * np.sqrt(2)), (xx - yy) / (cell * np.sqrt(2))
    dots = 0.5 + 0.25 * (np.cos(2 * np.pi * u) + np.cos(2 * np.pi * v))  # 0..1 threshold pattern
    printed = ((1 - ink) > dots).astype(np.float32)
    printed = cv2.GaussianBlur(printed, (0, 0), cell * 0.25)
    black = rng.uniform(0.03, 0.1)  # toner is not black
    paper[y0:y0 + ih, x0:x0 + iw] = paper[y0:y0 + ih, x0:x0 + iw] * (1 - printed) + black * printed
    q = _quad(rng, W, H, pw, ph, rng.uniform(0.6, 0.92), 0.15, turn=12)
    layer, mask, M = _warp(paper, _rect(pw, ph), q, W, H)
    img = layer * mask + _room(rng, H, W) * (1 - mask)
    # room light falls off across the table; the photographer's soft shadow covers part of the sheet
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    a = rng.uniform(0, 2 * np.pi)
    ramp = 1 + rng.uniform(0, 0.5) * (((xx / W - 0.5) * np.cos(a) + (yy / H - 0.5) * np.sin(a)))
    img *= ramp[..., None]
    if rng.random() < 0.6:
        cx, cy = rng.uniform(0, W), rng.uniform(0, H) if rng.random() < 0.5 else H
        rx, ry = rng.uniform(0.2, 0.5) * W, rng.uniform(0.2, 0.5) * H
        d = np.sqrt(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2)
        shade = 1 - rng.uniform(0.3, 0.6) * np.clip(1.5 - d, 0, 1)
        img *= cv2.GaussianBlur(shade, (0, 0), max(W, H) * 0.02)[..., None]
        info["shadow"] = True
    inner = cv2.perspectiveTransform((_rect(iw, ih) + [x0, y0])[None].astype(np.float32), M)[0]
    return img, [q, inner]


def _bow(img, mask, q, amount):
    """The film bowed between its two side edges: the middle moves across by `amount` pixels, the corners stay."""
    H, W = mask.shape[:2]
    left, right = float(q[:, 0].min()), float(q[:, 0].max())
    xx = np.arange(W, dtype=np.float32)
    t = np.clip((xx - left) / max(right - left, 1), 0, 1)
    dy = amount * np.sin(np.pi * t)
    map_x = np.repeat(xx[None], H, 0)
    map_y = (np.arange(H, dtype=np.float32)[:, None] - dy[None]).astype(np.float32)
    return (cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE),
            cv2.remap(mask, map_x, map_y, cv2.INTER_LINEAR)[..., None])


def _oblique(rng, grey, W, H, info):
    """A film on a lightbox taken at a steep angle, bowed, a window reflected on it; sometimes cut off."""
    gh, gw = grey.shape
    info["cut_off"] = bool(rng.random() < 0.2)
    cover = rng.uniform(1.02, 1.15) if info["cut_off"] else rng.uniform(0.55, 0.9)
    q = _quad(rng, W, H, gw, gh, cover, 0.3, turn=10)
    if info["cut_off"]:  # pushed out over one edge of the frame
        q = q + np.array([W, H], np.float32) * rng.uniform(-0.08, 0.08, 2)
    film = _linear(grey)
    layer, mask, _ = _warp(film, _rect(gw, gh), q, W, H)
    centre = q.mean(0)
    box = centre + (q - centre) * rng.uniform(1.1, 1.4)  # the lightbox's panel around the film
    _, pmask, _ = _warp(np.ones((8, 8), np.float32), _rect(8, 8), box, W, H)
    light = rng.uniform(0.6, 1.0)
    bg = _room(rng, H, W) * (1 - pmask) + light * pmask * rng.uniform(0.9, 1.0, 3)
    if rng.random() < 0.7:
        bend = rng.uniform(-0.03, 0.03) * (q[:, 1].max() - q[:, 1].min())
        layer, mask = _bow(layer, mask[..., 0], q, bend)
        info["bowed"] = True
    img = layer * light * mask + bg * (1 - mask)
    # a window behind the photographer, reflected on the film: a bright, soft-edged rectangle
    x0, y0 = rng.uniform(0, W * 0.7), rng.uniform(0, H * 0.7)
    win = np.zeros((H, W), np.float32)
    win[int(y0):int(y0 + rng.uniform(0.15, 0.4) * H), int(x0):int(x0 + rng.uniform(0.1, 0.3) * W)] = 1
    win = cv2.GaussianBlur(win, (0, 0), max(W, H) * 0.01)
    img += rng.uniform(0.05, 0.3) * win[..., None]
    inside = (q[:, 0] >= 0).all() and (q[:, 0] < W).all() and (q[:, 1] >= 0).all() and (q[:, 1] < H).all()
    return img, ([q] if inside else None)


def _dusk(rng, grey, W, H, info):
    """A film held up against a window at dusk: little light, so gain, noise, noise reduction and shake."""
    gh, gw = grey.shape
    q = _quad(rng, W, H, gw, gh, rng.uniform(0.55, 0.85), 0.12, turn=15)
    layer, mask, _ = _warp(_linear(grey), _rect(gw, gh), q, W, H)
    bg = _room(rng, H, W) * 0.3
    centre = q.mean(0)  # the window behind the film, larger than it and off-centre
    wq = centre + (q - centre) * rng.uniform(1.1, 1.6) + rng.uniform(-0.1, 0.1, 2) * np.array([W, H])
    _, wmask, _ = _warp(np.ones((4, 3), np.float32), _rect(3, 4), wq, W, H)
    sky = rng.uniform(0.15, 0.4) * np.array([rng.uniform(0.7, 1.0), rng.uniform(0.7, 0.9), rng.uniform(0.5, 0.9)])
    behind = bg * (1 - wmask) + sky * wmask
    img = layer * behind.max() * mask * wmask + behind * (1 - mask * wmask) + layer * 0.05 * mask * (1 - wmask)
    info["low_light"] = True
    return img, [q]


def _phone(rng, img, info):
    """Average metering, white balance error, gain noise and noise reduction, shake, display gamma -> uint8."""
    img = img * (rng.uniform(0.12, 0.3) / max(float(img.mean()), 1e-4))  # the scene's mean to a mid grey
    wb = {"daylight": (1, 1, 1), "tungsten": (0.8, 1.0, 1.2), "fluorescent": (1.0, 0.92, 1.0)}
    info["white_balance"] = str(rng.choice(list(wb)))
    img = img * np.array(wb[info["white_balance"]], np.float32)  # RGB gains
    sigma = rng.uniform(0.02, 0.08) if info.get("low_light") else rng.uniform(0.002, 0.02)
    img = img + rng.standard_normal(img.shape, dtype=np.float32) * sigma * np.sqrt(np.clip(img, 0.01, 1))
    if info.get("low_light") or rng.random() < 0.2:  # shake during a long exposure
        k = int(rng.integers(3, 15))
        img = photo_sim.motion_blur(img, k, rng.uniform(0, 180))
    u8 = (np.clip(img, 0, 1) ** (1 / 2.2) * 255).astype(np.uint8)
    if sigma > 0.02:  # noise reduction
        u8 = cv2.medianBlur(u8, 5 if sigma > 0.05 else 3)
    return u8


def photograph(rng, grey):
    """(displayed RGB uint8 photo, stored RGB uint8 pixels, EXIF orientation, outlines or None, what was drawn)."""
    info = {"scene": str(rng.choice(SCENES))}
    long_side = int(rng.uniform(720, 3000))
    portrait = rng.random() < 0.75
    W, H = (long_side * 3 // 4, long_side) if portrait else (long_side, long_side * 3 // 4)
    scene = {"screen": _screen, "printout": _printout, "oblique": _oblique, "dusk": _dusk}[info["scene"]]
    img, outlines = scene(rng, grey, W, H, info)
    shown = _phone(rng, img, info)
    if info.get("forwarded"):  # the messaging app: 1280 px long side and a second JPEG
        s = 1280 / max(W, H)
        if s < 1:
            shown = cv2.resize(shown, (int(W * s), int(H * s)), interpolation=cv2.INTER_AREA)
            outlines = [q * s for q in outlines]
        ok, enc = cv2.imencode(".jpg", shown[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(55, 80))])
        shown = np.ascontiguousarray(cv2.imdecode(enc, cv2.IMREAD_COLOR)[..., ::-1])
    orient = int(rng.choice([1, 6, 8], p=[0.8, 0.1, 0.1]))
    stored = shown if orient == 1 else np.ascontiguousarray(np.rot90(shown, 1 if orient == 6 else -1))
    info["exif_orientation"] = orient
    return shown, stored, orient, (None if outlines is None else [_order(q) for q in outlines]), info
