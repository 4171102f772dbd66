// Precompress every file of the built site as name.gz (what xray-reader-serve sends to browsers that accept
// gzip, and what sizes.json counts). Zopfli (@gfx/zopfli, a devDependency) writes standard gzip streams
// 4-7 % smaller than `gzip -9` on the wasm and the model, at ~1 min of build time; without it (no
// `npm ci`), zlib level 9.
// Usage: node scripts/gzip.mjs DIR
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";

const dir = process.argv[2];
if (!dir) throw new Error("usage: node scripts/gzip.mjs DIR");
let zopfli = null;
try {
  zopfli = await import("@gfx/zopfli");
} catch {
  console.log("note: @gfx/zopfli not installed (npm ci adds it); using zlib level 9");
}

function files(d) {
  return fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(d, e.name);
    return e.isDirectory() ? files(p) : e.name.endsWith(".gz") ? [] : [p];
  });
}

const compress = (data) =>
  zopfli
    ? new Promise((resolve, reject) => zopfli.gzip(data, { numiterations: 15 }, (e, out) => (e ? reject(e) : resolve(out))))
    : Promise.resolve(zlib.gzipSync(data, { level: 9 }));

for (const f of files(dir)) {
  const out = await compress(fs.readFileSync(f));
  // a gzip stream must decode back to the file byte for byte
  if (!zlib.gunzipSync(out).equals(fs.readFileSync(f))) throw new Error(`gzip of ${f} does not round-trip`);
  fs.writeFileSync(`${f}.gz`, out);
}
