#!/usr/bin/env bash
# Run every test: unit and integration tests (real fixture films through the bundled model), the CLI
# contract, then the web app end to end in headless Chromium (builds target/site first).
# Needs: Rust, Node.js + `npm ci`, Debian's chromium (see .ci/run, which installs all of it).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --all-targets "$@"
./scripts/build-web.sh
cargo build --bins
[ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund
node --test --test-concurrency=1 tests/e2e/
