#!/usr/bin/env bash
# Make sure the wasm32-unknown-unknown target and the wasm-bindgen-cli version pinned in Cargo.lock
# (wasm-bindgen, and wasm-bindgen-test-runner for the wasm tests) are installed. Sourced by build-web.sh and
# test.sh: the wasm tests run before the web build, so a fresh machine needs them first.
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi
WB_VERSION=$(awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/version = |"/, ""); print }' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WB_VERSION" ] \
  || ! command -v wasm-bindgen-test-runner >/dev/null; then
  echo "installing wasm-bindgen-cli $WB_VERSION (matches Cargo.lock)…"
  cargo install --force wasm-bindgen-cli --version "$WB_VERSION"
fi

# The wasm builds' flags are .cargo/config.toml's for the wasm target (SIMD128, web-sys's WebGPU API); wasm_env
# clears RUSTFLAGS from the environment so that they cannot be replaced (and tract rebuilt). build-web.sh's two
# builds (SIMD128, and relaxed SIMD through the crate's `relaxed-simd` feature) and test.sh's wasm tests all run
# under it with the `web` profile: tract and the other dependencies are compiled once for all three.
wasm_env() { env -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS "$@"; }
