"""A film-detection probe built differently from photo_sim.py: the film lies on a large lit lightbox panel
in a dark room (the panel's boundary is found first; the film must be found inside it). Prints, per photo,
whether the film (not the panel) was found: worst corner error under 20 px of a 900x1200 photo.

Usage: PYTHONPATH=models/training python models/training/probe_lightbox.py --bin target/debug/xray-reader
"""
import argparse
import json
import os
import subprocess
import tempfile

import cv2
import numpy as np

import data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("XRAY_DATA", "../shared/data"))
    ap.add_argument("--bin", default="target/release/xray-reader")
    args = ap.parse_args()
    recs = [r for r in data.load_records(args.data) if r["val"]][::40]
    rng = np.random.default_rng(5)
    tmp = tempfile.mkdtemp(prefix="xray-probe-")
    files, quads = [], []
    for i, r in enumerate(recs):
        g = cv2.imread(r["path"], cv2.IMREAD_GRAYSCALE).astype(np.float32)
        H, W = 1200, 900
        img = np.full((H, W, 3), rng.uniform(10, 60), np.float32)  # dark room
        panel = np.array([[60, 80], [W - 60, 60], [W - 40, H - 70], [50, H - 50]], np.float32)
        panel += rng.uniform(-30, 30, (4, 2)).astype(np.float32)
        cv2.fillConvexPoly(img, panel.astype(np.int32), (235, 240, 250))
        fh, fw = g.shape
        q = np.array([[150, 170], [W - 140, 150], [W - 120, H - 160], [130, H - 140]], np.float32)
        q += rng.uniform(-60, 60, (4, 2)).astype(np.float32)
        M = cv2.getPerspectiveTransform(np.array([[0, 0], [fw, 0], [fw, fh], [0, fh]], np.float32), q)
        film = cv2.warpPerspective(g / 255.0, M, (W, H))  # the film transmits the panel's light
        mask = cv2.warpPerspective(np.ones_like(g), M, (W, H))
        img = img * (1 - mask[..., None]) + img * film[..., None] * mask[..., None]
        img = cv2.GaussianBlur(img, (0, 0), 1.2) + rng.normal(0, 4, img.shape)
        p = os.path.join(tmp, f"lightbox-{i}.jpg")
        cv2.imwrite(p, np.clip(img, 0, 255).astype(np.uint8)[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
        files.append(p)
        quads.append(q)
    out = subprocess.run([args.bin, "read", "--json"] + files, capture_output=True, text=True)
    found = 0
    for f, q, line in zip(files, quads, out.stdout.splitlines()):
        r = json.loads(line)
        err = float(np.abs(np.array(r["film"]["corners"]) - q).max()) if r["film"]["detected"] else None
        ok = err is not None and err < 20
        found += ok
        print(os.path.basename(f), "film found" if ok else f"NOT found (worst corner error {err})")
    print(f"film found in {found} of {len(files)}")


if __name__ == "__main__":
    main()
