// The benchmark page: model step (tract vs onnxruntime-web, 1 thread and, when cross-origin isolated,
// multi-thread), then 12 MP photo -> report through the public API. Results land in window.__bench.
import { createReader } from "../xray-reader.js";

const params = new URLSearchParams(location.search);
const RUNS = Number(params.get("runs") || 30);
const out = document.getElementById("out");
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

function modelStep(threads, webgpu = false, build = undefined, thresholds = undefined) {
  return new Promise((resolve) => {
    const w = new Worker(new URL("bench-worker.js", import.meta.url), { type: "module" });
    w.onmessage = (e) => {
      w.terminate();
      resolve(e.data);
    };
    w.onerror = (e) => resolve({ error: e.message });
    w.postMessage({ threads, runs: RUNS, warmup: 3, webgpu, build, thresholds });
  });
}

async function photo12mp() {
  const film = await (await fetch("film.jpg")).blob();
  const bitmap = await createImageBitmap(film);
  const c = new OffscreenCanvas(4000, 3000);
  const g = c.getContext("2d");
  g.fillStyle = "#2a2a2a";
  g.fillRect(0, 0, 4000, 3000);
  g.translate(2000, 1500);
  g.rotate(0.06);
  const h = 2700, w = (bitmap.width / bitmap.height) * h;
  g.drawImage(bitmap, -w / 2, -h / 2, w, h);
  return c.convertToBlob({ type: "image/jpeg", quality: 0.92 });
}

async function endToEnd(backend = "cpu", runs = 7, input = "photo") {
  const t0 = performance.now();
  // one engine at a time: "auto" would start WebGPU and its self-check in the background during the timing
  const reader = await createReader({ backend });
  const ready = performance.now() - t0;
  let engine = "cpu";
  if (backend === "webgpu") {
    const b = await reader.backendInfo();
    if (!b.check || !b.check.passed) {
      reader.close();
      return { error: b.error ? b.error.message : "WebGPU did not pass its self-check" };
    }
    engine = b.info.engine;
  }
  // "film": the 512 px film file itself (read by Rust without a browser decode since session 21)
  const blob = input === "film" ? await (await fetch("film.jpg")).blob() : await photo12mp();
  const walls = [], stages = [], pageStages = [];
  for (let i = 0; i < runs; i++) {
    const a = performance.now();
    const { report, stages: page } = await reader.readWithView(blob);
    walls.push(performance.now() - a);
    stages.push(report.timings_ms);
    pageStages.push(page);
  }
  const stats = await reader.stats();
  reader.close();
  const stage = (k) => median(stages.map((s) => s[k]));
  return {
    engine, photoBytes: blob.size, readerReadyMs: ready, wallMedian: median(walls), walls,
    wasmStages: { decode: stage("decode"), film: stage("film"), preprocess: stage("preprocess"), model: stage("model"), regions: stage("regions"), total: stage("total") },
    pageStages: Object.fromEntries(Object.keys(pageStages[0]).map((k) => [k, median(pageStages.map((s) => s[k]))])),
    wasmMemoryBytes: stats.wasmMemoryBytes,
  };
}

async function main() {
  const results = { userAgent: navigator.userAgent, crossOriginIsolated, hardwareConcurrency: navigator.hardwareConcurrency, runs: RUNS };
  if (params.get("only") === "photo") {
    // bench.html?only=photo: just the 12 MP photo on the CPU engine, for quick before/after timings
    // (&input=film: the 512 px film file instead; bench/read.mjs runs either)
    results.endToEnd = await endToEnd("cpu", RUNS, params.get("input") || "photo");
    window.__bench = results;
    out.textContent = JSON.stringify(results, null, 2);
    return;
  }
  if (params.get("only") === "model") {
    // bench.html?only=model: the model step alone (bench/model.mjs), 1 thread, then on all cores: this project's
    // single-thread build beside onnxruntime-web's threads, and with &threaded=64,256 the threaded experiment
    // (target/site/pkg-threads/, scripts/build-threads.sh) at each of those panel thresholds (tract's default 64)
    results.oneThread = await modelStep(1);
    const cores = navigator.hardwareConcurrency;
    if (crossOriginIsolated && cores > 1) {
      results.multiThread = await modelStep(cores);
      const thresholds = (params.get("threaded") || "").split(",").filter(Boolean).map(Number);
      results.threaded = [];
      for (const p of thresholds) results.threaded.push(await modelStep(cores, false, "pkg-threads", [p, p * 512]));
    }
    window.__bench = results;
    out.textContent = JSON.stringify(results, null, 2);
    return;
  }
  results.oneThread = await modelStep(1, true);
  // the other wasm build (SIMD128 only, what browsers without relaxed SIMD run), against onnxruntime-web again
  if (results.oneThread.build !== "pkg") results.oneThreadSimd128 = await modelStep(1, false, "pkg");
  if (crossOriginIsolated && navigator.hardwareConcurrency > 1) results.multiThread = await modelStep(navigator.hardwareConcurrency);
  results.endToEnd = await endToEnd();
  // the same photo with the WebGPU engine (where it starts and passes its self-check); 3 runs: on a machine
  // without a GPU this is SwiftShader, seconds per read
  results.endToEndWebGpu = "gpu" in navigator ? await endToEnd("webgpu", 3) : { error: "no navigator.gpu" };
  out.textContent = JSON.stringify(results, (k, v) => (Array.isArray(v) && v.length > 10 ? `[${v.length} values]` : v), 2);
  window.__bench = results;
}

main().catch((e) => {
  window.__bench = { error: String(e) };
  out.textContent = String(e);
});
