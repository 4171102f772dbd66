#!/usr/bin/env bash
# Build what is missing and serve the app on 127.0.0.1 (PORT, default 8080). Prints the URL.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --bins
exec ./target/debug/xray-reader-serve www
