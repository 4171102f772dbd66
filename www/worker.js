// The reading worker: hosts the wasm module and the model, so the page never freezes.
// Protocol (all messages carry `id`): {type:"init", modelUrl, manifestUrl, backend, wasmBuild, showDownload,
// moduleFromPage} -> {type:"progress", stage:"downloading", fraction}* (the model's download; showDownload only)
// and {type:"ready", manifest, startup}. With moduleFromPage (a build name, "pkg" or "pkg-relaxed") the host
// compiles that build's wasm itself and posts {type:"module", module} (a WebAssembly.Module, or null
// when it could not compile it: the worker then fetches and compiles the wasm as it does without moduleFromPage).
// {type:"read", input, options} -> {type:"progress", stage}* then {type:"result", report, image, heatmap}
// {type:"backend"} -> {type:"backend", info, start, check, error} once the engine choice is made (WebGPU is
// started after "ready", in the background: self-check and timing against the CPU engine decide "auto").
// Errors come back as {type:"error", kind, message}. After a Rust panic (a wasm trap) the instance is not
// trusted again: the worker answers {type:"crash", message} and closes; the host starts a new one.

import "./wasm-build.js";

/** The wasm-bindgen glue of the build this worker runs, imported by `load` (no top-level await: the host's
 * first message must find the handler in place). */
let glue = null;

/** Photos larger than this on the long side are downscaled here, before they reach wasm memory. */
const MAX_READ_SIDE = 2048;
/**
 * How much of an encoded file `imageSize` sees. Headers sit within it (a JPEG's metadata segments are at most
 * 64 KiB each); a file whose size lies further in is decoded by the browser, or by Rust if the browser cannot.
 */
const HEADER_BYTES = 1 << 20;
/** Long side of the image handed back for display (the read's own image when it is no larger). */
const VIEW_SIDE = 2048;
/**
 * The heatmap layer is drawn by Rust at 1/HEAT_SCALE of the display image's size; the page's canvas scales
 * it up when drawing (the GPU where the browser has one). The map behind it is a 14×14 grid, so the smaller
 * layer loses nothing visible, at 1/16 of the per-pixel work in wasm (12 MP photo: 57 → ~8 ms). Scaling it
 * here instead would cost a canvas read-back of the full layer (~35 ms, headless Chromium).
 */
const HEAT_SCALE = 4;

let reader = null;
let wasm = null;
/**
 * The host's compiled module of init's `moduleFromPage` build, when the host said it would send one: resolves
 * to the "module" message's `module` once it arrives.
 */
let receiveModule = null;
const pageModule = new Promise((resolve) => {
  receiveModule = resolve;
});
/** Resolves to what the WebGPU start and self-check found (see `chooseBackend`). */
let backendChoice = Promise.resolve({ start: null, check: null, error: null });
let panicMessage = null;
globalThis.__xrayReaderPanic = (message) => {
  panicMessage = String(message);
};

const post = (msg, transfer = []) => self.postMessage(msg, transfer);

// A Rust panic inside an async read (a wasm trap in a promise task) is not thrown into any `await` here: it
// surfaces as an uncaught error. Same answer as for a synchronous trap: report the crash and close, so the
// host starts a fresh worker and no read waits forever.
function crashed(e, error) {
  if (error instanceof WebAssembly.RuntimeError || panicMessage) {
    e.preventDefault();
    post({ type: "crash", id: null, message: panicMessage || String(error && error.message) });
    self.close();
  }
}
self.addEventListener("error", (e) => crashed(e, e.error));
self.addEventListener("unhandledrejection", (e) => crashed(e, e.reason));

/**
 * A response whose headers take this long comes over a slow connection: its download will take seconds, so it
 * is worth counting. On a fast one the count is not shown and not made: reading a body chunk by chunk in
 * this worker instead of `arrayBuffer()` made the wasm ready ~50–150 ms later on loopback (3 interleaved runs).
 */
const SLOW_FIRST_BYTE_MS = 150;

/**
 * Fetch a file's bytes. With `onFraction`, over a slow connection (SLOW_FIRST_BYTE_MS), report how much of it
 * has arrived (0–1, at most every 250 ms and once at the end) while it downloads: the model on a start from
 * the network, so a slow connection shows a moving figure rather than a still "Loading…". The size comes from
 * the build's sizes.json (decoded sizes, what the body yields; looked up while the body streams in), or from
 * Content-Length when the response is not compressed; without either, nothing is reported. Only the model is
 * counted: teeing the wasm's response to count it slowed its streaming compile (wasm ready ~150 ms later on
 * loopback). The two download side by side and are of similar size (1.98 and 1.70 MB in Brotli), so the
 * model's share tracks the whole download.
 */
