"""Break down an `evaluate_cli.py --details` file: where the reads of each photo generator are lost.

    python models/training/details_report.py DETAILS.jsonl [--manifest models/xray-reader.manifest.json]

Prints, from the one JSON line per image that `evaluate_cli.py --details` writes (no image is read again):
1. per view and source: AUROC over all reads and over accepted reads, share refused, share with a film found;
2. for the generators that record what they drew (third, fourth): the same per scene, per metering and per
   tone mapping;
3. the refusals per view, source and scene, with the check that refused them (`not_chest_xray` splits into the
   embedding's distance over the manifest's threshold and the orientation confidence under its minimum);
4. how far each photo moved the probability from its own original (mean and spread of the change in log-odds,
   per scene, film found or read whole, and label): a scene that pushes normal films up and abnormal ones
   down costs AUROC even where each scene's own AUROC holds.

With `--against OTHER.jsonl` (the same images read by another model, e.g. `evaluate_cli.py --reuse` of this
run's details with `--model OLD.onnx`) it prints instead, per view and source, each model's AUROC and a 95 %
bootstrap interval of the difference (this details file minus OTHER; images resampled, 2,000 times, seed 0):
the paired comparisons in MODEL_CARD.md.
"""

import argparse
import collections
import json
import math
import re

import numpy as np
from sklearn.metrics import roc_auc_score

PHOTO_VIEWS = ("photo", "photo_alt", "photo_third", "photo_fourth")


def auroc(rows):
    y = [r["label"] for r in rows]
    if len(set(y)) < 2:
        return None
    return roc_auc_score(y, [0.5 if r["probability"] is None else r["probability"] for r in rows])


def fmt(x, spec=".3f"):
    return "-" if x is None else format(x, spec)


def summary(rows):
    acc = [r for r in rows if r["accepted"]]
    return (f"n {len(rows):4d}  AUROC {fmt(auroc(rows))}  accepted-only {fmt(auroc(acc))}  "
            f"refused {100 * (1 - len(acc) / len(rows)):5.1f} %  film found "
            f"{100 * sum(bool(r['film_detected']) for r in rows) / len(rows):5.1f} %")


def film_index(row, originals_seen):
    """Which validation film a line is of: photos carry it in their file name (photo-3.jpg, photo-alt-3.jpg,
    photo-third-3.jpg), originals come in the validation order."""
    if row["view"] == "original":
        return originals_seen
    m = re.search(r"-(\d+)\.jpg$", row["file"])
    return int(m.group(1)) if m else None


def refusing_check(row, ood):
    codes = row["refused_as"] or []
    out = [c for c in codes if c != "not_chest_xray"]
    if "not_chest_xray" in codes:
        far = row["ood_score"] is not None and row["ood_score"] > ood["threshold"]
        conf = (row.get("orientation") or {}).get("confidence")
        unsure = conf is not None and conf < ood["min_orientation_confidence"]
        # the report's orientation confidence is the first pass's; when that pass turned the film upright, the
        # refusal came from the upright pass's, which the details do not hold: then "?" (or a wrong label); the
        # turn check (session 17) is not told apart either
        which = "+".join(k for k, on in (("distance", far), ("orientation", unsure)) if on) or "?"
        out.append(f"not_chest_xray({which})")
    return "+".join(out) or (row["error"] or {}).get("kind", "?")


def logit(p):
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


