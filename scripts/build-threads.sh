#!/usr/bin/env bash
# An experiment, not part of the site: add the threaded wasm build, target/site/pkg-threads/, to a site that
# scripts/build-web.sh has built, for `bench/model.mjs` to time (BENCHMARKS.md, session 33). The page never
# loads it. It is pkg-relaxed's code with the crate's `threads` feature: tract's matrix products and depthwise
# convolutions split over a rayon pool of Web Workers (wasm-bindgen-rayon), the model run on a pool thread.
# Threads need wasm atomics in std itself, and a std with them is built by Cargo's `-Z build-std`, which is
# unstable: RUSTC_BOOTSTRAP=1 lets this stable toolchain run it (with the rust-src component). rustc does not
# make the memory shared for wasm32-unknown-unknown by itself, so the link arguments below do; they go to the
# final crate only (after `--`), so changing them does not rebuild the dependencies. Its own target directory:
# other flags and another std, which must not evict the site's compiled crates. About 20 min the first time on
# 2 cores, then 4 min. wasm-opt is skipped (4 more minutes): session 33's timings in BENCHMARKS.md were taken
# without it, and its size there (after -Oz) by an earlier build-web.sh that made this build too.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f target/site/index.html ] || { echo "build the site first: scripts/build-web.sh" >&2; exit 1; }
source scripts/wasm-tools.sh
rustup component list --installed 2>/dev/null | grep -q '^rust-src' || rustup component add rust-src
DIR=target/wasm-threads
env -u CARGO_ENCODED_RUSTFLAGS RUSTC_BOOTSTRAP=1 \
  RUSTFLAGS="-C target-feature=+simd128,+atomics,+bulk-memory,+mutable-globals --cfg=web_sys_unstable_apis" \
  cargo rustc --lib --profile web --target wasm32-unknown-unknown --no-default-features \
  --features relaxed-simd,threads --crate-type cdylib -Z build-std=panic_abort,std --target-dir "$DIR" -- \
  -C link-arg=--shared-memory -C link-arg=--max-memory=1073741824 -C link-arg=--import-memory \
  -C link-arg=--export=__wasm_init_tls -C link-arg=--export=__tls_size -C link-arg=--export=__tls_align \
  -C link-arg=--export=__tls_base
rm -rf target/site/pkg-threads
wasm-bindgen --target web --no-typescript --out-dir target/site/pkg-threads "$DIR/wasm32-unknown-unknown/web/xray_reader.wasm"
echo "target/site/pkg-threads: $(gzip -9 -c target/site/pkg-threads/xray_reader_bg.wasm | wc -c) bytes gzip -9 (not wasm-opt'd)"
