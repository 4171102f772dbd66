// xray-reader: the embeddable API and the <xray-reader> element.
//
//   import { createReader } from "/xray-reader.js";
//   const reader = await createReader();                   // bundled model, served from this origin
//   const report = await reader.read(fileOrBlob, { backend: "auto" });
//
// `report` is the same object the CLI prints as JSON (schema_version 1). Everything runs in a Web Worker on
// this device; no image or result is sent anywhere. A decision aid, not a diagnosis.

import "./wasm-build.js";

const HERE = new URL(".", import.meta.url);
const DEFAULT_MODEL = new URL("models/xray-reader.onnx", HERE).href;
const DEFAULT_MANIFEST = new URL("models/xray-reader.manifest.json", HERE).href;
const BACKENDS = ["auto", "cpu", "webgpu"];

/** An error thrown by the reader: `kind` is the stable machine-readable name (see the README). */
export class XrayReaderError extends Error {
  constructor(kind, message) {
    super(message);
    this.name = "XrayReaderError";
    this.kind = kind;
  }
}

/**
 * Start the reader. options: { modelUrl, manifestUrl, backend: "auto"|"cpu"|"webgpu", onProgress(stage, detail),
 * wasmBuild: "auto"|"simd128" } (wasmBuild: "auto" runs the relaxed-SIMD build where the browser has relaxed
 * SIMD; "simd128" always runs the SIMD128 one). onProgress gets stage "downloading" with detail { fraction }
 * (0–1 of the model's bytes) while the model comes over a slow connection: no service worker serves the page
 * and the model's first byte took ≥ 150 ms (worker.js, SLOW_FIRST_BYTE_MS).
 * Resolves once the model is loaded and verified against its manifest checksum.
 */
export async function createReader(options = {}) {
  const reader = new Reader(options);
  await reader._start();
  return reader;
}

/**
 * The wasm builds this page has compiled (build name → promise of a WebAssembly.Module, or of null when it
 * could not), kept for the page's lifetime: a reader restarted after a crash, or a second reader, instantiates
 * the same module without compiling it again.
 */
const compiledOnPage = new Map();

/**
 * Compile a wasm build here rather than in the reading worker, on repeat starts (see `_start`): V8 reuses the
 * machine code it cached for a page's `compileStreaming` of a cached response, and not for a worker's, so a
 * repeat start is ready ~0.2–0.4 s sooner (BENCHMARKS.md, session 24). A first visit gains
 * nothing from it and would start its worker later, so there the worker compiles, and the page compiles in the
 * background once the reader is ready (`prepareNextStart`). Null when the page cannot compile
 * (no `compileStreaming`, a Content-Security-Policy without 'wasm-unsafe-eval', a server that sends the wasm
 * with another MIME type): the worker then fetches and compiles it itself.
 */
function compileOnPage(build) {
  if (!compiledOnPage.has(build)) {
    const compiling = typeof WebAssembly.compileStreaming === "function"
      ? WebAssembly.compileStreaming(fetch(new URL(`${build}/xray_reader_bg.wasm`, HERE))).catch(() => null)
      : Promise.resolve(null);
    compiledOnPage.set(build, compiling);
  }
  return compiledOnPage.get(build);
}

/** Set in localStorage once this origin has started the reader: its wasm is then likely in the HTTP cache. */
const STARTED_KEY = "xray-reader.started-build";

function startedBefore(build) {
  try {
    return localStorage.getItem(STARTED_KEY) === build;
  } catch {
    return false; // no storage (a sandboxed frame, storage blocked): the worker compiles, as on a first visit
  }
}

/** Builds that `prepareNextStart` has armed a recompile for (a service worker taking charge of the page). */
const awaitingOfflineCopy = new Set();

/**
 * After a start compiled by the worker (a first visit), prepare the next start's compile on the page, in the
 * background, once the reader is ready:
 * - compile the build here now, from the HTTP cache, so that V8 caches its machine code for the next start
 *   (and a worker restarted after a crash needs no compile);
 * - where that compile succeeds, remember that this origin started the reader, so the next start compiles on
 *   the page even without a service worker (a host page without one: repeat starts 0.77 → 0.6 s,
 *   BENCHMARKS.md session 24);
 * - once a service worker takes charge (the app's offline copy is installed and claims the page), compile it
 *   again from that copy, which is what a start served by the service worker compiles from (without this step
 *   the first reload of the app took the slow path, graph step ~150 ms, and only the second was fast).
 */
function prepareNextStart(build) {
  compileOnPage(build).then((module) => {
    // only where the page can compile: a page that cannot (its CSP) would fetch the wasm twice on each start
    if (!module) return;
    try {
      localStorage.setItem(STARTED_KEY, build);
    } catch {
      /* no storage: the next start without a service worker compiles in the worker */
    }
  });
  if (!navigator.serviceWorker || awaitingOfflineCopy.has(build)) return;
  awaitingOfflineCopy.add(build);
  navigator.serviceWorker.addEventListener("controllerchange", () => {
    compiledOnPage.delete(build);
    compileOnPage(build);
  }, { once: true });
}