async function fetchBytes(url, onFraction = null) {
  const asked = performance.now();
  const res = await fetch(url);
  if (!res.ok) {
    throw Object.assign(new Error(`cannot load ${url}: HTTP ${res.status}`), { kind: "model_unavailable" });
  }
  const slow = performance.now() - asked >= SLOW_FIRST_BYTE_MS;
  if (!onFraction || !slow || !res.body) return new Uint8Array(await res.arrayBuffer());
  const base = new URL("./", import.meta.url).href;
  const length = Number(res.headers.get("Content-Length")) || 0;
  let size = !res.headers.get("Content-Encoding") && length > 0 ? length : 0;
  const sized = size || !res.url.startsWith(base)
    ? Promise.resolve()
    : fetch(new URL("./sizes.json", import.meta.url))
      .then((r) => (r.ok ? r.json() : {}))
      .then((table) => {
        const entry = table[res.url.slice(base.length)];
        if (entry && entry.raw > 0) size = entry.raw;
      })
      .catch(() => {});
  const chunks = [];
  let got = 0;
  let last = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    got += value.byteLength;
    if (size && performance.now() - last >= 250) {
      last = performance.now();
      onFraction(Math.min(1, got / size));
    }
  }
  await sized;
  if (size && last > 0) onFraction(Math.min(1, got / size));
  const bytes = new Uint8Array(got);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.byteLength;
  }
  return bytes;
}

/** Wall-clock time (ms since the epoch), comparable between the page and this worker. */
const now = () => performance.timeOrigin + performance.now();

/**
 * Start the WebGPU engine on the same model bytes and let its self-check choose what "auto" uses. Runs after
 * "ready"; reads meanwhile use the CPU. Any failure leaves the CPU engine in charge, with the reason.
 */
async function chooseBackend(onnx, preference) {
  const result = { start: null, check: null, error: null };
  if (preference === "cpu") return result;
  if (!("gpu" in navigator)) {
    result.error = { kind: "backend_unavailable", message: "this browser has no WebGPU" };
    return result;
  }
  try {
    if (preference === "auto") {
      // a software adapter (SwiftShader and the like) emulates a GPU on the CPU: it never beats the wasm
      // engine, and its self-check would keep the CPU busy for a minute
      const adapter = await navigator.gpu.requestAdapter();
      if (!adapter) throw Object.assign(new Error("the browser offers no WebGPU adapter"), { kind: "backend_unavailable" });
      const fallback = adapter.info ? adapter.info.isFallbackAdapter : adapter.isFallbackAdapter;
      if (fallback) throw Object.assign(new Error("only a software (fallback) WebGPU adapter is available"), { kind: "backend_unavailable" });
    }
    result.start = await reader.startWebGpu(onnx);
    result.check = await reader.gpuCheck(3);
    if (preference === "webgpu" && result.check.passed) reader.setBackend("webgpu");
  } catch (e) {
    result.error = { kind: e.kind || "internal", message: e.message || String(e) };
  }
  return result;
}