def paired(rows, other, resamples=2000, seed=0):
    """Per view and source: AUROC of `other`, of `rows`, and a 95 % bootstrap interval of rows - other."""
    if [r["file"] for r in rows] != [r["file"] for r in other]:
        raise SystemExit("the two details files do not list the same images in the same order")
    score = lambda r: 0.5 if r["probability"] is None else r["probability"]
    rng = np.random.default_rng(seed)
    for view in ("original",) + PHOTO_VIEWS:
        for source in ("kermany", "nih"):
            k = [i for i, r in enumerate(rows) if r["view"] == view and r["source"] == source]
            if not k:
                continue
            y = np.array([rows[i]["label"] for i in k])
            a = np.array([score(other[i]) for i in k])
            b = np.array([score(rows[i]) for i in k])
            diffs = []
            for _ in range(resamples):
                s = rng.integers(0, len(k), len(k))
                if len(set(y[s])) < 2:
                    continue
                diffs.append(roc_auc_score(y[s], b[s]) - roc_auc_score(y[s], a[s]))
            lo, hi = np.percentile(diffs, [2.5, 97.5])
            auc_a, auc_b = roc_auc_score(y, a), roc_auc_score(y, b)
            print(f"  {source}/{view}: {auc_a:.3f} -> {auc_b:.3f}  diff {auc_b - auc_a:+.3f} [{lo:+.3f}, {hi:+.3f}]")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("details")
    ap.add_argument("--manifest", default="models/xray-reader.manifest.json",
                    help="the model's manifest, for the refusal thresholds (the one the details were read with)")
    ap.add_argument("--against", metavar="OTHER",
                    help="details of the same images read by another model: print the paired AUROC differences")
    args = ap.parse_args()
    if args.against:
        rows = [json.loads(line) for line in open(args.details)]
        other = [json.loads(line) for line in open(args.against)]
        print(f"AUROC, {args.against} -> {args.details}, paired bootstrap of the difference")
        paired(rows, other)
        return
    with open(args.manifest) as f:
        ood = json.load(f)["ood"]
    rows = [json.loads(line) for line in open(args.details)]
    originals = {}
    for r in rows:
        r["film_index"] = film_index(r, len(originals))
        if r["view"] == "original":
            originals[r["film_index"]] = r

    print("1. per view and source")
    groups = collections.defaultdict(list)
    for r in rows:
        groups[(r["view"], r["source"])].append(r)
    for (view, source), g in sorted(groups.items()):
        print(f"  {view:13s} {source:8s} {summary(g)}")

    print("\n2. per scene, metering and tone mapping (generators that record what they drew)")
    for key in ("scene", "metered_for", "tone_mapped"):
        groups = collections.defaultdict(list)
        for r in rows:
            if r["view"] in PHOTO_VIEWS and r.get("drawn") and key in r["drawn"]:
                groups[(r["view"], r["source"], str(r["drawn"][key]))].append(r)
        for (view, source, value), g in sorted(groups.items()):
            print(f"  {view:13s} {source:8s} {key}={value:9s} {summary(g)}")

    print("\n3. refusals and the check that made them")
    counts = collections.Counter()
    for r in rows:
        if not r["accepted"] and r["view"] != "nonxray" and r["view"] != "medical":
            scene = (r.get("drawn") or {}).get("scene", "-")
            found = "found" if r["film_detected"] else "whole"
            counts[(r["view"], r["source"], scene, found, refusing_check(r, ood))] += 1
    for k, n in sorted(counts.items()):
        print(f"  {n:3d}  " + "  ".join(k))
    passed = collections.Counter(refusing_check(r, ood) for r in rows
                                 if r["view"] in ("nonxray", "medical") and not r["accepted"])
    print("  non-X-ray and other medical images refused, by check: "
          + ", ".join(f"{k} {n}" for k, n in passed.most_common()))

    print("\n4. change in log-odds from the film's original (accepted reads of both)")
    shifts = collections.defaultdict(list)
    for r in rows:
        o = originals.get(r["film_index"])
        if r["view"] not in PHOTO_VIEWS or o is None or not (r["accepted"] and o["accepted"]):
            continue
        assert o["label"] == r["label"] and o["source"] == r["source"], (r["file"], o["file"])
        scene = (r.get("drawn") or {}).get("scene", "-")
        found = "found" if r["film_detected"] else "whole"
        shifts[(r["view"], r["source"], scene, found, r["label"])].append(logit(r["probability"])
                                                                          - logit(o["probability"]))
    for (view, source, scene, found, label), d in sorted(shifts.items()):
        mean = sum(d) / len(d)
        sd = math.sqrt(sum((x - mean) ** 2 for x in d) / len(d))
        print(f"  {view:13s} {source:8s} {scene:9s} {found:5s} {'abnormal' if label else 'normal':8s} "
              f"n {len(d):3d}  mean {mean:+.2f}  sd {sd:.2f}")


if __name__ == "__main__":
    main()
