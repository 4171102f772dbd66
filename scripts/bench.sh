#!/usr/bin/env bash
# Browser benchmarks (BENCHMARKS.md): build the site, then time it in headless Chromium against
# onnxruntime-web on the same model. RUNS (default 30) sets the interleaved model-step runs.
# Native per-stage benches: `cargo bench --bench stages`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build-web.sh
cargo build --bin xray-reader-serve
[ -d node_modules/onnxruntime-web ] || npm ci --no-audit --no-fund
node bench/run.mjs
