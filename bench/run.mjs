// Browser benchmark: `./scripts/bench.sh` (builds target/site, then runs this). One headless Chromium run on
// this machine: cold start, model step vs onnxruntime-web (interleaved), 12 MP photo -> report, memory,
// first-load transfer. Prints a Markdown table for BENCHMARKS.md and writes target/bench/results.json.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import { launch, startServer } from "../tests/e2e/harness.mjs";
import { brotliOptions } from "../scripts/compress.mjs";
import { ROOT, ortFiles, stageBenchSite } from "./site.mjs";

const OUT = path.join(ROOT, "target/bench");
const RUNS = Number(process.env.RUNS || 30);
const SITE = stageBenchSite({ extra: ortFiles() });
fs.mkdirSync(OUT, { recursive: true });

const gz = (p) => zlib.gzipSync(fs.readFileSync(p), { level: 9 }).length;
// Brotli as scripts/compress.mjs writes it for this project's files
const br = (p) => {
  const data = fs.readFileSync(p);
  return zlib.brotliCompressSync(data, brotliOptions(data)).length;
};
const server = await startServer(SITE);
// --enable-unsafe-webgpu: WebGPU where Chromium has it; without a GPU that is SwiftShader (CPU emulation)
const browser = await launch(["--enable-unsafe-webgpu"]);

const coldPhases = [];
async function coldStart(context) {
  const page = await context.newPage();
  await page.goto(server.url);
  await page.waitForFunction(() => document.querySelector("xray-reader").readyAt > 0, null, { timeout: 120000 });
  const ms = await page.evaluate(() => document.querySelector("xray-reader").readyAt);
  // where the time went, relative to navigation start
  const phases = await page.evaluate(() => {
    const s = document.querySelector("xray-reader").reader.startup;
    const at = (t) => t - performance.timeOrigin;
    return { workerStarted: at(s.workerStarted), wasmReady: at(s.wasmReady), modelFetched: at(s.modelFetched), ready: at(s.ready), load: s.load };
  });
  coldPhases.push(phases);
  await page.waitForFunction(() => document.documentElement.dataset.offlineReady === "true", null, { timeout: 120000 });
  await page.close();
  return ms;
}

const context = await browser.newContext();
const first = await coldStart(context);
const repeat = [];
for (let i = 0; i < 3; i++) repeat.push(await coldStart(context));

const page = await context.newPage();
page.on("console", (m) => m.type() === "error" && console.error("page:", m.text()));
await page.goto(new URL(`bench/bench.html?runs=${RUNS}`, server.url).href);
await page.waitForFunction(() => window.__bench, null, { timeout: 900000 });
const bench = await page.evaluate(() => window.__bench);
await browser.close();
server.stop();
if (bench.error || bench.oneThread.error) throw new Error(JSON.stringify(bench));

const sizes = JSON.parse(fs.readFileSync(path.join(ROOT, "target/site/sizes.json"), "utf8"));
const ortGzip = ortFiles().reduce((a, [f]) => a + gz(f), 0);
const modelGzip = sizes["models/xray-reader.onnx"].gzip;
const ortBr = ortFiles().reduce((a, [f]) => a + br(f), 0);
const modelBr = sizes["models/xray-reader.onnx"].br;
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const results = {
  date: new Date().toISOString(),
  machine: `${os.cpus()[0].model}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB`,
  browser: bench.userAgent,
  runs: RUNS,
  coldStartMs: { firstVisit: first, repeatVisitMedian: median(repeat), repeat, phases: coldPhases },
  bench,
  firstLoadGzip: { xrayReader: sizes.total_gzip, onnxruntimeWebRuntimePlusModel: ortGzip + modelGzip, ortRuntimeOnly: ortGzip },
  firstLoadBrotli: { xrayReader: sizes.total_br, onnxruntimeWebRuntimePlusModel: ortBr + modelBr, ortRuntimeOnly: ortBr },
};
fs.writeFileSync(path.join(OUT, "results.json"), JSON.stringify(results, null, 2));