class Reader {
  constructor({ modelUrl = DEFAULT_MODEL, manifestUrl = DEFAULT_MANIFEST, backend = "auto", onProgress, wasmBuild = "auto" } = {}) {
    if (!BACKENDS.includes(backend)) {
      throw new XrayReaderError("invalid_options", `unknown backend ${JSON.stringify(backend)} (use auto, cpu or webgpu)`);
    }
    if (!["auto", "simd128"].includes(wasmBuild)) {
      throw new XrayReaderError("invalid_options", `unknown wasmBuild ${JSON.stringify(wasmBuild)} (use auto or simd128)`);
    }
    this.wasmBuild = wasmBuild;
    this.modelUrl = new URL(modelUrl, location.href).href;
    this.manifestUrl = new URL(manifestUrl, location.href).href;
    this.backend = backend;
    this.onProgress = onProgress || (() => {});
    this.manifest = null;
    this._worker = null;
    this._pending = new Map();
    this._nextId = 1;
    this._queue = Promise.resolve();
    this.restarts = 0;
  }

  /**
   * The engine a read with backend "auto" uses now: "cpu" (wasm SIMD) until the WebGPU engine has started
   * and passed its self-check faster than the CPU (see `backendInfo`).
   */
  get engine() {
    return this._backend && this._backend.info ? this._backend.info.engine : "cpu";
  }

  /**
   * Waits for the engine choice made after start-up, then resolves to { info: { engine, webgpu, note },
   * start: { adapter, fallbackAdapter, loadMs } | null, check: { passed, maxDifference, camCorrelation,
   * cpuMs, webgpuMs, chosen } | null, error: { kind, message } | null }.
   */
  backendInfo() {
    return this._serial(async () => {
      await this._ensureWorker();
      const { info, start, check, error } = await this._call({ type: "backend" });
      this._backend = { info, start, check, error };
      return this._backend;
    });
  }

  async _start() {
    this._worker = new Worker(new URL("worker.js", HERE), { type: "module", name: "xray-reader" });
    this._worker.onmessage = (e) => this._onMessage(e.data);
    this._worker.onerror = (e) => this._fail(new XrayReaderError("internal", `the reading worker failed: ${e.message || "unknown error"}`));
    // download progress when the files come from the network: no service worker serves this page (a first
    // visit of the app, or a host page without one)
    const showDownload = !(navigator.serviceWorker && navigator.serviceWorker.controller);
    // the build the worker will run (its own choice, wasm-build.js), compiled here on a repeat start: served by
    // a service worker, started on this origin before, or compiled here already for an earlier worker
    const build = globalThis.xrayWasmBuildFor(this.wasmBuild);
    const moduleFromPage = !showDownload || compiledOnPage.has(build) || startedBefore(build) ? build : null;
    const started = this._call({
      type: "init", modelUrl: this.modelUrl, manifestUrl: this.manifestUrl, backend: this.backend, wasmBuild: this.wasmBuild,
      showDownload, moduleFromPage,
    });
    if (moduleFromPage) {
      const worker = this._worker;
      compileOnPage(build).then((module) => {
        try {
          worker.postMessage({ type: "module", module });
        } catch {
          worker.postMessage({ type: "module", module: null }); // a browser that cannot send a Module
        }
      });
    }
    const ready = await started;
    if (!moduleFromPage) prepareNextStart(build);
    this.manifest = ready.manifest;
    /** Start-up diagnostics from the worker (epoch ms marks and the model-load breakdown); not a stable API. */
    this.startup = ready.startup;
  }

  _onMessage(msg) {
    const pending = this._pending.get(msg.id);
    if (msg.type === "progress") {
      const detail = msg.fraction === undefined ? undefined : { fraction: msg.fraction };
      this.onProgress(msg.stage, detail);
      if (pending && pending.onProgress) pending.onProgress(msg.stage, detail);
      return;
    }
    if (msg.type === "crash") {
      // A Rust panic trapped the wasm instance: drop this worker; the next call starts a fresh one.
      this._worker.terminate();
      this._worker = null;
      this.restarts += 1;
      this._fail(new XrayReaderError("internal", `internal error, the reader restarted: ${msg.message}`));
      return;
    }
    if (!pending) return;
    this._pending.delete(msg.id);
    if (msg.type === "error") pending.reject(new XrayReaderError(msg.kind, msg.message));
    else pending.resolve(msg);
  }

  _fail(err) {
    for (const p of this._pending.values()) p.reject(err);
    this._pending.clear();
  }

  _call(msg, transfer = [], onProgress = null) {
    const id = this._nextId++;
    return new Promise((resolve, reject) => {
      this._pending.set(id, { resolve, reject, onProgress });
      this._worker.postMessage({ ...msg, id }, transfer);
    });
  }

