#!/usr/bin/env bash
# Run every test: unit and integration tests (real fixture films through the bundled model), the CLI
# contract, then the web app end to end in headless Chromium (builds target/site first).
# Needs: Rust, Node.js + `npm ci`, Debian's chromium (see .ci/run, which installs all of it).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --all-targets "$@"
# the wasm Reader class itself, in headless Chromium (wasm-bindgen-test; webdriver.json sets the browser)
CHROMEDRIVER=${CHROMEDRIVER:-/usr/bin/chromedriver} WASM_BINDGEN_TEST_TIMEOUT=600 \
  cargo test --target wasm32-unknown-unknown --no-default-features --test wasm
# a short, bounded fuzz run of decode, film and the whole read (the long runs are in the README)
./scripts/fuzz.sh 30
[ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund
./scripts/build-web.sh
node --test --test-concurrency=1 tests/e2e/
