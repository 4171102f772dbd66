#!/usr/bin/env bash
# Build the web app (wasm + page + bundled model, into target/site) and serve it on 127.0.0.1
# (PORT, default 8080). Prints the URL. Installs the wasm target and the pinned wasm-bindgen-cli if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build-web.sh
cargo build --bin xray-reader-serve
exec ./target/debug/xray-reader-serve target/site
