// Precompress every file of the built site twice, as xray-reader-serve sends them:
// - name.br, Brotli (quality 11, 16 MiB window; Node's own zlib), for browsers that accept it (all current
//   ones: the wasm is ~30 % smaller than in gzip);
// - name.gz, gzip, for the rest and for the first-load budget (sizes.json counts both). Zopfli (@gfx/zopfli,
//   a devDependency) writes standard gzip streams 4-7 % smaller than `gzip -9` on the wasm and the model;
//   without it (no `npm ci`), zlib level 9.
// Every stream is decoded again and compared with its file before it is written. Zopfli is single-threaded, so
// the files are shared out, largest first, to one worker thread per core (the output does not depend on it).
// Usage: node scripts/compress.mjs DIR (bench/run.mjs imports `brotliOptions` to size other files alike)
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
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

async function gzipper() {
  try {
    const zopfli = await import("@gfx/zopfli");
    return (data) =>
      new Promise((resolve, reject) => zopfli.gzip(data, { numiterations: 15 }, (e, out) => (e ? reject(e) : resolve(out))));
  } catch {
    return null;
  }
}

/** Writes `f`.gz and `f`.br, each checked to decode back to the file. */
async function compressFile(f, gzip) {
  const data = fs.readFileSync(f);
  // both at once: Brotli runs on libuv's thread pool while zopfli works
  const [gz, br] = await Promise.all([gzip(data), promisify(zlib.brotliCompress)(data, brotliOptions(data))]);
  if (!zlib.gunzipSync(gz).equals(data)) throw new Error(`gzip of ${f} does not round-trip`);
  if (!zlib.brotliDecompressSync(br).equals(data)) throw new Error(`brotli of ${f} does not round-trip`);
  fs.writeFileSync(`${f}.gz`, gz);
  fs.writeFileSync(`${f}.br`, br);
}

// A worker thread: says whether it has zopfli, then compresses each file the main thread posts and answers with
// the file or the error. (Only workers load zopfli: its Emscripten glue rethrows the main thread's uncaught errors
// with its whole source.)
async function serveWorker() {
  const zopfli = await gzipper();
  const gzip = zopfli ?? ((data) => Promise.resolve(zlib.gzipSync(data, { level: 9 })));
  parentPort.on("message", async (f) => {
    try {
      await compressFile(f, gzip);
      parentPort.postMessage({ f });
    } catch (e) {
      parentPort.postMessage({ f, error: String(e?.stack ?? e) });
    }
  });
  parentPort.postMessage({ ready: true, zopfli: zopfli !== null });
}

async function main(dir) {
  if (!dir) throw new Error("usage: node scripts/compress.mjs DIR");
  const queue = files(dir)
    .map((f) => [f, fs.statSync(f).size])
    .sort((a, b) => b[1] - a[1])
    .map(([f]) => f);
  const cores = typeof os.availableParallelism === "function" ? os.availableParallelism() : os.cpus().length;
  const threads = Math.max(1, Math.min(cores, queue.length));
  await new Promise((resolve, reject) => {
    let running = threads;
    let failed = false;
    let noted = false;
    for (let i = 0; i < threads; i++) {
      const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { compressWorker: true } });
      const next = () => {
        const f = failed ? undefined : queue.shift();
        if (f !== undefined) return worker.postMessage(f);
        worker.terminate();
        if (--running === 0) resolve();
      };
      worker.on("message", (m) => {
        if (m.ready && !m.zopfli && !noted) {
          noted = true;
          console.log("note: @gfx/zopfli not installed (npm ci adds it); using zlib level 9");
        }
        if (m.error) {
          failed = true;
          reject(new Error(`compressing ${m.f}: ${m.error}`));
        }
        next();
      });
      worker.on("error", (e) => {
        failed = true;
        reject(e);
      });
    }
  });
}

if (!isMainThread && workerData?.compressWorker) await serveWorker();
// run as a script (build-web.sh), not when imported
else if (isMainThread && process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1]))
  await main(process.argv[2]);
