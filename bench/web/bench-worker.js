// One worker, both engines, same model bytes and input; runs interleaved (alternating which goes first).
import "../wasm-build.js";
import * as ort from "./ort/ort.wasm.min.mjs";

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

self.onmessage = async (event) => {
  const { threads, runs, warmup, webgpu } = event.data;
  // the page's choice of wasm build (relaxed SIMD where the browser has it) unless told which
  const build = event.data.build || globalThis.xrayWasmBuild;
  try {
    const glue = await import(`../${build}/xray_reader.js`);
    const { default: init, Reader } = glue;
    const bytes = async (u) => new Uint8Array(await (await fetch(new URL(u, import.meta.url))).arrayBuffer());
    const [onnx, manifest] = await Promise.all([bytes("../models/xray-reader.onnx"), bytes("../models/xray-reader.manifest.json")]);

    let t = performance.now();
    const wasm = await init({ module_or_path: new URL(`../${build}/xray_reader_bg.wasm`, import.meta.url) });
    const wasmInit = performance.now() - t;
    // the threaded experiment (scripts/build-threads.sh): a pool of `threads` workers, optionally with tract's
    // thresholds for splitting an op ([matrix panels, elements])
    let tractThreads = 1, threadPoolStart = null;
    if (glue.initThreadPool && threads > 1) {
      t = performance.now();
      await glue.initThreadPool(threads);
      tractThreads = glue.useThreadPool();
      threadPoolStart = performance.now() - t;
      if (event.data.thresholds) glue.__setThreadingThresholds(...event.data.thresholds);
    }
    t = performance.now();
    const reader = Reader.fromBytes(onnx, manifest);
    const tractLoad = performance.now() - t;
    const loadTimings = reader.loadTimings();

    ort.env.wasm.numThreads = threads;
    ort.env.wasm.wasmPaths = new URL("./ort/", import.meta.url).href;
    t = performance.now();
    const session = await ort.InferenceSession.create(onnx, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
    const ortLoad = performance.now() - t;

    const side = 224;
    const input = new Float32Array(side * side);
    for (let y = 0; y < side; y++) for (let x = 0; x < side; x++) input[y * side + x] = 0.5 + 0.4 * Math.sin(x / 17) * Math.cos(y / 23);
    const feeds = { [session.inputNames[0]]: new ort.Tensor("float32", input, [1, 1, side, side]) };

    const tractRun = () => {
      const a = performance.now();
      const [, p] = reader.modelStep(input);
      return [performance.now() - a, p];
    };
    const ortRun = async () => {
      const a = performance.now();
      const out = await session.run(feeds);
      const ms = performance.now() - a;
      return [ms, out.probabilities.data[0]];
    };
    for (let i = 0; i < warmup; i++) {
      tractRun();
      await ortRun();
    }
    const tract = [], onnxruntime = [];
    let pTract = NaN, pOrt = NaN;
    for (let i = 0; i < runs; i++) {
      if (i % 2 === 0) {
        const a = tractRun(); tract.push(a[0]); pTract = a[1];
        const b = await ortRun(); onnxruntime.push(b[0]); pOrt = b[1];
      } else {
        const b = await ortRun(); onnxruntime.push(b[0]); pOrt = b[1];
        const a = tractRun(); tract.push(a[0]); pTract = a[1];
      }
    }
    // where tract's time goes, op kind by op kind (after the timed runs, so it cannot disturb them)
    const profile = reader.modelProfile(input, 10);
    // the WebGPU engine on the same model and input, interleaved with the CPU engine (a separate block so
    // that it cannot disturb the tract/onnxruntime numbers above)
    let gpu = null;
    if (webgpu) {
      try {
        t = performance.now();
        const start = await reader.startWebGpu(onnx);
        const gpuLoad = performance.now() - t;
        const gpuRun = async () => reader.modelStepWebGpu(input);
        // a fallback adapter (SwiftShader) takes seconds per run: a few runs say enough
        const gpuRuns = start.fallbackAdapter ? Math.min(3, runs) : runs;
        for (let i = 0; i < (start.fallbackAdapter ? 1 : warmup); i++) await gpuRun();
        const times = [], cpu = [];
        let pGpu = NaN;
        for (let i = 0; i < gpuRuns; i++) {
          const [ms, p] = await gpuRun();
          times.push(ms);
          pGpu = p;
          cpu.push(tractRun()[0]);
        }
        gpu = { ...start, gpuLoad, pGpu, median: median(times), cpuMedian: median(cpu), times };
      } catch (e) {
        gpu = { error: `${e.kind || e.name}: ${e.message}` };
      }
    }
    self.postMessage({
      build, threads, tractThreads, threadPoolStart, thresholds: event.data.thresholds || null, runs, wasmInit, tractLoad, loadTimings, ortLoad, pTract, pOrt,
      tractMedian: median(tract), ortMedian: median(onnxruntime), tract, onnxruntime,
      tractWasmMemory: wasm.memory.buffer.byteLength, webgpu: gpu, profile,
    });
  } catch (e) {
    self.postMessage({ error: `${e.name}: ${e.message}` });
  }
};