  /** One read at a time, in call order. */
  _serial(fn) {
    const run = this._queue.then(fn, fn);
    this._queue = run.catch(() => {});
    return run;
  }

  async _ensureWorker() {
    if (!this._worker) await this._start();
  }

  /**
   * Read a Blob/File, ArrayBuffer, typed array or ImageData. options: { corners: [[x,y]×4] in the input's
   * pixels, noRotate, name, backend }. Resolves to the Report; rejects with an XrayReaderError.
   */
  async read(input, options = {}) {
    return (await this.readWithView(input, options)).report;
  }

  /**
   * Like `read`, and also returns `image` (the input as read, upright, ImageData, long side ≤ 2048) and
   * `heatmap` (ImageData layer over the same picture at a quarter of its resolution, or null when nothing
   * is positive) for drawing overlays: the map behind it is coarse, so draw it scaled up to the image, e.g.
   * `ctx.drawImage(await createImageBitmap(heatmap), 0, 0, image.width, image.height)`, and let the canvas
   * (the GPU, where there is one) do the upsampling.
   * Report coordinates are in the input's pixels: scale by `image.width / report.image.width`.
   * `stages` is where the time went outside wasm, in ms: `payload` (reading the input here), the worker's
   * `decode` and `downscale` (big photos, by the browser), `read` (wasm: the report's `timings_ms` split it),
   * `image` and `heatmap` (the display layers), `worker` (all the worker's part) and `total`.
   */
  readWithView(input, options = {}) {
    return this._serial(async () => {
      const backend = options.backend || this.backend;
      if (!BACKENDS.includes(backend)) {
        throw new XrayReaderError("invalid_options", `unknown backend ${JSON.stringify(backend)} (use auto, cpu or webgpu)`);
      }
      const t0 = performance.now();
      const [payload, transfer] = await toPayload(input);
      const t1 = performance.now();
      await this._ensureWorker();
      const opts = { backend };
      for (const key of ["corners", "noRotate", "name"]) if (options[key] !== undefined && options[key] !== null) opts[key] = options[key];
      const msg = await this._call(
        { type: "read", input: payload, options: opts },
        transfer,
        options.onProgress,
      );
      const image = msg.image && new ImageData(new Uint8ClampedArray(msg.image.rgba), msg.image.width, msg.image.height);
      const heatmap = msg.heatmap && new ImageData(new Uint8ClampedArray(msg.heatmap.rgba), msg.heatmap.width, msg.heatmap.height);
      const stages = { ...msg.stages, payload: t1 - t0, total: performance.now() - t0 };
      return { report: msg.report, image, heatmap, stages };
    });
  }

  /** Forget the last image inside the worker. */
  clear() {
    return this._serial(async () => {
      if (this._worker) await this._call({ type: "clear" });
    });
  }

  /** Memory held by the reader: { wasmMemoryBytes } (the worker's WebAssembly memory; it never shrinks). */
  stats() {
    return this._serial(async () => {
      await this._ensureWorker();
      const { wasmMemoryBytes } = await this._call({ type: "stats" });
      return { wasmMemoryBytes };
    });
  }

  /** Stop the worker and free its memory. */
  close() {
    if (this._worker) this._worker.terminate();
    this._worker = null;
    this._fail(new XrayReaderError("closed", "the reader was closed"));
  }

  /** Test hook: destroy the worker's WebGPU device (as a driver reset would); reads must go on on the CPU. */
  _loseGpuForTest() {
    return this._serial(async () => {
      await this._ensureWorker();
      return (await this._call({ type: "loseGpu" })).lost;
    });
  }

  /** Test hook: make the Rust side panic, to prove the reader recovers. Rejects with kind "internal". */
  _panicForTest(inAsyncTask = false) {
    return this._serial(async () => {
      await this._ensureWorker();
      return this._call({ type: "panic", async: inAsyncTask });
    });
  }
}

/** Canvases holding layers already drawn once (the heatmap is redrawn at each opacity change). */
const layerCanvases = new WeakMap();

/** Draw an ImageData layer scaled to w×h with smoothing: the canvas does the upsampling. */
function drawLayer(ctx, layer, w, h) {
  let canvas = layerCanvases.get(layer);
  if (!canvas) {
    canvas = document.createElement("canvas");
    canvas.width = layer.width;
    canvas.height = layer.height;
    canvas.getContext("2d").putImageData(layer, 0, 0);
    layerCanvases.set(layer, canvas);
  }
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "medium";
  ctx.drawImage(canvas, 0, 0, w, h);
}

async function toPayload(input) {
  if (typeof ImageData !== "undefined" && input instanceof ImageData) {
    const data = input.data.slice().buffer;
    return [{ kind: "pixels", width: input.width, height: input.height, data }, [data]];
  }
  let buffer;
  if (input instanceof Blob) buffer = await input.arrayBuffer();
  else if (input instanceof ArrayBuffer) buffer = input.slice(0);
  else if (ArrayBuffer.isView(input)) buffer = input.buffer.slice(input.byteOffset, input.byteOffset + input.byteLength);
  else throw new XrayReaderError("invalid_input", "read() takes a Blob, File, ArrayBuffer, typed array or ImageData");
  return [{ kind: "bytes", bytes: buffer }, [buffer]];
}

