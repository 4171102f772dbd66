#!/usr/bin/env bash
# Build the web app into target/site: the reader core as wasm (the `web` profile of Cargo.toml: size-first,
# SIMD; XRAY_WASM_PROFILE=release for the speed-first build), its wasm-bindgen JS glue,
# the page and element from www/, and the bundled model. Installs the wasm target and the wasm-bindgen-cli
# version pinned in Cargo.lock when missing. Writes name.br and name.gz next to every file (scripts/compress.mjs)
# and target/site/sizes.json (first-load transfer in gzip, the budget's measure, and in Brotli).
set -euo pipefail
cd "$(dirname "$0")/.."
SITE=target/site
PROFILE="${XRAY_WASM_PROFILE:-web}"

source scripts/wasm-tools.sh

rm -rf "$SITE"
mkdir -p "$SITE/models"
# Two builds of the same code: pkg/ with SIMD128 (every browser with wasm SIMD) and pkg-relaxed/ with the crate's
# `relaxed-simd` feature (fused multiply-add in the GEMM kernel, src/engine/wasm_gemm.rs; the one place that
# uses relaxed SIMD, so the dependencies are compiled once for both). The worker and the service worker pick
# one by feature detection; a browser downloads only the one it runs.
build() { # build <site subdir> [cargo feature flags]
  local out="$SITE/$1" wasm="target/wasm32-unknown-unknown/$PROFILE/xray_reader.wasm"
  wasm_env cargo rustc --lib --profile "$PROFILE" --target wasm32-unknown-unknown --no-default-features \
    "${@:2}" --crate-type cdylib
  mkdir -p "$out"
  wasm-bindgen --target web --no-typescript --out-dir "$out" "$wasm"
}
optimise() { # optimise <site subdir>
  local wasm="$SITE/$1/xray_reader_bg.wasm"
  if [ "${XRAY_WASM_OPT:-1}" = 0 ]; then
    echo "note: XRAY_WASM_OPT=0, wasm-opt skipped"
  elif [ -x node_modules/.bin/wasm-opt ]; then
    # binaryen from npm (Debian's 108 produces modules that fail to instantiate; see shared TOOLCHAIN.md)
    # -Oz with the size-first profile (the first-load budget), -O3 with the speed-first one
    local opt_level=-O3
    [ "$PROFILE" = web ] && opt_level=-Oz
    node_modules/.bin/wasm-opt "$opt_level" --strip-debug --strip-producers \
      --enable-simd --enable-relaxed-simd --enable-bulk-memory --enable-nontrapping-float-to-int \
      --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
      "$wasm" -o "$wasm"
  else
    echo "note: wasm-opt not found (npm install adds it); the wasm is larger but works"
  fi
}
# npm's wasm-opt (binaryen compiled to wasm) and the fat-LTO crate build each keep one core busy for ~4 min: the
# first build's wasm-opt runs while the second build compiles.
build pkg
optimise pkg &
OPT_PID=$!
trap 'pkill -P "$OPT_PID" 2>/dev/null; kill "$OPT_PID" 2>/dev/null || true' EXIT # a failed build stops it
build pkg-relaxed --features relaxed-simd
optimise pkg-relaxed
wait "$OPT_PID"
trap - EXIT
cp -r www/. "$SITE/"
# The reading worker and the element's module get wasm-build.js inlined in place of its import: the worker then
# requests the wasm as soon as it runs, and the page compiles it on a repeat visit, not one more round trip later
# (www/ keeps the imports, so it also works unbuilt; the service worker still loads wasm-build.js itself).
for f in worker.js xray-reader.js; do
  sed -i -e '/^import "\.\/wasm-build\.js";$/ {' -e 'r www/wasm-build.js' -e 'd' -e '}' "$SITE/$f"
  if grep -q 'wasm-build\.js";$' "$SITE/$f" || ! grep -q 'globalThis.xrayWasmBuild = ' "$SITE/$f"; then
    echo "build-web.sh: could not inline wasm-build.js into $f" >&2
    exit 1
  fi
done
cp models/xray-reader.onnx models/xray-reader.manifest.json models/MODEL_CARD.md "$SITE/models/"

# service worker: cache every file of the site under a version derived from their contents
ASSETS=$(cd "$SITE" && find . -type f ! -name sw.js ! -name '*.gz' ! -name '*.br' ! -name sizes.json | LC_ALL=C sort)
VERSION=$(cd "$SITE" && echo "$ASSETS" | xargs sha256sum | sha256sum | cut -c1-16)
LIST=$( (echo "./"; echo "$ASSETS") | sed 's/.*/"&"/' | paste -sd, -)
sed -e "s/__VERSION__/$VERSION/" -e "s#__ASSETS__#[$LIST]#" www/sw.js > "$SITE/sw.js"

if command -v node >/dev/null; then
  node scripts/compress.mjs "$SITE"
else
  echo "note: Node.js not found; gzip -9 instead of zopfli, and no Brotli copies (larger first load)"
  find "$SITE" -type f ! -name '*.gz' -exec gzip -9 -k -f -n {} \;
fi

# first-load transfer: everything the page fetches before the first read, counting the larger of the two wasm
# builds (a browser fetches one): gzip sizes (the 5 MB budget) and, where the build wrote them, Brotli sizes (what
# a browser downloads from a server that sends the .br copies, as xray-reader-serve does)
first_load() {
  local total=0 total_br=0 f sz br bsz pkg=pkg
  [ "$(stat -c%s "$SITE/pkg-relaxed/xray_reader_bg.wasm.gz")" -gt "$(stat -c%s "$SITE/pkg/xray_reader_bg.wasm.gz")" ] && pkg=pkg-relaxed
  echo "{"
  for f in index.html app.js style.css xray-reader.js worker.js sw.js manifest.webmanifest \
           $pkg/xray_reader.js $pkg/xray_reader_bg.wasm models/xray-reader.onnx models/xray-reader.manifest.json \
           i18n/en.json icons/icon.svg; do
    sz=$(stat -c%s "$SITE/$f.gz")
    total=$((total + sz))
    br=""
    if [ -f "$SITE/$f.br" ]; then
      bsz=$(stat -c%s "$SITE/$f.br")
      total_br=$((total_br + bsz))
      br=", \"br\": $bsz"
    fi
    printf '  "%s": {"raw": %d, "gzip": %d%s},\n' "$f" "$(stat -c%s "$SITE/$f")" "$sz" "$br"
  done
  [ "$total_br" -gt 0 ] && printf '  "total_br": %d,\n' "$total_br"
  printf '  "total_gzip": %d,\n  "budget_gzip": %d\n}\n' "$total" $((5 * 1000 * 1000))
}
first_load > "$SITE/sizes.json"
echo "site: $SITE (version $VERSION); first load $(awk '/total_gzip/ {gsub(/,/, ""); printf "%.2f MB", $2/1e6}' "$SITE/sizes.json") gzip (budget 5 MB)$(awk '/total_br/ {gsub(/,/, ""); printf ", %.2f MB Brotli", $2/1e6}' "$SITE/sizes.json")"
