"""Build the test fixtures in tests/fixtures from ../shared/data and the shipped model.

Picks validation-split (never trained on) films: per source, one normal and one pneumonia case that the
shipped model scores clearly on the right side (the median of the lowest/highest quartile; the test checks
that the Rust reader keeps them there). Then derives: simulated phone photos with known film corners, a
rotated film, an inverted film, an EXIF-rotated JPEG, and a non-X-ray photograph.
"""
import argparse
import json
import os
import shutil

import cv2
import numpy as np
from PIL import Image

import data
import export
import photo_sim


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("XRAY_DATA", "../shared/data"))
    ap.add_argument("--model", default="models/xray-reader.onnx")
    ap.add_argument("--out", default="tests/fixtures")
    ap.add_argument("--refresh-probabilities", action="store_true",
                    help="keep the committed films; only recompute their onnxruntime probabilities (new model)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    run = export.Runner(args.model)
    data.configure_for_onnx(args.model)
    # films at full size, as the reader reads the file (training caches them at data.MAX_SIDE, which moves
    # a probability by up to ~0.003 once CLAHE is on)
    full = float("inf")
    if args.refresh_probabilities:
        path = os.path.join(args.out, "fixtures.json")
        with open(path) as f:
            meta = json.load(f)
        for fname, film in meta["films"].items():
            x = data.to_input(data.read_grey(os.path.join(args.out, fname), full), 224)
            film["probability_onnxruntime"] = float(run([x])["probabilities"][0, 0])
        with open(path, "w") as f:
            json.dump(meta, f, indent=1)
        print(json.dumps(meta["films"], indent=1))
        return
    recs = [r for r in data.load_records(args.data) if r["val"]]
    meta = {"films": {}, "photos": {}}
    picked = {}
    for source in ("kermany", "nih"):
        for label, name in ((0, "normal"), (1, "pneumonia")):
            cand = [r for r in recs if r["source"] == source and r["label"] == label]
            cand = cand[::max(1, len(cand) // 60)][:60]
            p = run([data.to_input(data.read_grey(r["path"], full), 224) for r in cand])["probabilities"][:, 0]
            order = np.argsort(p)
            quart = order[: len(order) // 4] if label == 0 else order[-(len(order) // 4):]
            r = cand[quart[len(quart) // 2]]
            ext = os.path.splitext(r["path"])[1]
            fname = f"{source}-{name}{ext}"
            shutil.copyfile(r["path"], os.path.join(args.out, fname))
            picked[(source, name)] = os.path.join(args.out, fname)
            meta["films"][fname] = {"source": source, "label": name, "original": r["rel"], "patient": r["patient"],
                                    "bbox_xywh": r["bbox"], "probability_onnxruntime": float(p[quart[len(quart) // 2]])}
    rng = np.random.default_rng(2024)
    for key in (("nih", "pneumonia"), ("kermany", "normal"), ("nih", "normal")):
        grey = cv2.imread(picked[key], cv2.IMREAD_GRAYSCALE)
        photo, quad = photo_sim.photograph(rng, grey, out_size=(900, 1200))
        fname = f"photo-{key[0]}-{key[1]}.jpg"
        cv2.imwrite(os.path.join(args.out, fname), photo[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 88])
        meta["photos"][fname] = {"film": os.path.basename(picked[key]), "corners": quad.round(1).tolist()}
    # rotated (90 degrees clockwise) and inverted films
    g = cv2.imread(picked[("nih", "normal")], cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(os.path.join(args.out, "rotated-90cw-nih-normal.png"), np.rot90(g, -1))
    cv2.imwrite(os.path.join(args.out, "inverted-nih-normal.png"), 255 - g)
    # EXIF orientation 6 ("rotate 90 cw to display"): pixels stored turned counter-clockwise
    img = Image.open(picked[("kermany", "pneumonia")]).convert("L").transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[274] = 6
    img.save(os.path.join(args.out, "exif-orientation-6-kermany-pneumonia.jpg"), quality=92, exif=exif)
    # JPEG variants phones and PACS exports produce: progressive, and CMYK (Adobe)
    film = Image.open(picked[("nih", "pneumonia")]).convert("RGB")
    film.save(os.path.join(args.out, "progressive-nih-pneumonia.jpg"), quality=90, progressive=True)
    film.convert("CMYK").save(os.path.join(args.out, "cmyk-nih-pneumonia.jpg"), quality=90)
    # AVIF: a phone format the reader's Rust decoders do not read and a browser does (the worker's path for it)
    film.save(os.path.join(args.out, "avif-nih-pneumonia.avif"), quality=90)
    # a photograph that is not an X-ray (NASA portrait of Eileen Collins, public domain, via scikit-image)
    from skimage import data as skd
    a = cv2.resize(skd.astronaut(), (384, 384), interpolation=cv2.INTER_AREA)
    cv2.imwrite(os.path.join(args.out, "not-xray-astronaut.jpg"), a[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    with open(os.path.join(args.out, "fixtures.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(json.dumps(meta, indent=1))


if __name__ == "__main__":
    main()
