//! The JavaScript API (wasm32 only): a `Reader` class over the reader core. Reports cross the boundary
//! through serde-wasm-bindgen as the same object the CLI prints as JSON; errors are thrown as JS `Error`s
//! carrying the stable `kind`. The page and `<xray-reader>` run this inside a Web Worker (`www/worker.js`).
//!
//! Panics: on wasm32 a panic aborts (a trap), and the instance must not be trusted afterwards. The read
//! paths catch what they can (`Reader::read` is guarded, but unwinding is not available on this target),
//! so a panic hook hands the message to `globalThis.__xrayReaderPanic` before the trap; the worker then
//! reports an `internal` error and the host re-instantiates the module (see `www/xray-reader.js`).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use image::RgbImage;
use serde::Deserialize;
use wasm_bindgen::prelude::*;

use crate::engine::webgpu::GpuEngine;
use crate::engine::{RawOutputs, check};
use crate::error::{Error, Result as ReadResult};
use crate::overlay;
use crate::reader::{Next, PendingRead, ReadOptions, Reader, Reading};

/// Options accepted by `read` / `readPixels` (all optional).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct JsReadOptions {
    /// Film corners in the input's pixels (after EXIF orientation), any order.
    corners: Option<[[f32; 2]; 4]>,
    no_rotate: Option<bool>,
    name: Option<String>,
    /// "auto" (the engine chosen by `gpuCheck`, else the CPU) | "cpu" | "webgpu".
    backend: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Auto,
    Cpu,
    WebGpu,
}

fn backend_of(name: Option<&str>) -> Result<Backend, JsValue> {
    match name {
        None | Some("auto") => Ok(Backend::Auto),
        Some("cpu") => Ok(Backend::Cpu),
        Some("webgpu") => Ok(Backend::WebGpu),
        Some(other) => {
            Err(js_error("invalid_options", &format!("unknown backend {other:?} (use auto, cpu or webgpu)")))
        }
    }
}

fn js_error(kind: &str, message: &str) -> JsValue {
    let e = js_sys::Error::new(message);
    e.set_name("XrayReaderError");
    let _ = js_sys::Reflect::set(&e, &"kind".into(), &kind.into());
    e.into()
}

fn to_js_error(err: &Error) -> JsValue {
    js_error(err.kind(), &err.to_string())
}

fn options(value: JsValue) -> Result<ReadOptions, JsValue> {
    options_and_backend(value).map(|(o, _)| o)
}

fn options_and_backend(value: JsValue) -> Result<(ReadOptions, Backend), JsValue> {
    if value.is_undefined() || value.is_null() {
        return Ok((ReadOptions::default(), Backend::Auto));
    }
    let o: JsReadOptions = serde_wasm_bindgen::from_value(value)
        .map_err(|e| js_error("invalid_options", &format!("invalid read options: {e}")))?;
    let backend = backend_of(o.backend.as_deref())?;
    Ok((ReadOptions { corners: o.corners, no_auto_rotate: o.no_rotate.unwrap_or(false), name: o.name }, backend))
}

fn to_js<T: serde::Serialize>(value: &T) -> Result<JsValue, JsValue> {
    // None becomes null (not undefined), so the object matches the CLI's JSON field for field
    let ser = serde_wasm_bindgen::Serializer::new().serialize_maps_as_objects(true).serialize_missing_as_null(true);
    value.serialize(&ser).map_err(|e| js_error("internal", &format!("cannot convert the report: {e}")))
}

/// Install the panic hook once per instance (idempotent).
#[wasm_bindgen(start)]
pub fn start() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info.to_string();
        let global = js_sys::global();
        if let Ok(f) = js_sys::Reflect::get(&global, &"__xrayReaderPanic".into()) {
            if let Some(f) = f.dyn_ref::<js_sys::Function>() {
                let _ = f.call1(&JsValue::UNDEFINED, &msg.into());
            }
        }
    }));
}

/// The threaded experiment (`threads` feature; scripts/build-threads.sh, timed by bench/model.mjs, not loaded by
/// the page): `initThreadPool(n)` starts `n` Web Workers sharing this instance's memory as rayon's global pool.
/// Only a cross-origin isolated page can (SharedArrayBuffer).
#[cfg(feature = "threads")]
pub use wasm_bindgen_rayon::init_thread_pool;

