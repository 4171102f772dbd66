"""Fit the reader's second-look threshold (manifest `ood.second_look_threshold`) for an exported model
without rebuilding it: the same 1,200 training inputs the OOD statistics were fitted on (export.py), scored
with the statistics exactly as the manifest carries them; the threshold is their SECOND_LOOK_PERCENTILE-th
percentile. Also checks that the manifest's refusal threshold is those scores' 99.5th percentile, i.e. that
this is the model's own fit set. export.py writes the same field when it builds a model.

Usage (from the repository root):
  PYTHONPATH=models/training python models/training/second_look.py --data ../shared/data \
      --onnx models/xray-reader.onnx [--write]
"""
import argparse
import json
import os

import numpy as np

import data
import export


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("XRAY_DATA", "../shared/data"))
    ap.add_argument("--onnx", required=True)
    ap.add_argument("--seed", type=int, default=1234, help="export.py's --seed")
    ap.add_argument("--write", action="store_true", help="store the threshold in the manifest")
    args = ap.parse_args()
    manifest_path = args.onnx[: -len(".onnx")] + ".manifest.json"
    with open(manifest_path) as f:
        manifest = json.load(f)
    data.configure_for_onnx(args.onnx)
    ood = manifest["ood"]
    st = {k: (np.array(ood[k], np.float64) if isinstance(ood[k], list) else ood[k])
          for k in ("mean", "components", "variances", "residual_scale")}
    train = [r for r in data.load_records(args.data) if not r["val"]]
    fit = export.Runner(args.onnx)(export.ood_fit_inputs(train, args.seed))
    scores = export.ood_score(fit["embedding"].astype(np.float64), st)
    refit = float(np.percentile(scores, 99.5))
    print(f"99.5th percentile {refit:.4f} (manifest threshold {ood['threshold']:.4f})")
    for q in (50, 90, export.SECOND_LOOK_PERCENTILE, 97.5, 99):
        print(f"{q}th percentile {np.percentile(scores, q):.4f}")
    if abs(refit - ood["threshold"]) > 0.01 * ood["threshold"]:
        raise SystemExit("the scores do not reproduce the manifest's threshold: not this model's fit set")
    if args.write:
        ood["second_look_threshold"] = round(float(np.percentile(scores, export.SECOND_LOOK_PERCENTILE)), 4)
        with open(manifest_path, "w") as f:
            json.dump(manifest, f, separators=(",", ":"))
        print("wrote", manifest_path)


if __name__ == "__main__":
    main()
