#!/usr/bin/env bash
# Run every test: unit and integration tests (real fixture films through the bundled model), the CLI
# contract, then the web app end to end in headless Chromium (builds target/site first).
# Needs: Rust, Node.js + `npm ci`, Debian's chromium (see .ci/run, which installs all of it).
set -euo pipefail
cd "$(dirname "$0")/.."
# PRUNE_BUILDS=1 (set by .ci/run) deletes each stage's build output once that stage has passed: a throwaway
# clone needs no caches, and a CI machine's disk can be small (one run failed with "No space left on device").
prune() { if [ "${PRUNE_BUILDS:-0}" = 1 ]; then echo "pruning $*"; rm -rf "$@"; fi; }
df -h . | tail -1 | awk '{print "disk: " $4 " free"}'
# with the native GPU engine (wgpu): tests/native_gpu.rs runs the page's WebGPU kernels on any Vulkan adapter
cargo test --all-targets --features native-gpu "$@"
# e2e needs only the CLI and the server binaries (target/debug/xray-reader*), not the test binaries
prune target/debug/deps target/debug/incremental target/debug/build target/debug/examples
# a short, bounded fuzz run of decode, film and the whole read (the long runs are in the README); before the
# wasm stages, so that its build output is gone before theirs is kept for the web build
./scripts/fuzz.sh 30
prune fuzz/target
# the wasm Reader class itself, in headless Chromium (wasm-bindgen-test; webdriver.json sets the browser), built
# as the page's wasm is (the `web` profile, each build's flags and target directory): the web build below then
# reuses the compiled dependencies instead of compiling tract twice more
source scripts/wasm-tools.sh # the target and the pinned wasm-bindgen-test-runner
wasm_test() { # wasm_test <simd128|relaxed> [test name filter]
  wasm_build_env "$1" env CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}" WASM_BINDGEN_TEST_TIMEOUT=600 \
    cargo test --profile web --target wasm32-unknown-unknown --no-default-features --test wasm -- "${@:2}"
}
wasm_test simd128
# the matrix kernel again as the relaxed-SIMD build compiles it (fused multiply-add; the build Chromium runs)
wasm_test relaxed gemm_kernel
[ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund
./scripts/build-web.sh
# the e2e tests need target/site and the native binaries, not the wasm build directories
prune target/wasm32-unknown-unknown target/relaxed-simd
node --test --test-concurrency=1 tests/e2e/