/// Hand tract's matrix products and depthwise convolutions to the pool `initThreadPool` started (call it once
/// that promise has resolved); returns how many threads the pool has.
#[cfg(feature = "threads")]
#[wasm_bindgen(js_name = useThreadPool)]
pub fn use_thread_pool() -> usize {
    use tract_linalg::multithread::{Executor, set_default_executor};
    set_default_executor(Executor::RayonGlobal);
    rayon::current_num_threads()
}

/// Benchmarks only: tract's thresholds for splitting an op over the pool (matrix panels, elements; tract's
/// defaults are 64 and 32768).
#[cfg(feature = "threads")]
#[wasm_bindgen(js_name = __setThreadingThresholds)]
pub fn set_threading_thresholds(panels: usize, elements: usize) {
    tract_linalg::multithread::set_threading_panel_threshold(panels);
    tract_linalg::multithread::set_threading_element_threshold(elements);
}

/// Deliberately panic (and so trap). Exists only so tests can prove that the host survives a panic.
#[wasm_bindgen(js_name = __panicForTest)]
pub fn panic_for_test() {
    panic!("deliberate panic requested by a test");
}

/// As `__panicForTest`, inside an async task (where a read's GPU steps run): the trap surfaces as an
/// uncaught error in the worker, not as a rejected promise.
#[wasm_bindgen(js_name = __panicAsyncForTest)]
pub fn panic_async_for_test() -> js_sys::Promise {
    js_sys::futures::future_to_promise(async { panic!("deliberate panic in an async task requested by a test") })
}

/// `[width, height]` as an encoded image declares them in its header (before any EXIF turn), without
/// decoding it; undefined when this build cannot read its format (AVIF, HEIC: the browser may) or header.
#[wasm_bindgen(js_name = imageSize)]
pub fn image_size(bytes: &[u8]) -> Option<Vec<u32>> {
    crate::decode::declared_size(bytes).map(|(w, h)| vec![w, h])
}

/// An RGBA picture handed to JavaScript (wraps into `ImageData`).
#[wasm_bindgen]
pub struct Picture {
    width: u32,
    height: u32,
    rgba: Vec<u8>,
}

#[wasm_bindgen]
impl Picture {
    #[wasm_bindgen(getter)]
    pub fn width(&self) -> u32 {
        self.width
    }
    #[wasm_bindgen(getter)]
    pub fn height(&self) -> u32 {
        self.height
    }
    /// The pixels, RGBA row-major, moved out to JavaScript; this consumes the picture (no `free` needed).
    #[wasm_bindgen(js_name = intoRgba)]
    pub fn into_rgba(self) -> Vec<u8> {
        self.rgba
    }
}

#[wasm_bindgen(js_name = Reader)]
pub struct JsReader {
    inner: Rc<Shared>,
}

/// The reader and its GPU engine, shared with reads in flight (async reads outlive the `&self` borrow).
struct Shared {
    reader: Reader,
    gpu: RefCell<Option<Rc<GpuEngine>>>,
    /// What "auto" means: set by `gpuCheck` (WebGPU when it is correct and faster) or `setBackend`.
    auto_gpu: Cell<bool>,
    /// Why there is no GPU engine (never started, failed to start, failed its check, lost).
    gpu_note: RefCell<String>,
    last: RefCell<Option<Reading>>,
}

impl Shared {
    /// The running WebGPU engine, or kind `backend_unavailable` with the reason there is none.
    fn gpu_engine(&self) -> Result<Rc<GpuEngine>, JsValue> {
        let gpu = self.gpu.borrow().clone();
        gpu.ok_or_else(|| js_error("backend_unavailable", &format!("no WebGPU engine: {}", self.gpu_note.borrow())))
    }

    fn drop_gpu(&self, why: String) {
        self.gpu.borrow_mut().take();
        self.auto_gpu.set(false);
        *self.gpu_note.borrow_mut() = why;
    }

