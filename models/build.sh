#!/usr/bin/env bash
# Rebuild the bundled model from public data: train, quantization-aware fine-tune, export (4/6-bit weights
# in int8 QDQ), fit the checks, evaluate, train and graft the opacity head, learn the lung prior, write the
# manifest and metrics, rebuild the test fixtures. Usage: models/build.sh [DATA_DIR] (default ../shared/data)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="$(realpath "${1:-${XRAY_DATA:-../shared/data}}")"
VENV="${VENV:-../venv-xray-train}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r models/requirements.txt
fi
PY="$VENV/bin/python"
export PYTHONUNBUFFERED=1
(cd models/training && "$PY" train.py --data "$DATA" --out ../build --epochs 9 --clahe --trim --metering)
(cd models/training && "$PY" quantize_finetune.py --data "$DATA" --build ../build --epochs 3)
(cd models/training && "$PY" export.py --data "$DATA" --build ../build --out ..)
# the opacity head: trained on synthetic opacities over the exported backbone's features, grafted on as a
# sixth output (rewrites the ONNX file, its manifest's sha256 and outputs, and metrics.json's opacity_head)
(cd models/training && "$PY" opacity_head.py --data "$DATA" --model ../xray-reader.onnx)
# where the lungs usually lie on the model's grid, learned from the training normals: the manifest's
# regions.lung_prior, which weighs the map the peak and regions follow
(cd models/training && "$PY" lung_prior.py --data "$DATA" --model ../xray-reader.onnx)
# the fixture films stay the same across model versions (only their onnxruntime probabilities are refreshed);
# delete tests/fixtures/fixtures.json to pick new ones
if [ -f tests/fixtures/fixtures.json ]; then REFRESH=--refresh-probabilities; else REFRESH=; fi
(cd models/training && "$PY" make_fixtures.py --data "$DATA" --model ../xray-reader.onnx --out ../../tests/fixtures $REFRESH)
echo "done: models/xray-reader.onnx, models/xray-reader.manifest.json, models/metrics.json, tests/fixtures/"
