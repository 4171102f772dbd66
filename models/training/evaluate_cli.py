"""End-to-end evaluation through the reader's CLI: what a user gets, film detection included.

Writes, for the validation split, each original film and one simulated phone photo of it (fresh seeds, whole
photo with background: the CLI must find and flatten the film itself), plus the non-X-ray images, then runs
`xray-reader read --json` over them and reports AUROC per source, film detection and corner error, and
refusal rates, and separately the refusal of medical images that are not chest radiographs (CT, MR, ultrasound,
nuclear medicine: `nonxray.medical`). Usage: python evaluate_cli.py --bin target/release/xray-reader [--data DIR] [--out FILE]
[--details FILE]
"""
import argparse
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile

import cv2
import numpy as np
from sklearn.metrics import roc_auc_score

import data
import export
import nonxray
import photo_sim
import photo_sim_alt
import photo_sim_third
import photo_sim_fourth

VIEWS = ("original", "photo", "photo_alt", "photo_third", "photo_fourth")


def read_reports(binary, paths, jobs, extra=()):
    """`xray-reader read --json` over the files, in one run: one report per file, in order."""
    out = subprocess.run([binary, "read", "--json", "--jobs", str(jobs), *extra, *paths], capture_output=True,
                         text=True)
    reports = [json.loads(line) for line in out.stdout.splitlines()]
    if len(reports) != len(paths):
        raise SystemExit(f"the reader answered {len(reports)} of {len(paths)} files: {out.stderr[-2000:]}")
    return reports


def accepted(line):
    """A read's verdict; a file the reader could not read at all (an error line) counts as refused."""
    return line.get("accepted", False)


def refusals(line):
    """The codes of the quality items that refused the read."""
    return [q["code"] for q in line.get("quality", []) if q["severity"] == "refuse"]


def warnings(line):
    """The codes of the quality items that warn (the read stands)."""
    return [q["code"] for q in line.get("quality", []) if q["severity"] == "warn"]


def second_look(line):
    """Whether the read is the reader's second look (the photo's centre, after the whole was refused)."""
    return "second_look" in warnings(line)


def corner_error(found, truth):
    """Largest corner distance (pixels) to the true outline, or to the nearest of several rightful ones (a film
    with a clear margin: its sheet or its exposed area) when `truth` is a stack of outlines. Which corner is
    called "top left" does not matter (a film lying at 90 degrees in the photo): the best of the four cyclic
    pairings counts."""
    truth = np.asarray(truth)
    outlines = truth if truth.ndim == 3 else truth[None]
    found = np.asarray(found)
    return float(min(np.linalg.norm(np.roll(found, k, 0) - q, axis=1).max() for q in outlines for k in range(4)))


def film_detection(meta, lines, view):
    """How often the film was found in the photos of one generator, and how far off its corners were."""
    ph = [i for i, (v, _, _) in enumerate(meta) if v == view]
    det = [lines[i]["film"]["detected"] for i in ph]
    errs = []
    for i in ph:
        if lines[i]["film"]["detected"] and meta[i][2] is not None:  # None: the film runs out of the photo
            got = np.array(lines[i]["film"]["corners"])
            diag = np.hypot(lines[i]["image"]["width"], lines[i]["image"]["height"])
            errs.append(corner_error(got, meta[i][2]) / diag)
    return {"photos": len(ph), "film_inside_the_photo": sum(meta[i][2] is not None for i in ph),
            "detected": float(np.mean(det)),
            "max_corner_error_over_diagonal_median": float(np.median(errs)) if errs else None,
            "within_3pct": float(np.mean(np.array(errs) < 0.03)) if errs else None}


# the generators that make a photo per film from a seed of its own: module, seed, JPEG quality range
PER_FILM = {"photo_third": (photo_sim_third, 11, (80, 96)), "photo_fourth": (photo_sim_fourth, 13, (55, 96))}


