"""Pick the behaviour fixtures of `tests/pipeline.rs` for a model: photos on which the reader's second look and
its turn check decide the read. Which photos do depends on the model, so a new model needs new ones.

    python models/training/behaviour_fixtures.py DETAILS.jsonl [--manifest MANIFEST] [--copy tests/fixtures]

DETAILS.jsonl is an `evaluate_cli.py --details` (or `--reuse`) run of the model, its photos still where that
run kept them. Prints, for each behaviour, the abnormal films it accepted that way, best margin first:
- `second-look/`: a third-generator photo whose film was not found, refused when read whole and accepted at its
  centre (the test also checks it is refused without the manifest's second-look threshold);
- `turn-check/`: a photo whose film was found, accepted after the turn check (`turn_checked`), its orientation
  confidence under the manifest's minimum (the test also checks it is refused without the turn check, which
  the details cannot show: without it the second look may read the photo's centre instead, as it does for
  1.4.0's first candidate, so check the picks with a manifest that lacks `ood.turn_check_min_confidence`).
With --copy, copies the first of each to the fixture names the tests read and prints the ATTRIBUTION.md facts
(validation film index, generator seed, source film). Recheck the margins with the reader itself afterwards.
"""

import argparse
import json
import os
import re
import shutil

from details_report import logit
from evaluate_cli import PER_FILM

# the photo generators that seed each film's photo with (seed, film index)
SEEDS = {view: seed for view, (_, seed, _) in PER_FILM.items()}
TARGETS = {"second_look": "second-look", "turn_checked": "turn-check"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("details")
    ap.add_argument("--manifest", default="models/xray-reader.manifest.json")
    ap.add_argument("--copy", help="fixture folder to copy the chosen photos into (tests/fixtures)")
    args = ap.parse_args()
    manifest = json.load(open(args.manifest))
    ood, thr = manifest["ood"], manifest["findings"][0]["threshold"]
    rows = [json.loads(line) for line in open(args.details)]
    originals = [r["file"] for r in rows if r["view"] == "original"]
    if rows and "warnings" not in rows[0]:
        raise SystemExit("this details file has no warnings (made before evaluate_cli recorded them): rerun with --reuse")

    def film(r):
        m = re.search(r"-(\d+)\.jpg$", r["file"])
        return int(m.group(1)) if m else None

    picks = {}
    for code, folder in TARGETS.items():
        cands = [r for r in rows if r["view"] in SEEDS and r["label"] == 1 and r["accepted"] and code in r["warnings"]
                 and r["probability"] is not None and r["probability"] >= thr]
        if code == "second_look":  # the test: film not found, whole read refused, centre read kept
            cands = [r for r in cands if r["view"] == "photo_third" and not r["film_detected"]]
            margin = lambda r: min(ood["second_look_threshold"] - r["ood_score"], logit(r["probability"]) - logit(thr))
        else:  # the test: film found, orientation confidence under the minimum, distance within the threshold
            cands = [r for r in cands if r["film_detected"]
                     and r["orientation"]["confidence"] < ood["min_orientation_confidence"]]
            margin = lambda r: min(ood["threshold"] - r["ood_score"], logit(r["probability"]) - logit(thr))
        cands.sort(key=margin, reverse=True)
        print(f"{folder}: {len(cands)} candidates")
        for r in cands[:8]:
            print(f"  {r['view']} film {film(r)} {r['source']} p {r['probability']:.3f} ood {r['ood_score']:.3f} "
                  f"orientation {r['orientation']['confidence']:.4f} margin {margin(r):.3f} "
                  f"scene {(r.get('drawn') or {}).get('scene')}  {r['file']}")
        if cands:
            picks[code] = cands[0]
    if args.copy:
        for code, r in picks.items():
            folder, i = TARGETS[code], film(r)
            source = originals[i]
            scene = (r.get("drawn") or {}).get("scene", "photo")
            name = f"{folder}/{scene}-{r['source']}-pneumonia.jpg"
            os.makedirs(os.path.join(args.copy, folder), exist_ok=True)
            shutil.copyfile(r["file"], os.path.join(args.copy, name))
            print(f"{name}: {r['view']} of validation film {i}, seed ({SEEDS[r['view']]}, {i}), source {source}")


if __name__ == "__main__":
    main()
