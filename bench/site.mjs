// The benchmark site, shared by bench/run.mjs and bench/read.mjs: a copy of a built site (target/site, or
// `from`) in target/bench-site with the benchmark page (bench/web) and the film fixture, plus `extra` files
// ([source, path in the site]), e.g. onnxruntime-web's. Returns the site's directory.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

export function stageBenchSite({ from = path.join(ROOT, "target/site"), extra = [] } = {}) {
  const site = path.join(ROOT, "target/bench-site");
  fs.rmSync(site, { recursive: true, force: true });
  fs.cpSync(from, site, { recursive: true });
  fs.cpSync(path.join(ROOT, "bench/web"), path.join(site, "bench"), { recursive: true });
  fs.copyFileSync(path.join(ROOT, "tests/fixtures/nih-pneumonia.jpg"), path.join(site, "bench/film.jpg"));
  for (const [source, to] of extra) {
    fs.mkdirSync(path.dirname(path.join(site, to)), { recursive: true });
    fs.copyFileSync(source, path.join(site, to));
  }
  return site;
}

/** onnxruntime-web's files for the benchmark site (`extra` of stageBenchSite): its wasm backend, from npm. */
export function ortFiles() {
  const ort = path.join(ROOT, "node_modules/onnxruntime-web/dist");
  return ["ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"].map((f) => [path.join(ort, f), `bench/ort/${f}`]);
}