def _per_film_photo(view, i, path, tmp):
    """The `view` generator's photo of validation film i (its own seed), written as a JPEG with its EXIF tag."""
    module, seed, quality = PER_FILM[view]
    rng = np.random.default_rng((seed, i))
    _, stored, orient, quads, info = module.photograph(rng, cv2.imread(path, cv2.IMREAD_GRAYSCALE))
    p = os.path.join(tmp, f"{view.replace('_', '-')}-{i}.jpg")
    module.save(p, stored, orient, int(rng.integers(*quality)))
    return i, (p, None if quads is None else np.stack(quads), info)


def make_images(args, views):
    """Write the validation originals' photos (each view's generator), the non-X-rays and the medical images into a
    new temporary folder. Returns the files to read, (view, record, true outline) per file, what the per-film
    generators drew (by file index) and the folder."""
    assert "original" in views, "the originals are what the photos are compared with"
    recs = [r for r in data.load_records(args.data) if r["val"]][::args.every]
    tmp = tempfile.mkdtemp(prefix="xray-eval-")
    rng = np.random.default_rng(99)
    # each generator its own stream (the third and fourth a seed per film), so a view's photos are the same whichever
    # other views are made
    rng_alt = np.random.default_rng(7)
    per_film = {}  # view -> {film index: (photo path, outlines, what was drawn)}
    for view in PER_FILM:
        if view in views:  # made in parallel (the slowest generators)
            with multiprocessing.Pool(args.jobs) as pool:
                per_film[view] = dict(pool.starmap(_per_film_photo, [(view, i, r["path"], tmp)
                                                                     for i, r in enumerate(recs)]))
    files, meta, drawn = [], [], {}
    for i, r in enumerate(recs):
        files.append(r["path"])
        meta.append(("original", r, None))
        grey = cv2.imread(r["path"], cv2.IMREAD_GRAYSCALE)
        if "photo" in views:
            photo, quad = photo_sim.photograph(rng, grey, out_size=(768, 1024) if rng.random() < 0.7 else (1024, 768))
            p = os.path.join(tmp, f"photo-{i}.jpg")
            cv2.imwrite(p, photo[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
            files.append(p)
            meta.append(("photo", r, quad))
        if "photo_alt" in views:
            photo, quads = photo_sim_alt.photograph(rng_alt, grey)
            p = os.path.join(tmp, f"photo-alt-{i}.jpg")
            cv2.imwrite(p, photo[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
            files.append(p)
            meta.append(("photo_alt", r, np.stack(quads)))
        for view in per_film:
            p, quads, info = per_film[view][i]
            files.append(p)
            meta.append((view, r, quads))
            drawn[len(files) - 1] = info
    names, imgs = nonxray.images()
    for n, g in zip(names, imgs):
        p = os.path.join(tmp, f"nonxray-{n}.png")
        cv2.imwrite(p, np.clip(g, 0, 255).astype(np.uint8))
        files.append(p)
        meta.append(("nonxray", {"source": "nonxray", "label": -1}, None))
    # colour originals of the bundled photos, as a phone would see them
    from skimage import data as skd
    for n in ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "retina"):
        p = os.path.join(tmp, f"nonxray-colour-{n}.jpg")
        cv2.imwrite(p, getattr(skd, n)()[..., ::-1])
        files.append(p)
        meta.append(("nonxray", {"source": "nonxray", "label": -1}, None))
    # documents and screenshots (drawn by nonxray.everyday), reported apart
    for n, rgb in zip(*nonxray.everyday()):
        p = os.path.join(tmp, f"everyday-{n}." + ("jpg" if n.endswith("photo") else "png"))
        cv2.imwrite(p, rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 88] if p.endswith("jpg") else [])
        files.append(p)
        meta.append(("everyday", {"source": "everyday", "label": -1}, None))
    # medical images that are not chest radiographs (CT, MR, ultrasound, nuclear medicine), reported apart
    for n, g in zip(*nonxray.medical()):
        p = os.path.join(tmp, f"medical-{n}.png")
        cv2.imwrite(p, np.clip(g, 0, 255).astype(np.uint8))
        files.append(p)
        meta.append(("medical", {"source": "medical", "label": -1}, None))
    return files, meta, drawn, tmp


def reused(details):
    """The files, (view, record, true outline) and drawings of an earlier `--details` run, in its order."""
    files, meta, drawn = [], [], {}
    with open(details) as f:
        for k, line in enumerate(f):
            d = json.loads(line)
            if not os.path.exists(d["file"]):
                sys.exit(f"{d['file']} (listed in {details}) is gone: make the images again (no --reuse)")
            files.append(d["file"])
            truth = d["true_corners"]
            meta.append((d["view"], {"source": d["source"], "label": d["label"]},
                         None if truth is None else np.asarray(truth)))
            if d.get("drawn") is not None:
                drawn[k] = d["drawn"]
    return files, meta, drawn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("XRAY_DATA", "../shared/data"))
    ap.add_argument("--bin", default="target/release/xray-reader")
    ap.add_argument("--model", help="ONNX file to read with instead of the bundled model (manifest next to it)")
    ap.add_argument("--out", default="models/metrics_cli.json")
    ap.add_argument("--every", type=int, default=1, help="use every n-th validation image")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--views", default=",".join(VIEWS),
                    help="which reads to make, of " + ", ".join(VIEWS) + " (photo_alt: the second generator, "
                    "photo_sim_alt.py; photo_third: the third, photo_sim_third.py; photo_fourth: the fourth, "
                    "photo_sim_fourth.py; all three evaluation only)")
    ap.add_argument("--details", help="also write one JSON line per image read (file, view, source, label, accepted, "
                    "refusal codes, probability, film found) to this file, to look at what was refused")
    ap.add_argument("--reuse", help="read the images an earlier --details run listed (its photos kept where it "
                    "printed) instead of making them again: another model or reader on the very same files, in "
                    "minutes; run from the directory that run was started in (its paths may be relative)")
    args = ap.parse_args()
    if args.reuse:
        files, meta, drawn = reused(args.reuse)
        views = [v for v in VIEWS if any(m[0] == v for m in meta)]
        tmp = None
    else:
        views = [v for v in VIEWS if v in args.views.split(",")]
        files, meta, drawn, tmp = make_images(args, views)
    n_films = sum(v == "original" for v, _, _ in meta)
    model = ["--model", args.model] if args.model else []
    lines = read_reports(args.bin, files, args.jobs, model)
    res = {"n_validation_films": n_films, "command": "python models/training/evaluate_cli.py", "per_source": {}}
    for view in views:
        for source in ("kermany", "nih"):
            k = [i for i, (v, r, _) in enumerate(meta) if v == view and r["source"] == source]
            y = np.array([meta[i][1]["label"] for i in k])
            p = np.array([lines[i]["findings"][0]["probability"] for i in k])
            thr = lines[k[0]]["findings"][0]["threshold"]
            acc = np.array([accepted(lines[i]) for i in k])
            lo, hi = export.bootstrap_auc(y, p)
            t70 = np.percentile(p[y == 0], 70)
            res["per_source"][f"{source}/{view}"] = {
                "n": len(k), "auroc": float(roc_auc_score(y, p)), "auroc_ci95": [lo, hi],
                "sensitivity": float((p[y == 1] >= thr).mean()), "specificity": float((p[y == 0] < thr).mean()),
                "sensitivity_at_specificity_0.70": float((p[y == 1] > t70).mean()),
                "refused": float(1 - acc.mean()),
                "refusal_codes": sorted({c for i in k for c in refusals(lines[i])}),
                # reads of the photo's centre after the whole read was refused (the reader's second look)
                "second_look": float(np.mean([second_look(lines[i]) for i in k])),
                # reads accepted after the turn check confirmed an unsure orientation
                "turn_checked": float(np.mean(["turn_checked" in warnings(lines[i]) for i in k])),
                "auroc_accepted": float(roc_auc_score(y[acc], p[acc])) if 0 < y[acc].sum() < acc.sum() else None,
            }
    res["film_detection"] = film_detection(meta, lines, "photo") if "photo" in views else {}
    for view, key in (("photo_alt", "alt_generator"), ("photo_third", "third_generator"),
                      ("photo_fourth", "fourth_generator")):
        if view in views:
            res[f"film_detection_{key}"] = film_detection(meta, lines, view)
            k = [i for i, (v, _, _) in enumerate(meta) if v == view]
            res[f"{key}_photos_refused"] = float(np.mean([not accepted(lines[i]) for i in k]))
    orig = [i for i, (v, _, _) in enumerate(meta) if v == "original"]
    res["film_detection"]["bare_films_with_a_false_film_found"] = float(np.mean([lines[i]["film"]["detected"] for i in orig]))
    nx = [i for i, (v, _, _) in enumerate(meta) if v == "nonxray"]
    res["nonxray"] = {"n": len(nx), "refused": float(np.mean([not accepted(lines[i]) for i in nx])),
                      "accepted_files": [os.path.basename(files[i]) for i in nx if accepted(lines[i])]}
    ev = [i for i, (v, _, _) in enumerate(meta) if v == "everyday"]
    if ev:  # (absent from --reuse runs of details written before session 29)
        res["everyday_nonxray"] = {
            "n": len(ev), "refused": float(np.mean([not accepted(lines[i]) for i in ev])),
            "refused_as": {c: int(sum(c in refusals(lines[i]) for i in ev)) for c in sorted(
                {c for i in ev for c in refusals(lines[i])})},
            "accepted_files": [os.path.basename(files[i]) for i in ev if accepted(lines[i])]}
    md = [i for i, (v, _, _) in enumerate(meta) if v == "medical"]
    res["medical_not_chest_radiograph"] = {
        "n": len(md), "refused": float(np.mean([not accepted(lines[i]) for i in md])),
        "refused_as": {os.path.basename(files[i]): refusals(lines[i]) or [lines[i]["error"]["kind"]]
                       for i in md if not accepted(lines[i])},
        "accepted_files": [os.path.basename(files[i]) for i in md if accepted(lines[i])]}
    xr = [i for i, (v, _, _) in enumerate(meta) if v in ("original", "photo")]
    res["xray_refused"] = float(np.mean([not accepted(lines[i]) for i in xr]))
    ms = [lines[i]["timings_ms"]["total"] for i in xr]
    res["timings_ms_median_total"] = float(np.median(ms))
    if args.details:
        with open(args.details, "w") as f:
            for k, (path, (view, r, quad), line) in enumerate(zip(files, meta, lines)):
                f.write(json.dumps({
                    "file": path, "view": view, "source": r["source"], "label": r["label"],
                    "accepted": accepted(line), "error": line.get("error"), "refused_as": refusals(line),
                    "warnings": warnings(line),
                    "second_look": second_look(line),
                    "probability": line["findings"][0]["probability"] if line.get("findings") else None,
                    "film_detected": line.get("film", {}).get("detected"),
                    "film_corners": line.get("film", {}).get("corners"),
                    "true_corners": None if quad is None else np.asarray(quad).tolist(), "ood_score": line.get("ood_score"),
                    "inverted_probability": line.get("inverted_probability"),
                    "orientation": line.get("orientation"), "drawn": drawn.get(k)}) + "\n")
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps(res, indent=1))
    if tmp and args.details:  # its lines name the photos, to be looked at or read again (--reuse)
        print(f"photos kept in {tmp}", file=sys.stderr)
    elif tmp:  # (with --reuse the photos belong to the earlier run)
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
