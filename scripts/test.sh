#!/usr/bin/env bash
# Run every test: unit and integration tests (real fixture films through the bundled model), the CLI
# contract, the wasm Reader in headless Chromium, then the web app end to end (builds target/site first).
# Needs: Rust, Node.js + `npm ci`, Debian's chromium (see .ci/run, which installs all of it).
# XRAY_FUZZ_SECONDS=N adds a bounded fuzz run of N seconds per target (scripts/fuzz.sh; off by default: its
# instrumented build of every dependency took 13 minutes on 2 cores, and CI's limit is 90 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
# PRUNE_BUILDS=1 (set by .ci/run) deletes each stage's build output once that stage has passed: a throwaway
# clone needs no caches, and a CI machine's disk can be small (one run failed with "No space left on device").
prune() { if [ "${PRUNE_BUILDS:-0}" = 1 ]; then echo "pruning $*"; rm -rf "$@"; fi; }
# stage NAME COMMAND...: run one stage and record its wall time; the times are printed at the end, pass or fail
TIMES=()
stage() {
  local start=$SECONDS
  echo "== $1"
  "${@:2}"
  TIMES+=("$(printf '%6d s  %s' $((SECONDS - start)) "$1")")
}
trap 'printf "stage times:\n"; printf "%s\n" "${TIMES[@]}"; printf "%6d s  in all\n" "$SECONDS"' EXIT
df -h . | tail -1 | awk '{print "disk: " $4 " free"}'
# with the native GPU engine (wgpu): tests/native_gpu.rs runs the page's WebGPU kernels on any Vulkan adapter
stage "native tests" cargo test --all-targets --features native-gpu "$@"
# e2e needs only the CLI and the server binaries (target/debug/xray-reader*), not the test binaries
prune target/debug/deps target/debug/incremental target/debug/build target/debug/examples
if [ "${XRAY_FUZZ_SECONDS:-0}" -gt 0 ]; then
  stage "fuzz" ./scripts/fuzz.sh "$XRAY_FUZZ_SECONDS"
  prune fuzz/target
fi
# the wasm Reader class itself, in headless Chromium (wasm-bindgen-test; webdriver.json sets the browser), built
# as the page's wasm is (the `web` profile and the same flags): the web build below then reuses the compiled
# dependencies instead of compiling tract again. The relaxed-SIMD build differs in one line of the matrix kernel;
# the e2e tests read a film with both builds and compare.
source scripts/wasm-tools.sh # the target, the pinned wasm-bindgen-test-runner and the wasm flags
stage "wasm tests" wasm_env env CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}" WASM_BINDGEN_TEST_TIMEOUT=600 \
  cargo test --profile web --target wasm32-unknown-unknown --no-default-features --test wasm
[ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund
stage "web build" ./scripts/build-web.sh
# the e2e tests need target/site and the native binaries, not the wasm build directory
prune target/wasm32-unknown-unknown
stage "e2e" node --test --test-concurrency=1 tests/e2e/