    /// Run a read to its end: each model pass on the GPU when this read should use it, else on the CPU.
    /// A GPU failure mid-read retires the GPU engine and finishes the read on the CPU, saying so.
    async fn drive(&self, mut pending: PendingRead, backend: Backend) -> ReadResult<Reading> {
        let mut note = None;
        loop {
            let wants_gpu = match backend {
                Backend::Cpu => false,
                Backend::WebGpu => true,
                Backend::Auto => self.auto_gpu.get(),
            };
            let gpu = if wants_gpu { self.gpu.borrow().clone() } else { None };
            // the self-check holds the GPU for a moment after start-up: this pass takes the CPU
            let gpu = gpu.filter(|g| !g.is_busy());
            if wants_gpu && self.gpu.borrow().is_none() && backend == Backend::WebGpu {
                note = Some(format!("WebGPU is not available ({}); read on the CPU", self.gpu_note.borrow()));
            }
            let pass: ReadResult<(RawOutputs, &str)> = match gpu {
                Some(gpu) => match gpu.infer(&pending.input).await {
                    Ok(out) => Ok((out, "webgpu")),
                    Err(e) => {
                        let why = format!("the WebGPU engine failed ({e}); read on the CPU");
                        self.drop_gpu(why.clone());
                        note = Some(why);
                        self.reader.infer(&pending.input).map(|out| (out, "cpu"))
                    }
                },
                None => self.reader.infer(&pending.input).map(|out| (out, "cpu")),
            };
            // a failing pass ends a turn check as failed, or a second look with the refused read it looked past
            let next = match pass {
                Ok((out, engine)) => self.reader.advance(pending, out, engine, note.clone())?,
                Err(e) => self.reader.after_failed_pass(pending, e, "cpu", note.clone())?,
            };
            match next {
                Next::Infer(p) => pending = p,
                Next::Done(reading) => return Ok(reading),
            }
        }
    }

    fn finish(&self, reading: Reading, scale: (f32, f32)) -> Result<JsValue, JsValue> {
        let mut report = reading.report.clone();
        if scale != (1.0, 1.0) {
            report.scale_coordinates(scale.0, scale.1);
        }
        let value = to_js(&report)?;
        *self.last.borrow_mut() = Some(reading);
        Ok(value)
    }
}

/// Check a read's pixel buffer and the scale from it to the original photo; corners come in the
/// original's pixels and are scaled to the buffer's.
fn checked_pixels(
    rgba: &[u8],
    width: u32,
    height: u32,
    original_width: u32,
    original_height: u32,
    opts: &mut ReadOptions,
) -> Result<(RgbImage, (f32, f32)), JsValue> {
    let expected = (width as usize).checked_mul(height as usize).and_then(|n| n.checked_mul(4));
    if width == 0 || height == 0 || expected != Some(rgba.len()) {
        return Err(js_error(
            "corrupt",
            &format!("pixel buffer of {} bytes does not match {width}x{height} RGBA", rgba.len()),
        ));
    }
    let (sx, sy) = if original_width > 0 && original_height > 0 {
        (original_width as f32 / width as f32, original_height as f32 / height as f32)
    } else {
        (1.0, 1.0)
    };
    if let Some(c) = opts.corners.as_mut() {
        c.iter_mut().for_each(|p| {
            p[0] /= sx;
            p[1] /= sy;
        });
    }
    Ok((rgba_on_white(rgba, width, height), (sx, sy)))
}

fn now_ms() -> f64 {
    START.with(|s| s.elapsed().as_secs_f64() * 1e3)
}

thread_local! {
    static START: web_time::Instant = web_time::Instant::now();
}

#[wasm_bindgen(js_class = Reader)]
impl JsReader {
    /// A reader for a model that follows the manifest contract; the checksum is verified first.
    /// `sha256` (optional, hex): the digest of `onnx` when the caller computed it (WebCrypto); it must
    /// still match the manifest's.
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(onnx: &[u8], manifest_json: &[u8], sha256: Option<String>) -> Result<JsReader, JsValue> {
        let inner =
            Reader::from_bytes_with_digest(onnx, manifest_json, sha256.as_deref()).map_err(|e| to_js_error(&e))?;
        let shared = Shared {
            reader: inner,
            gpu: RefCell::new(None),
            auto_gpu: Cell::new(false),
            gpu_note: RefCell::new("the WebGPU engine was not started".into()),
            last: RefCell::new(None),
        };
        Ok(JsReader { inner: Rc::new(shared) })
    }

    /// Where start-up time went (ms): manifest, checksum, parse, fold, graph, optimise, total.
    #[wasm_bindgen(js_name = loadTimings)]
    pub fn load_timings(&self) -> Result<JsValue, JsValue> {
        to_js(self.inner.reader.load_timings())
    }

    /// What the model is: name, version, sha256, findings and thresholds, input size.
    pub fn manifest(&self) -> Result<JsValue, JsValue> {
        let m = self.inner.reader.manifest();
        let findings: Vec<_> =
            m.findings.iter().map(|f| serde_json::json!({"label": f.label, "threshold": f.threshold})).collect();
        to_js(&serde_json::json!({
            "name": m.name, "version": m.version, "sha256": m.sha256,
            "input": {"width": m.input.width, "height": m.input.height},
            "findings": findings,
        }))
    }