// ---------------------------------------------------------------------------------------------------
// Messages

export const LANGUAGES = ["en", "fr", "es", "pt", "zh"];
const catalogs = new Map();

/** The best supported language for a list like navigator.languages. */
export function pickLanguage(preferred = (typeof navigator !== "undefined" && navigator.languages) || []) {
  for (const tag of preferred) {
    const base = String(tag).toLowerCase().split("-")[0];
    if (LANGUAGES.includes(base)) return base;
  }
  return "en";
}

export async function loadMessages(lang) {
  const code = LANGUAGES.includes(lang) ? lang : "en";
  if (!catalogs.has(code)) {
    catalogs.set(code, fetch(new URL(`i18n/${code}.json`, HERE)).then((r) => {
      if (!r.ok) throw new Error(`missing message catalog ${code}`);
      return r.json();
    }));
  }
  return catalogs.get(code);
}

function format(template, values = {}) {
  return String(template).replace(/\{(\w+)\}/g, (_, k) => (k in values ? values[k] : `{${k}}`));
}

// ---------------------------------------------------------------------------------------------------
// The <xray-reader> element

const STYLE = `
:host { display: block; font: 16px/1.45 system-ui, sans-serif; color: #1b1f24; max-width: 960px; }
* { box-sizing: border-box; }
button, label.button { font: inherit; min-height: 44px; padding: 0.5em 1em; border-radius: 8px; border: 1px solid #0b5394;
  background: #0b5394; color: #fff; cursor: pointer; display: inline-flex; align-items: center; }
button.secondary { background: #fff; color: #0b5394; }
button:focus-visible, input:focus-visible, canvas:focus-visible, select:focus-visible { outline: 3px solid #e69500; outline-offset: 2px; }
button[disabled] { opacity: 0.5; cursor: default; }
.drop { border: 2px dashed #6b7785; border-radius: 12px; padding: 1em; display: flex; flex-wrap: wrap; gap: 0.6em; align-items: center; }
.drop.over { background: #e8f1fb; border-color: #0b5394; }
.status { min-height: 1.5em; margin: 0.6em 0; color: #33414f; }
.camera video { width: 100%; max-height: 70vh; background: #000; border-radius: 8px; }
.camera .row, .actions, .controls { display: flex; flex-wrap: wrap; gap: 0.6em; margin: 0.5em 0; align-items: center; }
.view { position: relative; width: 100%; touch-action: none; }
.view canvas { width: 100%; height: auto; display: block; border-radius: 6px; }
.view canvas.heat { position: absolute; inset: 0; pointer-events: none; }
.banner { padding: 0.6em 0.9em; border-radius: 8px; margin: 0.6em 0; }
.banner.refuse { background: #fde8e8; border: 1px solid #b42318; color: #7a1a12; }
.banner.error { background: #fde8e8; border: 1px solid #b42318; color: #7a1a12; }
ul { padding-left: 1.2em; }
li { margin: 0.3em 0; }
.finding { border: 1px solid #c9d1d9; border-radius: 8px; padding: 0.6em 0.9em; margin: 0.5em 0; }
.finding .tag { font-weight: 600; }
.finding.positive .tag { color: #a33a00; }
.finding.negative .tag { color: #1a6b32; }
.sev-refuse { color: #b42318; font-weight: 600; }
.sev-warn { color: #8a5a00; font-weight: 600; }
.small { font-size: 0.88em; color: #4a5561; }
.disclaimer { font-weight: 600; border-left: 4px solid #e69500; padding-left: 0.7em; }
[hidden] { display: none !important; }
@media print { .drop, .actions, .controls, .camera, .status { display: none !important; } :host { max-width: none; } }
`;

