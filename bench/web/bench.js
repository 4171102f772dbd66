// The benchmark page: model step (tract vs onnxruntime-web, 1 thread and, when cross-origin isolated,
// multi-thread), then 12 MP photo -> report through the public API. Results land in window.__bench.
import { createReader } from "../xray-reader.js";

const params = new URLSearchParams(location.search);
const RUNS = Number(params.get("runs") || 30);
const out = document.getElementById("out");
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

function modelStep(threads, webgpu = false) {
  return new Promise((resolve) => {
    const w = new Worker(new URL("bench-worker.js", import.meta.url), { type: "module" });
    w.onmessage = (e) => {
      w.terminate();
      resolve(e.data);
    };
    w.onerror = (e) => resolve({ error: e.message });
    w.postMessage({ threads, runs: RUNS, warmup: 3, webgpu });
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

async function endToEnd() {
  const t0 = performance.now();
  // the CPU engine only: "auto" would start WebGPU and its self-check in the background during the timing
  const reader = await createReader({ backend: "cpu" });
  const ready = performance.now() - t0;
  const blob = await photo12mp();
  const walls = [], stages = [];
  for (let i = 0; i < 7; i++) {
    const a = performance.now();
    const { report } = await reader.readWithView(blob);
    walls.push(performance.now() - a);
    stages.push(report.timings_ms);
  }
  const stats = await reader.stats();
  reader.close();
  const stage = (k) => median(stages.map((s) => s[k]));
  return {
    photoBytes: blob.size, readerReadyMs: ready, wallMedian: median(walls), walls,
    wasmStages: { decode: stage("decode"), film: stage("film"), preprocess: stage("preprocess"), model: stage("model"), regions: stage("regions"), total: stage("total") },
    wasmMemoryBytes: stats.wasmMemoryBytes,
  };
}

async function main() {
  const results = { userAgent: navigator.userAgent, crossOriginIsolated, hardwareConcurrency: navigator.hardwareConcurrency, runs: RUNS };
  results.oneThread = await modelStep(1, true);
  if (crossOriginIsolated && navigator.hardwareConcurrency > 1) results.multiThread = await modelStep(navigator.hardwareConcurrency);
  results.endToEnd = await endToEnd();
  out.textContent = JSON.stringify(results, (k, v) => (Array.isArray(v) && v.length > 10 ? `[${v.length} values]` : v), 2);
  window.__bench = results;
}

main().catch((e) => {
  window.__bench = { error: String(e) };
  out.textContent = String(e);
});