    /// Read encoded image bytes (JPEG, PNG, WebP, BMP, TIFF, GIF). Returns the Report object.
    /// Always on the CPU; `readAsync` uses the chosen backend.
    pub fn read(&mut self, bytes: &[u8], options_value: JsValue) -> Result<JsValue, JsValue> {
        let opts = options(options_value)?;
        self.inner.last.borrow_mut().take();
        let reading = self.inner.reader.read(bytes, &opts).map_err(|e| to_js_error(&e))?;
        self.inner.finish(reading, (1.0, 1.0))
    }

    /// As `read`, on the backend the options ask for ("auto": the one `gpuCheck` chose). Returns a
    /// Promise of the Report; `report.engine` says which engine ran, `report.engine_note` why it is the CPU
    /// when WebGPU was asked for.
    #[wasm_bindgen(js_name = readAsync)]
    pub fn read_async(&self, bytes: Vec<u8>, options_value: JsValue) -> Result<js_sys::Promise, JsValue> {
        let (opts, backend) = options_and_backend(options_value)?;
        let shared = self.inner.clone();
        shared.last.borrow_mut().take();
        Ok(js_sys::futures::future_to_promise(async move {
            let pending = shared.reader.begin_bytes(&bytes, &opts).map_err(|e| to_js_error(&e))?;
            let reading = shared.drive(pending, backend).await.map_err(|e| to_js_error(&e))?;
            shared.finish(reading, (1.0, 1.0))
        }))
    }

    /// As `readPixels`, on the backend the options ask for; a Promise of the Report.
    #[wasm_bindgen(js_name = readPixelsAsync)]
    pub fn read_pixels_async(
        &self,
        rgba: &[u8],
        width: u32,
        height: u32,
        original_width: u32,
        original_height: u32,
        options_value: JsValue,
    ) -> Result<js_sys::Promise, JsValue> {
        let (mut opts, backend) = options_and_backend(options_value)?;
        let (rgb, scale) = checked_pixels(rgba, width, height, original_width, original_height, &mut opts)?;
        let shared = self.inner.clone();
        shared.last.borrow_mut().take();
        Ok(js_sys::futures::future_to_promise(async move {
            let pending = shared.reader.begin(rgb, &opts).map_err(|e| to_js_error(&e))?;
            let reading = shared.drive(pending, backend).await.map_err(|e| to_js_error(&e))?;
            shared.finish(reading, scale)
        }))
    }

    /// Start the WebGPU engine on the same model file (pass the bytes given to `fromBytes`). Resolves to
    /// `{adapter, fallbackAdapter, loadMs}`; rejects with kind `backend_unavailable` and the reason (no
    /// WebGPU, no adapter, limits too small, an op without a kernel). Reads keep using the CPU until
    /// `gpuCheck` or `setBackend` says otherwise.
    #[wasm_bindgen(js_name = startWebGpu)]
    pub fn start_webgpu(&self, onnx: Vec<u8>) -> js_sys::Promise {
        let shared = self.inner.clone();
        js_sys::futures::future_to_promise(async move {
            let t = now_ms();
            match GpuEngine::new(&onnx, shared.reader.manifest()).await {
                Ok(engine) => {
                    let info = serde_json::json!({
                        "adapter": engine.adapter, "fallbackAdapter": engine.fallback_adapter, "loadMs": now_ms() - t,
                    });
                    *shared.gpu.borrow_mut() = Some(Rc::new(engine));
                    to_js(&info)
                }
                Err(e) => {
                    shared.drop_gpu(e.to_string());
                    Err(to_js_error(&e))
                }
            }
        })
    }

