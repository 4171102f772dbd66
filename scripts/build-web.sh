#!/usr/bin/env bash
# Build the web app into target/site: the reader core as wasm (the `web` profile of Cargo.toml: size-first,
# SIMD; XRAY_WASM_PROFILE=release for the speed-first build), its wasm-bindgen JS glue,
# the page and element from www/, and the bundled model. Installs the wasm target and the wasm-bindgen-cli
# version pinned in Cargo.lock when missing. Writes name.gz next to every file and target/site/sizes.json
# (first-load transfer, gzip: zopfli via scripts/gzip.mjs).
set -euo pipefail
cd "$(dirname "$0")/.."
SITE=target/site
PROFILE="${XRAY_WASM_PROFILE:-web}"
WASM=target/wasm32-unknown-unknown/$PROFILE/xray_reader.wasm

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi
WB_VERSION=$(awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/version = |"/, ""); print }' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WB_VERSION" ]; then
  echo "installing wasm-bindgen-cli $WB_VERSION (matches Cargo.lock)…"
  cargo install wasm-bindgen-cli --version "$WB_VERSION"
fi

cargo rustc --lib --profile "$PROFILE" --target wasm32-unknown-unknown --no-default-features --crate-type cdylib
rm -rf "$SITE"
mkdir -p "$SITE/pkg" "$SITE/models"
wasm-bindgen --target web --no-typescript --out-dir "$SITE/pkg" "$WASM"
if [ "${XRAY_WASM_OPT:-1}" = 0 ]; then
  echo "note: XRAY_WASM_OPT=0, wasm-opt skipped"
elif [ -x node_modules/.bin/wasm-opt ]; then
  # binaryen from npm (Debian's 108 produces modules that fail to instantiate; see shared TOOLCHAIN.md)
  # -Oz with the size-first profile (the first-load budget), -O3 with the speed-first one
  OPT_LEVEL=-O3
  [ "$PROFILE" = web ] && OPT_LEVEL=-Oz
  node_modules/.bin/wasm-opt "$OPT_LEVEL" --strip-debug --strip-producers \
    --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue \
    "$SITE/pkg/xray_reader_bg.wasm" -o "$SITE/pkg/xray_reader_bg.wasm"
else
  echo "note: wasm-opt not found (npm install adds it); the wasm is larger but works"
fi
cp -r www/. "$SITE/"
cp models/xray-reader.onnx models/xray-reader.manifest.json models/MODEL_CARD.md "$SITE/models/"

# service worker: cache every file of the site under a version derived from their contents
ASSETS=$(cd "$SITE" && find . -type f ! -name sw.js ! -name '*.gz' ! -name sizes.json | LC_ALL=C sort)
VERSION=$(cd "$SITE" && echo "$ASSETS" | xargs sha256sum | sha256sum | cut -c1-16)
LIST=$( (echo "./"; echo "$ASSETS") | sed 's/.*/"&"/' | paste -sd, -)
sed -e "s/__VERSION__/$VERSION/" -e "s#__ASSETS__#[$LIST]#" www/sw.js > "$SITE/sw.js"

if command -v node >/dev/null; then
  node scripts/gzip.mjs "$SITE"
else
  echo "note: Node.js not found; gzip -9 instead of zopfli (larger first load)"
  find "$SITE" -type f ! -name '*.gz' -exec gzip -9 -k -f -n {} \;
fi

# first-load transfer: everything the page fetches before the first read (gzip sizes)
first_load() {
  local total=0 f sz
  echo "{"
  for f in index.html app.js style.css xray-reader.js worker.js sw.js manifest.webmanifest \
           pkg/xray_reader.js pkg/xray_reader_bg.wasm models/xray-reader.onnx models/xray-reader.manifest.json \
           i18n/en.json icons/icon.svg; do
    sz=$(stat -c%s "$SITE/$f.gz")
    total=$((total + sz))
    printf '  "%s": {"raw": %d, "gzip": %d},\n' "$f" "$(stat -c%s "$SITE/$f")" "$sz"
  done
  printf '  "total_gzip": %d,\n  "budget_gzip": %d\n}\n' "$total" $((5 * 1000 * 1000))
}
first_load > "$SITE/sizes.json"
echo "site: $SITE (version $VERSION); first load $(awk '/total_gzip/ {gsub(/,/, ""); printf "%.2f MB", $2/1e6}' "$SITE/sizes.json") gzip (budget 5 MB)"