const TEMPLATE = `
<section class="input">
  <div class="drop" part="drop">
    <button type="button" data-id="camera"></button>
    <label class="button secondary" data-id="pick-label"><input type="file" accept="image/*,.tif,.tiff" data-id="file" hidden><span data-id="choose"></span></label>
    <span class="small" data-id="drop-hint"></span>
  </div>
  <div class="camera" data-id="camera-panel" hidden>
    <video data-id="video" playsinline muted></video>
    <p class="small" data-id="viewfinder-hint"></p>
    <div class="row"><button type="button" data-id="capture"></button><button type="button" class="secondary" data-id="cancel"></button></div>
  </div>
</section>
<p class="status" role="status" aria-live="polite" data-id="status"></p>
<div class="banner error" role="alert" data-id="error" hidden></div>
<section class="result" data-id="result" hidden aria-labelledby="result-heading">
  <h2 id="result-heading" data-id="result-heading"></h2>
  <div class="banner refuse" role="alert" data-id="refused" hidden></div>
  <div class="view" data-id="view">
    <canvas data-id="base" tabindex="0"></canvas>
    <canvas class="heat" data-id="heat" aria-hidden="true"></canvas>
  </div>
  <div class="controls">
    <label><input type="checkbox" data-id="heat-toggle" checked> <span data-id="heat-label"></span></label>
    <label><span data-id="opacity-label"></span> <input type="range" min="0" max="100" value="70" data-id="opacity"></label>
  </div>
  <p class="small" data-id="corners-hint"></p>
  <p class="small" data-id="film-info"></p>
  <h3 data-id="findings-heading"></h3>
  <div data-id="findings"></div>
  <h3 data-id="quality-heading"></h3>
  <ul data-id="quality"></ul>
  <p class="disclaimer" data-id="disclaimer"></p>
  <p class="small" data-id="engine"></p>
  <div class="actions">
    <button type="button" data-id="save-png"></button>
    <button type="button" class="secondary" data-id="save-json"></button>
    <button type="button" class="secondary" data-id="print"></button>
    <button type="button" class="secondary" data-id="again"></button>
  </div>
</section>
`;

const CORNER_COLOURS = ["#00c8ff", "#00c8ff", "#00c8ff", "#00c8ff"];

export class XrayReaderElement extends HTMLElement {
  static get observedAttributes() {
    return ["lang", "model-url", "manifest-url", "backend"];
  }

  constructor() {
    super();
    this.attachShadow({ mode: "open" });
    // a constructed stylesheet, not a <style> element: hosts (and our own CSP) may forbid inline styles
    if ("adoptedStyleSheets" in this.shadowRoot && typeof CSSStyleSheet === "function" && "replaceSync" in CSSStyleSheet.prototype) {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(STYLE);
      this.shadowRoot.adoptedStyleSheets = [sheet];
      this.shadowRoot.innerHTML = TEMPLATE;
    } else {
      this.shadowRoot.innerHTML = `<style>${STYLE}</style>${TEMPLATE}`;
    }
    this.$ = (id) => this.shadowRoot.querySelector(`[data-id="${id}"]`);
    this.reader = null;
    this.messages = null;
    /** Completed reads (result or error), for hosts and tests that wait on the next one. */
    this.reads = 0;
    this.state = { input: null, report: null, image: null, heatmap: null, corners: null, selected: -1, stage: "loading_model", error: null };
    this._wire();
  }

  connectedCallback() {
    document.addEventListener("paste", this._onPaste);
    this._applyLanguage(this.getAttribute("lang") || pickLanguage());
    this._startReader();
  }

  disconnectedCallback() {
    document.removeEventListener("paste", this._onPaste);
    this._stopCamera();
    if (this.reader) this.reader.close();
    this.reader = null;
  }

  attributeChangedCallback(name, oldValue, value) {
    if (oldValue === value || !this.isConnected) return;
    if (name === "lang") this._applyLanguage(value || pickLanguage());
    else {
      if (this.reader) this.reader.close();
      this.reader = null;
      this._startReader();
    }
  }

  /** The language in use. */
  get language() {
    return this._lang;
  }

  /** The last report (the same object the JS API returns), or null. */
  get report() {
    return this.state.report;
  }

  async _startReader() {
    this._setStage("loading_model");
    const opts = { backend: this.getAttribute("backend") || "auto", onProgress: (s, d) => this._setStage(s, d) };
    if (this.getAttribute("model-url")) opts.modelUrl = this.getAttribute("model-url");
    if (this.getAttribute("manifest-url")) opts.manifestUrl = this.getAttribute("manifest-url");
    try {
      this.reader = await createReader(opts);
      /** When the reader became ready, in ms since navigation start (cold-start benchmark). */
      this.readyAt = performance.now();
      this._setStage("ready");
      this.dispatchEvent(new CustomEvent("ready", { detail: { manifest: this.reader.manifest }, bubbles: true, composed: true }));
    } catch (e) {
      this._showError(e);
    }
  }

  async _applyLanguage(lang) {
    const code = LANGUAGES.includes(lang) ? lang : "en";
    this._lang = code;
    this.messages = await loadMessages(code);
    if (this._lang !== code) return;
    const m = this.messages;
    const text = { camera: "take_photo", choose: "choose_file", "drop-hint": "drop_hint", capture: "capture", cancel: "cancel",
      "viewfinder-hint": "viewfinder_hint", "result-heading": "result", "heat-label": "heatmap", "opacity-label": "opacity",
      "corners-hint": "corners_hint", "findings-heading": "findings", "quality-heading": "quality", disclaimer: "disclaimer",
      "save-png": "save_png", "save-json": "save_json", print: "print", again: "start_over" };
    for (const [id, key] of Object.entries(text)) this.$(id).textContent = m[key];
    this.$("base").setAttribute("aria-label", m.corners_hint);
    this._setStage(this.state.stage, this.state.stageDetail);
    if (this.state.report) this._renderReport();
    if (this.state.error) this._showError(this.state.error);
    this.dispatchEvent(new CustomEvent("languagechange", { detail: { lang: code } }));
  }

