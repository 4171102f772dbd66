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

# The two wasm builds, as build-web.sh makes them: `simd128` (in target/) and `relaxed` (+relaxed-simd, in its
# own target directory, so switching RUSTFLAGS does not rebuild the other). test.sh runs the wasm tests with
# the same profile, flags and directory, so the web build reuses their compiled dependencies (tract compiled
# once per build, not once for the tests and once for the site).
wasm_target_dir() { if [ "$1" = relaxed ]; then echo target/relaxed-simd; else echo target; fi; }
# wasm_build_env <simd128|relaxed> COMMAND...: run COMMAND with that build's CARGO_TARGET_DIR and RUSTFLAGS
wasm_build_env() {
  local extra=""
  [ "$1" = relaxed ] && extra=",+relaxed-simd"
  CARGO_TARGET_DIR="$(wasm_target_dir "$1")" RUSTFLAGS="-C target-feature=+simd128$extra --cfg=web_sys_unstable_apis" \
    "${@:2}"
}