    /// The self-check and timing that decide "auto": both engines run a fixed test pattern up to `runs` times
    /// (fewer once the GPU is more than twice as slow);
    /// WebGPU passes when its probabilities, orientation and polarity are within 1e-3 of the CPU's and its
    /// CAM correlates ≥ 0.999. "auto" then uses WebGPU when it passed and its median time is lower. A GPU
    /// that fails is retired (reads use the CPU). Resolves to `{passed, maxDifference, camCorrelation,
    /// cpuMs, webgpuMs, chosen}`.
    #[wasm_bindgen(js_name = gpuCheck)]
    pub fn gpu_check(&self, runs: u32) -> js_sys::Promise {
        let shared = self.inner.clone();
        js_sys::futures::future_to_promise(async move {
            let gpu = shared.gpu_engine()?;
            let input = check::check_input(&shared.reader.manifest().input);
            let runs = runs.clamp(1, 20) as usize;
            let fail = |e: Error| to_js_error(&e);
            let cpu = shared.reader.infer(&input).map_err(fail)?;
            let first = gpu.infer(&input).await; // compiles the pipelines
            let checked = first.map(|g| check::Agreement::of(&g, &cpu));
            let agreement = match checked {
                Ok(v) => v,
                Err(e) => {
                    shared.drop_gpu(format!("the WebGPU engine failed its self-check: {e}"));
                    return Err(fail(e));
                }
            };
            let (passed, diff, corr) = (agreement.passed(), agreement.max_difference, agreement.cam_correlation);
            let (mut cpu_ms, mut gpu_ms) = (vec![], vec![]);
            if passed {
                for _ in 0..runs {
                    let t = now_ms();
                    shared.reader.infer(&input).map_err(fail)?;
                    cpu_ms.push(now_ms() - t);
                    let t = now_ms();
                    gpu.infer(&input).await.map_err(fail)?;
                    gpu_ms.push(now_ms() - t);
                    // a GPU twice as slow as the CPU will not win: spare the user the remaining runs
                    if gpu_ms[gpu_ms.len() - 1] > 2.0 * cpu_ms[cpu_ms.len() - 1] {
                        break;
                    }
                }
            }
            let (cpu_ms, gpu_ms) = (check::median(cpu_ms), check::median(gpu_ms));
            if passed {
                shared.auto_gpu.set(gpu_ms < cpu_ms);
            } else {
                shared.drop_gpu(format!(
                    "the WebGPU engine disagreed with the CPU engine (difference {diff:.2e}, CAM correlation {corr:.5})"
                ));
            }
            to_js(&serde_json::json!({
                "passed": passed, "maxDifference": diff, "camCorrelation": corr,
                "cpuMs": if passed { Some(cpu_ms) } else { None },
                "webgpuMs": if passed { Some(gpu_ms) } else { None },
                "chosen": if shared.auto_gpu.get() { "webgpu" } else { "cpu" },
            }))
        })
    }

    /// What "auto" uses from now on: "cpu", or "webgpu" (kind `backend_unavailable` when it is not
    /// started), or "auto" to keep `gpuCheck`'s choice.
    #[wasm_bindgen(js_name = setBackend)]
    pub fn set_backend(&self, name: &str) -> Result<(), JsValue> {
        match backend_of(Some(name))? {
            Backend::Cpu => self.inner.auto_gpu.set(false),
            Backend::WebGpu => {
                self.inner.gpu_engine()?;
                self.inner.auto_gpu.set(true);
            }
            Backend::Auto => {}
        }
        Ok(())
    }

    /// `{engine, webgpu, note}`: the engine "auto" reads use now, whether a WebGPU engine is running, and
    /// why not when it is not.
    #[wasm_bindgen(js_name = backendInfo)]
    pub fn backend_info(&self) -> Result<JsValue, JsValue> {
        let running = self.inner.gpu.borrow().as_ref().is_some_and(|g| g.lost().is_none());
        let note = if running { None } else { Some(self.inner.gpu_note.borrow().clone()) };
        to_js(&serde_json::json!({
            "engine": if running && self.inner.auto_gpu.get() { "webgpu" } else { "cpu" },
            "webgpu": running,
            "note": note,
        }))
    }

    /// Read RGBA pixels (an `ImageData`'s data), upright. When the caller downscaled a large photo first,
    /// `original_width`/`original_height` give its size, and the report's coordinates (and the corners
    /// option) are in those original pixels. Pass 0 for both when the pixels are the original.
    #[wasm_bindgen(js_name = readPixels)]
    pub fn read_pixels(
        &mut self,
        rgba: &[u8],
        width: u32,
        height: u32,
        original_width: u32,
        original_height: u32,
        options_value: JsValue,
    ) -> Result<JsValue, JsValue> {
        let mut opts = options(options_value)?;
        self.inner.last.borrow_mut().take();
        let (rgb, scale) = checked_pixels(rgba, width, height, original_width, original_height, &mut opts)?;
        let reading = self.inner.reader.read_image(rgb, &opts).map_err(|e| to_js_error(&e))?;
        self.inner.finish(reading, scale)
    }

