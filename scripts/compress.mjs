// Precompress every file of the built site twice, as xray-reader-serve sends them:
// - name.br, Brotli (quality 11, 16 MiB window; Node's own zlib), for browsers that accept it (all current
//   ones: the wasm is ~30 % smaller than in gzip);
// - name.gz, gzip, for the rest and for the first-load budget (sizes.json counts both). Zopfli (@gfx/zopfli,
//   a devDependency) writes standard gzip streams 4-7 % smaller than `gzip -9` on the wasm and the model;
//   without it (no `npm ci`), zlib level 9.
// Every stream is decoded again and compared with its file before it is written. ~1.5 min on 2 cores.
// Usage: node scripts/compress.mjs DIR (bench/run.mjs imports `brotliOptions` to size other files alike)
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import zlib from "node:zlib";

/** zlib's Brotli options for `data`: quality 11, 16 MiB window. */
export const brotliOptions = (data) => ({
  params: {
    [zlib.constants.BROTLI_PARAM_QUALITY]: 11,
    [zlib.constants.BROTLI_PARAM_LGWIN]: 24,
    [zlib.constants.BROTLI_PARAM_SIZE_HINT]: data.length,
  },
});

function files(d) {
  return fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(d, e.name);
    return e.isDirectory() ? files(p) : /\.(gz|br)$/.test(e.name) ? [] : [p];
  });
}

async function main(dir) {
  if (!dir) throw new Error("usage: node scripts/compress.mjs DIR");
  let zopfli = null;
  try {
    zopfli = await import("@gfx/zopfli");
  } catch {
    console.log("note: @gfx/zopfli not installed (npm ci adds it); using zlib level 9");
  }
  const gzip = (data) =>
    zopfli
      ? new Promise((resolve, reject) => zopfli.gzip(data, { numiterations: 15 }, (e, out) => (e ? reject(e) : resolve(out))))
      : Promise.resolve(zlib.gzipSync(data, { level: 9 }));
  const brotli = (data) => promisify(zlib.brotliCompress)(data, brotliOptions(data));
  for (const f of files(dir)) {
    const data = fs.readFileSync(f);
    // both at once: Brotli runs on libuv's thread pool while zopfli works
    const [gz, br] = await Promise.all([gzip(data), brotli(data)]);
    if (!zlib.gunzipSync(gz).equals(data)) throw new Error(`gzip of ${f} does not round-trip`);
    if (!zlib.brotliDecompressSync(br).equals(data)) throw new Error(`brotli of ${f} does not round-trip`);
    fs.writeFileSync(`${f}.gz`, gz);
    fs.writeFileSync(`${f}.br`, br);
  }
}

// run as a script (build-web.sh), not when imported
if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) await main(process.argv[2]);