const f = (x) => (typeof x === "number" ? x.toFixed(1) : String(x));
const mb = (b) => (b / 1e6).toFixed(2);
const rows = [
  [`model step, 1 thread: this project (tract, wasm build ${bench.oneThread.build})`, `${f(bench.oneThread.tractMedian)} ms`],
  ["model step, 1 thread: onnxruntime-web (wasm)", `${f(bench.oneThread.ortMedian)} ms`],
  ["ratio tract / onnxruntime-web, 1 thread (target ≤ 0.8)", (bench.oneThread.tractMedian / bench.oneThread.ortMedian).toFixed(2)],
];
const s128 = bench.oneThreadSimd128;
if (s128 && !s128.error) {
  rows.push([`  the SIMD128-only build (pkg): tract / onnxruntime-web in its own interleaved runs / ratio`,
    `${f(s128.tractMedian)} / ${f(s128.ortMedian)} ms / ${(s128.tractMedian / s128.ortMedian).toFixed(2)}`]);
} else if (s128) {
  rows.push(["  the SIMD128-only build (pkg)", `not measured: ${s128.error}`]);
}
if (bench.multiThread && !bench.multiThread.error) {
  rows.push([`model step, ${bench.multiThread.threads} threads: onnxruntime-web`, `${f(bench.multiThread.ortMedian)} ms`]);
  rows.push([`model step, same worker: this project (1 thread)`, `${f(bench.multiThread.tractMedian)} ms`]);
}
const g = bench.oneThread.webgpu;
if (g && !g.error) {
  const kind = g.fallbackAdapter ? "fallback adapter (SwiftShader CPU emulation: not a GPU speed)" : g.adapter || "adapter";
  rows.push([`model step, WebGPU (${kind}), incl. upload + readback`, `${f(g.median)} ms`]);
  rows.push(["  CPU engine in the same interleaved runs / speed-up (issue 5 target ≥ 3×)", `${f(g.cpuMedian)} ms / ${(g.cpuMedian / g.median).toFixed(2)}×`]);
  rows.push(["  WebGPU start (lower, upload, pipelines) / probability vs tract", `${f(g.gpuLoad)} ms / ${g.pGpu.toFixed(5)} vs ${bench.oneThread.pTract.toFixed(5)}`]);
} else {
  rows.push(["model step, WebGPU", `not measured: ${g ? g.error : "not run"}`]);
}
rows.push(
  ["model load + optimise: tract / onnxruntime-web", `${f(bench.oneThread.tractLoad)} / ${f(bench.oneThread.ortLoad)} ms`],
  ["  of which (tract): manifest / checksum / parse / fold int8 / graph / optimise", ["manifest", "checksum", "parse", "fold", "graph", "optimise"].map((k) => f(bench.oneThread.loadTimings[k])).join(" / ") + " ms"],
  ["wasm compile + instantiate (this project, fetched bytes)", `${f(bench.oneThread.wasmInit)} ms`],
  ["first-class probability on the same input: tract / onnxruntime-web", `${bench.oneThread.pTract.toFixed(5)} / ${bench.oneThread.pOrt.toFixed(5)}`],
  ["cold start, first visit (navigation → ready, loopback server) (target ≤ 1 s)", `${f(first)} ms`],
  ["cold start, repeat visit (service worker cache)", `${f(median(repeat))} ms`],
  ["  first visit, ms after navigation: worker started / wasm ready / model fetched / reader ready", ["workerStarted", "wasmReady", "modelFetched", "ready"].map((k) => f(coldPhases[0][k])).join(" / ")],
  ["  last repeat visit: worker started / wasm ready / model fetched / reader ready", ["workerStarted", "wasmReady", "modelFetched", "ready"].map((k) => f(coldPhases.at(-1)[k])).join(" / ")],
  ["12 MP JPEG → report, wall, median of 7 (target ≤ 400 ms)", `${f(bench.endToEnd.wallMedian)} ms`],
  ["  of which in wasm: film / preprocess / model / regions / total", ["film", "preprocess", "model", "regions", "total"].map((k) => f(bench.endToEnd.wasmStages[k])).join(" / ") + " ms"],
  ["  page stages: input read / browser decode / downscale / wasm read / display image / heatmap layer / worker / total", ["payload", "decode", "downscale", "read", "image", "heatmap", "worker", "total"].map((k) => f(bench.endToEnd.pageStages[k])).join(" / ") + " ms"],
  ...(bench.endToEndWebGpu && !bench.endToEndWebGpu.error
    ? [["12 MP JPEG → report with backend webgpu, wall, median of 3", `${f(bench.endToEndWebGpu.wallMedian)} ms (engine ${bench.endToEndWebGpu.engine})`],
       ["  of which in wasm: film / preprocess / model (WebGPU) / regions / total", ["film", "preprocess", "model", "regions", "total"].map((k) => f(bench.endToEndWebGpu.wasmStages[k])).join(" / ") + " ms"]]
    : [["12 MP JPEG → report with backend webgpu", `not measured: ${bench.endToEndWebGpu ? bench.endToEndWebGpu.error : "not run"}`]]),
  ["reader wasm memory after the runs", `${mb(bench.endToEnd.wasmMemoryBytes)} MB`],
  ["first load, gzip: this project (wasm + model + JS + CSS) (target ≤ 5 MB)", `${mb(sizes.total_gzip)} MB`],
  ["first load, gzip: onnxruntime-web runtime + the same model", `${mb(ortGzip + modelGzip)} MB`],
  ["first load, Brotli (what browsers download from xray-reader-serve): this project / onnxruntime-web + the same model", `${mb(sizes.total_br)} / ${mb(ortBr + modelBr)} MB`],
);
console.log(`\n${results.machine}; ${bench.userAgent.match(/Chrome\/[\d.]+/)?.[0] || bench.userAgent}; ${RUNS} interleaved runs\n`);
console.log("| measure | value |\n|---|---|");
for (const [k, v] of rows) console.log(`| ${k} | ${v} |`);
const prof = bench.oneThread.profile || [];
const profTotal = prof.reduce((a, r) => a + r.ms, 0);
console.log(`\nCPU engine (tract, wasm), where one model step goes: ${f(profTotal)} ms timed op by op (median of 10 per row; timing each op adds overhead), slowest kinds first\n`);
console.log("| op, output shape | nodes | ms | share |\n|---|---|---|---|");
for (const r of prof.slice(0, 15)) console.log(`| ${r.op} | ${r.nodes} | ${r.ms.toFixed(2)} | ${(100 * r.ms / profTotal).toFixed(1)} % |`);
const byKind = {};
for (const r of prof) { const k = r.op.split(" ")[0]; byKind[k] = (byKind[k] || 0) + r.ms; }
console.log(`\nby op kind: ${Object.entries(byKind).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${f(v)} ms (${(100 * v / profTotal).toFixed(0)} %)`).join(", ")}`);
console.log(`\nfull results: ${path.relative(ROOT, path.join(OUT, "results.json"))}`);