    /// The last read image, upright, long side at most `max_side`: what the report's coordinates refer
    /// to (scale by `picture.width / report.image.width`).
    #[wasm_bindgen(js_name = lastImage)]
    pub fn last_image(&self, max_side: u32) -> Option<Picture> {
        let last = self.inner.last.borrow();
        let reading = last.as_ref()?;
        let img = overlay::display_image(reading, max_side.max(16));
        let (width, height) = img.dimensions();
        let mut rgba = vec![255u8; img.len() / 3 * 4];
        for (o, p) in rgba.chunks_exact_mut(4).zip(img.chunks_exact(3)) {
            o[..3].copy_from_slice(p);
        }
        Some(Picture { width, height, rgba })
    }

    /// The heatmap of the last read's positive findings as a transparent layer the size of `lastImage`.
    #[wasm_bindgen(js_name = lastHeatmap)]
    pub fn last_heatmap(&self, max_side: u32) -> Option<Picture> {
        let last = self.inner.last.borrow();
        let reading = last.as_ref()?;
        if !reading.report.findings.iter().any(|f| f.positive) {
            return None;
        }
        let (w, h) = overlay::display_image_size(reading, max_side.max(16));
        let layer = overlay::heat_layer(reading, w, h);
        Some(Picture { width: w, height: h, rgba: layer.into_raw() })
    }

    /// Benchmark hook: run only the model step on a preprocessed input (the manifest's input size, values
    /// as after normalisation). Returns `[milliseconds, first finding's probability]`.
    #[wasm_bindgen(js_name = modelStep)]
    pub fn model_step(&self, input: &[f32]) -> Result<Vec<f64>, JsValue> {
        let t = web_time::Instant::now();
        let out = self.inner.reader.infer(input).map_err(|e| to_js_error(&e))?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        Ok(vec![ms, out.probabilities.first().copied().unwrap_or(f32::NAN) as f64])
    }

    /// Benchmark hook: the CPU engine's time per op kind on a preprocessed input, `[{op, nodes, ms}]`
    /// slowest first (`ms`: median over `runs` of one pass's total for that kind).
    #[wasm_bindgen(js_name = modelProfile)]
    pub fn model_profile(&self, input: &[f32], runs: usize) -> Result<JsValue, JsValue> {
        let rows = self.inner.reader.profile(input, runs).map_err(|e| to_js_error(&e))?;
        to_js(&rows)
    }

    /// Benchmark hook: `modelStep` on the WebGPU engine (a Promise of `[milliseconds, probability]`, the time
    /// including upload and readback).
    #[wasm_bindgen(js_name = modelStepWebGpu)]
    pub fn model_step_webgpu(&self, input: Vec<f32>) -> js_sys::Promise {
        let shared = self.inner.clone();
        js_sys::futures::future_to_promise(async move {
            let gpu = shared.gpu_engine()?;
            let t = now_ms();
            let out = gpu.infer(&input).await.map_err(|e| to_js_error(&e))?;
            let ms = now_ms() - t;
            let p = out.probabilities.first().copied().unwrap_or(f32::NAN) as f64;
            Ok(js_sys::Array::of2(&ms.into(), &p.into()).into())
        })
    }

    /// Test hook: destroy the WebGPU device, as a GPU reset or a lost device would, to prove that reads
    /// carry on on the CPU.
    #[wasm_bindgen(js_name = __loseWebGpuForTest)]
    pub fn lose_webgpu_for_test(&self) -> bool {
        let gpu = self.inner.gpu.borrow().clone();
        gpu.map(|g| g.destroy_device_for_test()).is_some()
    }

    /// Drop the last read's pixels (the page calls this when the user clears the result).
    #[wasm_bindgen(js_name = clearLast)]
    pub fn clear_last(&mut self) {
        self.inner.last.borrow_mut().take();
    }
}

/// Composite RGBA over white (a transparent PNG background reads as a lightbox, not as black).
fn rgba_on_white(rgba: &[u8], width: u32, height: u32) -> RgbImage {
    let mut out = Vec::with_capacity(rgba.len() / 4 * 3);
    for p in rgba.chunks_exact(4) {
        let a = p[3] as u32;
        for k in 0..3 {
            out.push(((p[k] as u32 * a + 255 * (255 - a) + 127) / 255) as u8);
        }
    }
    RgbImage::from_raw(width, height, out).expect("buffer length checked by the caller")
}