async function load(id, modelUrl, manifestUrl, backend, wasmBuild, showDownload, moduleFromPage) {
  // relaxed SIMD where the browser has it (wasm-build.js), unless the host asked for the SIMD128 build; should
  // the relaxed build fail to load all the same, the SIMD128 one is tried before giving up
  let build = globalThis.xrayWasmBuildFor(wasmBuild);
  // download progress only when the files come from the network (the host says so: no service worker in
  // charge); from the offline copy a start takes well under a second
  const onFraction = showDownload ? (fraction) => post({ type: "progress", id, stage: "downloading", fraction }) : null;
  // the .wasm is requested with its glue, not after it: the glue's round trip and evaluation no longer delay
  // the largest download of the start (one round trip less on a slow network); the glue compiles it as it
  // streams in
  const fetchWasm = (b) => {
    const wasmResponse = fetch(new URL(`./${b}/xray_reader_bg.wasm`, import.meta.url));
    wasmResponse.catch(() => {}); // a failed fetch is reported by the glue; if the glue itself fails, not twice
    return wasmResponse;
  };
  // The host page's module when it compiles this build (it does on starts served by its service worker: V8
  // reuses its cached machine code for a page's compile, not for this worker's, which on a repeat start saves
  // ~0.3 s; see BENCHMARKS.md). Without it, or when the page could not compile it, the worker fetches the wasm.
  const fromPage = moduleFromPage && moduleFromPage === build
    ? pageModule.then((module) => (module instanceof WebAssembly.Module ? module : null))
    : Promise.resolve(null);
  const importGlue = (b) => import(`./${b}/xray_reader.js`);
  const instantiate = (b, glueImport, source) => glueImport.then(async (g) => {
    const m = await g.default({ module_or_path: await source });
    [glue, build] = [g, b];
    return m;
  });
  // the glue loads while the page compiles
  const glueImport = importGlue(build);
  glueImport.catch(() => {}); // reported where it is awaited
  const started = now();
  post({ type: "progress", id, stage: "loading_model" });
  // compile the wasm while the model downloads
  const marks = {};
  const [module, onnx, manifest] = await Promise.all([
    fromPage
      .then((compiled) => {
        marks.wasmCompiledBy = compiled ? "page" : "worker";
        const own = () => instantiate(build, glueImport, fetchWasm(build));
        if (!compiled) return own();
        // a module that does not fit this glue (the page compiled it before the app was updated): fetch our own
        return instantiate(build, glueImport, compiled).catch(() => ((marks.wasmCompiledBy = "worker"), own()));
      })
      .catch((e) => {
        if (build !== "pkg-relaxed") throw e;
        marks.wasmCompiledBy = "worker";
        return instantiate("pkg", importGlue("pkg"), fetchWasm("pkg"));
      })
      .then((m) => ((marks.wasmReady = now()), m)),
    fetchBytes(modelUrl, onFraction).then((b) => ((marks.modelFetched = now()), b)),
    fetchBytes(manifestUrl),
  ]);
  wasm = module;
  post({ type: "progress", id, stage: "preparing_model" });
  // the model's sha256 by WebCrypto (native code) where the page is a secure context; Rust compares it with
  // the manifest before parsing the model, and computes it itself when WebCrypto is absent (plain http)
  let sha256;
  if (globalThis.crypto && crypto.subtle) {
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", onnx));
    sha256 = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  reader = glue.Reader.fromBytes(onnx, manifest, sha256);
  // start-up diagnostics (epoch ms, and where the model load went) for benchmarks
  const startup = { workerStarted: started, ...marks, ready: now(), load: reader.loadTimings(), wasmBuild: build };
  post({ type: "ready", id, manifest: reader.manifest(), startup });
  backendChoice = chooseBackend(onnx, backend);
}

function scaledSize(w, h, max) {
  const s = Math.min(1, max / Math.max(w, h));
  return [Math.max(1, Math.round(w * s)), Math.max(1, Math.round(h * s))];
}

/**
 * Downscale to w×h and read the pixels: halve with plain bilinear sampling until within 2× of the target,
 * then one last bilinear step. Each step averages about 2×2 pixels, like a box pyramid, at well under the
 * cost of the "high" smoothing setting (measured in headless Chromium: 12 MP → 2048 px draw + read
 * 92 → 40 ms, median of 9).
 */
function pixelsOf(source, w, h) {
  let src = source, sw = source.width, sh = source.height;
  while (sw > 2 * w || sh > 2 * h) {
    const [nw, nh] = [Math.ceil(sw / 2), Math.ceil(sh / 2)];
    const half = new OffscreenCanvas(nw, nh);
    const g = half.getContext("2d");
    g.imageSmoothingQuality = "low";
    g.drawImage(src, 0, 0, nw, nh);
    [src, sw, sh] = [half, nw, nh];
  }
  const canvas = new OffscreenCanvas(w, h);
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.imageSmoothingQuality = "low";
  ctx.drawImage(src, 0, 0, w, h);
  return ctx.getImageData(0, 0, w, h);
}

/** Downscale a decoded picture in the browser and read it; the report keeps the original's pixels. */
function readScaled(id, source, options, stages) {
  const [w, h] = scaledSize(source.width, source.height, MAX_READ_SIDE);
  const t = performance.now();
  const small = pixelsOf(source, w, h);
  stages.downscale = performance.now() - t;
  post({ type: "progress", id, stage: "reading" });
  return reader.readPixelsAsync(new Uint8Array(small.data.buffer), w, h, source.width, source.height, options);
}

/**
 * Read one input. Encoded images that Rust can decode and that are small enough go to Rust as they are (the
 * header says so, `imageSize`: no second decode); big photos are decoded and downscaled by the browser, and so
 * are formats only the browser decodes (AVIF, and HEIC where the browser has it). `stages` gets the worker's
 * own times (ms): `decode` (the browser's), `downscale`.
 */
async function readInput(id, input, options, stages) {
  post({ type: "progress", id, stage: "decoding" });
  let bitmap = null;
  let rustDecodes = false;
  const t = performance.now();
  if (input.kind === "pixels") {
    const { width, height, data } = input;
    if (Math.max(width, height) <= MAX_READ_SIDE) {
      post({ type: "progress", id, stage: "reading" });
      return reader.readPixelsAsync(new Uint8Array(data), width, height, 0, 0, options);
    }
    bitmap = await createImageBitmap(new ImageData(new Uint8ClampedArray(data), width, height));
  } else {
    // only the file's start crosses into wasm: a phone photo's megabytes are not copied to read its header
    const declared = glue.imageSize(new Uint8Array(input.bytes, 0, Math.min(input.bytes.byteLength, HEADER_BYTES)));
    rustDecodes = !!declared;
    if (declared && Math.max(...declared) <= MAX_READ_SIDE) {
      post({ type: "progress", id, stage: "reading" });
      return reader.readAsync(new Uint8Array(input.bytes), options);
    }
    try {
      bitmap = await createImageBitmap(new Blob([input.bytes]), { imageOrientation: "from-image" });
    } catch {
      bitmap = null; // not decodable by the browser (TIFF, damaged file): Rust decodes it or says why not
    }
  }
  stages.decode = performance.now() - t;
  try {
    if (bitmap && (Math.max(bitmap.width, bitmap.height) > MAX_READ_SIDE || !rustDecodes)) {
      return readScaled(id, bitmap, options, stages);
    }
  } finally {
    if (bitmap) bitmap.close();
  }
  post({ type: "progress", id, stage: "reading" });
  return reader.readAsync(new Uint8Array(input.bytes), options);
}

function picture(p) {
  if (!p) return null;
  const { width, height } = p;
  return { width, height, rgba: p.intoRgba().buffer };
}

/** The last read's heatmap layer over `image`, at 1/HEAT_SCALE of its size (null when nothing is positive). */
function heatLayer(image) {
  return image && picture(reader.lastHeatmap(Math.ceil(Math.max(image.width, image.height) / HEAT_SCALE)));
}

self.onmessage = async (event) => {
  const { id, type } = event.data;
  try {
    if (type === "init") {
      const { modelUrl, manifestUrl, wasmBuild, showDownload, moduleFromPage } = event.data;
      await load(id, modelUrl, manifestUrl, event.data.backend || "auto", wasmBuild, !!showDownload, moduleFromPage || null);
    } else if (type === "module") {
      receiveModule(event.data.module);
    } else if (type === "read") {
      if (!reader) throw Object.assign(new Error("the model is not loaded"), { kind: "not_ready" });
      // the worker's stages (ms), next to the report's own `timings_ms` for what ran in wasm
      const stages = { decode: 0, downscale: 0 };
      const t0 = performance.now();
      const report = await readInput(id, event.data.input, event.data.options || {}, stages);
      const t1 = performance.now();
      const image = picture(reader.lastImage(VIEW_SIDE));
      const t2 = performance.now();
      const heatmap = heatLayer(image);
      const t3 = performance.now();
      Object.assign(stages, { read: t1 - t0 - stages.decode - stages.downscale, image: t2 - t1, heatmap: t3 - t2, worker: t3 - t0 });
      const transfer = [image, heatmap].filter(Boolean).map((p) => p.rgba);
      post({ type: "result", id, report, image, heatmap, stages }, transfer);
    } else if (type === "stats") {
      post({ type: "stats", id, wasmMemoryBytes: wasm ? wasm.memory.buffer.byteLength : 0 });
    } else if (type === "backend") {
      const choice = await backendChoice;
      post({ type: "backend", id, info: reader ? reader.backendInfo() : null, ...choice });
    } else if (type === "clear") {
      if (reader) reader.clearLast();
      post({ type: "cleared", id });
    } else if (type === "loseGpu") {
      // test hook: the GPU device goes away, as after a driver reset
      post({ type: "lostGpu", id, lost: reader.__loseWebGpuForTest() });
    } else if (type === "panic") {
      // test hook: prove that the host survives a Rust panic
      const { __panicForTest, __panicAsyncForTest } = glue;
      if (event.data.async) await __panicAsyncForTest();
      else __panicForTest();
    }
  } catch (e) {
    if (e instanceof WebAssembly.RuntimeError) {
      post({ type: "crash", id, message: panicMessage || e.message });
      self.close();
      return;
    }
    post({ type: "error", id, kind: e.kind || "internal", message: e.message || String(e) });
  }
};