  _t(key, values) {
    const m = this.messages || {};
    return format(m[key] ?? key, values);
  }

  _setStage(stage, detail) {
    this.state.stage = stage;
    this.state.stageDetail = detail;
    if (!this.messages) return;
    const percent = detail && detail.fraction !== undefined ? Math.round(detail.fraction * 100) : "";
    this.$("status").textContent = stage ? this._t(`stage_${stage}`, { percent }) : "";
    const busy = stage && stage !== "ready";
    for (const id of ["camera", "capture"]) this.$(id).disabled = !!busy;
    this.$("file").disabled = !!busy;
    this.toggleAttribute("busy", !!busy);
  }

  _wire() {
    const file = this.$("file");
    file.addEventListener("change", () => {
      if (file.files && file.files[0]) this.readInput(file.files[0]);
      file.value = "";
    });
    const drop = this.$("drop") || this.shadowRoot.querySelector(".drop");
    drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (e) => {
      e.preventDefault();
      drop.classList.remove("over");
      const f = e.dataTransfer && e.dataTransfer.files && e.dataTransfer.files[0];
      if (f) this.readInput(f);
    });
    this._onPaste = (e) => {
      const item = [...(e.clipboardData ? e.clipboardData.items : [])].find((i) => i.kind === "file");
      if (item) this.readInput(item.getAsFile());
    };
    this.$("camera").addEventListener("click", () => this._startCamera());
    this.$("cancel").addEventListener("click", () => this._stopCamera());
    this.$("capture").addEventListener("click", () => this._capture());
    this.$("heat-toggle").addEventListener("change", () => this._drawHeat());
    this.$("opacity").addEventListener("input", () => this._drawHeat());
    this.$("save-png").addEventListener("click", () => this._savePng());
    this.$("save-json").addEventListener("click", () => this._saveJson());
    this.$("print").addEventListener("click", () => window.print());
    this.$("again").addEventListener("click", () => this._reset());
    this._wireCorners();
  }

  /** Read a Blob/File/ArrayBuffer/ImageData and show the result. Resolves to the report (or null). */
  async readInput(input, corners = null) {
    if (!this.reader) return null;
    this.state.error = null;
    this.$("error").hidden = true;
    this.state.input = input;
    try {
      const opts = corners ? { corners } : {};
      if (input && input.name) opts.name = input.name;
      const { report, image, heatmap } = await this.reader.readWithView(input, opts);
      Object.assign(this.state, { report, image, heatmap, corners: report.film.corners.map((p) => [...p]), selected: -1 });
      this._setStage("ready");
      this._renderReport();
      this.reads += 1;
      this.dispatchEvent(new CustomEvent("report", { detail: { report } }));
      return report;
    } catch (e) {
      this._setStage("ready");
      this._showError(e);
      this.reads += 1;
      this.dispatchEvent(new CustomEvent("readerror", { detail: { kind: e.kind || "internal", message: e.message } }));
      return null;
    }
  }

  _showError(e) {
    this.state.error = e;
    if (!this.messages) return;
    const kind = e.kind || "internal";
    const known = this.messages[`err_${kind}`];
    const box = this.$("error");
    box.hidden = false;
    box.replaceChildren();
    const strong = document.createElement("strong");
    strong.textContent = `${this._t("error")}: `;
    const detail = document.createElement("span");
    detail.textContent = known || this._t("err_other");
    const tech = document.createElement("div");
    tech.className = "small";
    tech.textContent = `${kind}: ${e.message}`;
    box.append(strong, detail, tech);
    box.dataset.kind = kind;
  }

  _renderReport() {
    const r = this.state.report;
    if (!r) return;
    this.$("result").hidden = false;
    const refused = r.quality.filter((q) => q.severity === "refuse");
    const banner = this.$("refused");
    banner.hidden = r.accepted;
    banner.textContent = r.accepted ? "" : `${this._t("not_read")}: ${this._t("not_read_hint")}`;

    const findings = this.$("findings");
    findings.replaceChildren();
    for (const f of r.findings) {
      const div = document.createElement("div");
      div.className = `finding ${f.positive ? "positive" : "negative"}`;
      div.dataset.label = f.label;
      const tag = document.createElement("div");
      tag.className = "tag";
      const what = this.messages[`label_${f.label}`] || f.label;
      tag.textContent = r.accepted ? `${this._t(f.positive ? "positive" : "negative")} · ${f.label} ${f.probability.toFixed(2)}` : `${this._t("not_read")} · ${f.label} ${f.probability.toFixed(2)}`;
      const p = document.createElement("p");
      const values = { what, score: f.probability.toFixed(2), threshold: f.threshold.toFixed(2) };
      p.textContent = this._t(r.accepted ? (f.positive ? "finding_positive" : "finding_negative") : "finding_not_read", values);
      div.append(tag, p);
      findings.append(div);
    }

    const quality = this.$("quality");
    quality.replaceChildren();
    const items = [...refused, ...r.quality.filter((q) => q.severity !== "refuse")];
    if (!items.length) {
      const li = document.createElement("li");
      li.textContent = this._t("quality_ok");
      quality.append(li);
    }
    for (const q of items) {
      const li = document.createElement("li");
      li.dataset.code = q.code;
      const sev = document.createElement("span");
      sev.className = `sev-${q.severity}`;
      sev.textContent = `${this._t(q.severity)}: `;
      const msg = document.createElement("span");
      msg.textContent = this.messages[`q_${q.code}`] || q.message;
      li.append(sev, msg);
      if (this.messages[`q_${q.code}`] && this._lang === "en") li.title = q.message;
      quality.append(li);
    }
    const secondLook = r.quality.some((q) => q.code === "second_look");
    this.$("film-info").textContent = this._t(r.film.from_caller ? "film_manual" : r.film.detected ? "film_detected" : secondLook ? "film_centre" : r.film.padding_trimmed ? "film_trimmed" : "film_whole");
    this.$("engine").textContent = `${this._t("engine", { engine: r.engine, ms: Math.round(r.timings_ms.total) })} ${r.model.name} ${r.model.version}`;
    const hasHeat = !!this.state.heatmap;
    this.$("heat-toggle").disabled = !hasHeat;
    this.$("opacity").disabled = !hasHeat;
    this.$("heat-label").textContent = hasHeat ? this._t("heatmap") : this._t("no_heatmap");
    this._drawBase();
    this._drawHeat();
  }

  _scale() {
    const { report, image } = this.state;
    return image.width / report.image.width;
  }

  _drawBase(target = this.$("base"), withHandles = true) {
    const { report, image, corners, selected } = this.state;
    target.width = image.width;
    target.height = image.height;
    const ctx = target.getContext("2d");
    ctx.putImageData(image, 0, 0);
    const s = this._scale();
    // sizes in CSS pixels, so outlines and corner handles stay visible and touchable on a small screen
    const shown = this.$("base").getBoundingClientRect().width;
    const px = shown > 0 ? image.width / shown : Math.max(1, image.width / 800);
    const lw = Math.max(1, 2.5 * px);
    const poly = (pts, colour) => {
      ctx.beginPath();
      pts.forEach(([x, y], i) => (i ? ctx.lineTo(x * s, y * s) : ctx.moveTo(x * s, y * s)));
      ctx.closePath();
      ctx.strokeStyle = colour;
      ctx.lineWidth = lw;
      ctx.stroke();
    };
    poly(corners, "#00c8ff");
    for (const f of report.findings) {
      for (const reg of f.regions) poly(reg.polygon, "#ff2828");
      if (f.positive) {
        const [cx, cy] = [f.peak[0] * s, f.peak[1] * s];
        ctx.strokeStyle = "#ffff00";
        ctx.lineWidth = lw;
        ctx.beginPath();
        ctx.moveTo(cx - 8 * px, cy); ctx.lineTo(cx + 8 * px, cy);
        ctx.moveTo(cx, cy - 8 * px); ctx.lineTo(cx, cy + 8 * px);
        ctx.stroke();
      }
    }
    if (withHandles) {
      corners.forEach(([x, y], i) => {
        ctx.beginPath();
        ctx.arc(x * s, y * s, 11 * px, 0, Math.PI * 2);
        ctx.fillStyle = i === selected ? "#e69500" : CORNER_COLOURS[i];
        ctx.globalAlpha = 0.8;
        ctx.fill();
        ctx.globalAlpha = 1;
        ctx.fillStyle = "#000";
        ctx.font = `${13 * px}px sans-serif`;
        ctx.textAlign = "center";
        ctx.textBaseline = "middle";
        ctx.fillText(String(i + 1), x * s, y * s);
      });
    }
  }

  _drawHeat() {
    const heat = this.$("heat");
    const { heatmap, image } = this.state;
    if (!image) return;
    heat.width = image.width;
    heat.height = image.height;
    const ctx = heat.getContext("2d");
    ctx.clearRect(0, 0, heat.width, heat.height);
    if (!heatmap || !this.$("heat-toggle").checked) return;
    drawLayer(ctx, heatmap, image.width, image.height);
    heat.style.opacity = String(Number(this.$("opacity").value) / 100);
  }

  _wireCorners() {
    const canvas = this.$("base");
    const toImage = (e) => {
      const rect = canvas.getBoundingClientRect();
      const s = this._scale();
      return [((e.clientX - rect.left) * canvas.width) / rect.width / s, ((e.clientY - rect.top) * canvas.height) / rect.height / s];
    };
    let dragging = -1;
    canvas.addEventListener("pointerdown", (e) => {
      if (!this.state.report) return;
      const [x, y] = toImage(e);
      const rect = canvas.getBoundingClientRect();
      const radius = (24 * canvas.width) / rect.width / this._scale(); // 24 CSS px
      let best = -1, bestD = Infinity;
      this.state.corners.forEach(([cx, cy], i) => {
        const d = Math.hypot(cx - x, cy - y);
        if (d < bestD) { bestD = d; best = i; }
      });
      if (bestD <= radius) {
        dragging = best;
        this.state.selected = best;
        canvas.setPointerCapture(e.pointerId);
        e.preventDefault();
      }
    });
    canvas.addEventListener("pointermove", (e) => {
      if (dragging < 0) return;
      const [x, y] = toImage(e);
      const { width, height } = this.state.report.image;
      this.state.corners[dragging] = [Math.min(Math.max(x, 0), width), Math.min(Math.max(y, 0), height)];
      this._drawBase();
    });
    const end = () => {
      if (dragging < 0) return;
      dragging = -1;
      this._rereadWithCorners();
    };
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
    canvas.addEventListener("keydown", (e) => {
      if (!this.state.report) return;
      if (["1", "2", "3", "4"].includes(e.key)) {
        this.state.selected = Number(e.key) - 1;
        this._drawBase();
        e.preventDefault();
        return;
      }
      const i = this.state.selected;
      if (i < 0) return;
      const { width, height } = this.state.report.image;
      const step = Math.max(width, height) / 100;
      const d = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] }[e.key];
      if (d) {
        const [x, y] = this.state.corners[i];
        this.state.corners[i] = [Math.min(Math.max(x + d[0], 0), width), Math.min(Math.max(y + d[1], 0), height)];
        this._drawBase();
        e.preventDefault();
      } else if (e.key === "Enter") {
        this._rereadWithCorners();
        e.preventDefault();
      }
    });
  }

  _rereadWithCorners() {
    if (!this.state.input) return;
    const corners = this.state.corners.map(([x, y]) => [x, y]);
    this.readInput(this.state.input, corners);
  }

  async _startCamera() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      this._cameraError("no camera API in this browser");
      return;
    }
    try {
      this._stream = await navigator.mediaDevices.getUserMedia({
        video: { facingMode: { ideal: "environment" }, width: { ideal: 2560 }, height: { ideal: 1920 } },
        audio: false,
      });
    } catch (e) {
      this._cameraError(e.message || e.name);
      return;
    }
    const video = this.$("video");
    video.srcObject = this._stream;
    this.$("camera-panel").hidden = false;
    await video.play().catch(() => {});
  }

  _cameraError(reason) {
    const box = this.$("error");
    box.hidden = false;
    box.dataset.kind = "camera_unavailable";
    box.textContent = this._t("camera_unavailable", { reason });
  }

  _stopCamera() {
    if (this._stream) this._stream.getTracks().forEach((t) => t.stop());
    this._stream = null;
    this.$("camera-panel").hidden = true;
    this.$("video").srcObject = null;
  }

  async _capture() {
    const video = this.$("video");
    if (!video.videoWidth) return;
    const canvas = new OffscreenCanvas(video.videoWidth, video.videoHeight);
    const ctx = canvas.getContext("2d");
    ctx.drawImage(video, 0, 0);
    const blob = await canvas.convertToBlob({ type: "image/jpeg", quality: 0.92 });
    this._stopCamera();
    await this.readInput(new File([blob], `camera-${Date.now()}.jpg`, { type: "image/jpeg" }));
  }

  /** The result view as one annotated PNG (image, heatmap at the chosen opacity, outlines). */
  async annotatedPng() {
    const { image } = this.state;
    const canvas = document.createElement("canvas");
    this._drawBase(canvas, false);
    const ctx = canvas.getContext("2d");
    if (this.state.heatmap && this.$("heat-toggle").checked) {
      ctx.globalAlpha = Number(this.$("opacity").value) / 100;
      drawLayer(ctx, this.state.heatmap, image.width, image.height);
      ctx.globalAlpha = 1;
    }
    return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
  }

  _baseName() {
    const name = (this.state.input && this.state.input.name) || "xray";
    return name.replace(/\.[^.]+$/, "").replace(/[^\w.-]+/g, "_");
  }

  async _savePng() {
    download(await this.annotatedPng(), `${this._baseName()}-annotated.png`);
  }

  _saveJson() {
    const blob = new Blob([JSON.stringify(this.state.report, null, 2)], { type: "application/json" });
    download(blob, `${this._baseName()}-report.json`);
  }

  _reset() {
    Object.assign(this.state, { input: null, report: null, image: null, heatmap: null, corners: null, selected: -1, error: null });
    this.$("result").hidden = true;
    this.$("error").hidden = true;
    if (this.reader) this.reader.clear();
  }
}

function download(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

if (typeof customElements !== "undefined" && !customElements.get("xray-reader")) {
  customElements.define("xray-reader", XrayReaderElement);
}
