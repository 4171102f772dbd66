#!/usr/bin/env bash
# Run every test: unit, integration (real fixture films through the bundled model) and CLI contract.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --all-targets "$@"
