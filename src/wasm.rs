//! The JavaScript API (wasm32 only): a `Reader` class over the reader core. Reports cross the boundary
//! through serde-wasm-bindgen as the same object the CLI prints as JSON; errors are thrown as JS `Error`s
//! carrying the stable `kind`. The page and `<xray-reader>` run this inside a Web Worker (`www/worker.js`).
//!
//! Panics: on wasm32 a panic aborts (a trap), and the instance must not be trusted afterwards. The read
//! paths catch what they can (`Reader::read` is guarded, but unwinding is not available on this target),
//! so a panic hook hands the message to `globalThis.__xrayReaderPanic` before the trap; the worker then
//! reports an `internal` error and the host re-instantiates the module (see `www/xray-reader.js`).

use image::RgbImage;
use serde::Deserialize;
use wasm_bindgen::prelude::*;

use crate::error::Error;
use crate::overlay;
use crate::reader::{ReadOptions, Reader, Reading};

/// Options accepted by `read` / `readPixels` (all optional).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct JsReadOptions {
    /// Film corners in the input's pixels (after EXIF orientation), any order.
    corners: Option<[[f32; 2]; 4]>,
    no_rotate: Option<bool>,
    name: Option<String>,
    /// "auto" | "cpu" | "webgpu"; checked by the caller, recorded here for validation only.
    backend: Option<String>,
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
    if value.is_undefined() || value.is_null() {
        return Ok(ReadOptions::default());
    }
    let o: JsReadOptions = serde_wasm_bindgen::from_value(value)
        .map_err(|e| js_error("invalid_options", &format!("invalid read options: {e}")))?;
    match o.backend.as_deref() {
        None | Some("auto") | Some("cpu") | Some("webgpu") => {}
        Some(other) => {
            return Err(js_error("invalid_options", &format!("unknown backend {other:?} (use auto, cpu or webgpu)")));
        }
    }
    Ok(ReadOptions { corners: o.corners, no_auto_rotate: o.no_rotate.unwrap_or(false), name: o.name })
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

/// Deliberately panic (and so trap). Exists only so tests can prove that the host survives a panic.
#[wasm_bindgen(js_name = __panicForTest)]
pub fn panic_for_test() {
    panic!("deliberate panic requested by a test");
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
    inner: Reader,
    last: Option<Reading>,
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
        Ok(JsReader { inner, last: None })
    }

    /// Where start-up time went (ms): manifest, checksum, parse, fold, graph, optimise, total.
    #[wasm_bindgen(js_name = loadTimings)]
    pub fn load_timings(&self) -> Result<JsValue, JsValue> {
        to_js(self.inner.load_timings())
    }

    /// What the model is: name, version, sha256, findings and thresholds, input size.
    pub fn manifest(&self) -> Result<JsValue, JsValue> {
        let m = self.inner.manifest();
        let findings: Vec<_> =
            m.findings.iter().map(|f| serde_json::json!({"label": f.label, "threshold": f.threshold})).collect();
        to_js(&serde_json::json!({
            "name": m.name, "version": m.version, "sha256": m.sha256,
            "input": {"width": m.input.width, "height": m.input.height},
            "findings": findings,
        }))
    }

    /// Read encoded image bytes (JPEG, PNG, WebP, BMP, TIFF, GIF). Returns the Report object.
    pub fn read(&mut self, bytes: &[u8], options_value: JsValue) -> Result<JsValue, JsValue> {
        let opts = options(options_value)?;
        self.last = None;
        let reading = self.inner.read(bytes, &opts).map_err(|e| to_js_error(&e))?;
        self.finish(reading, (1.0, 1.0))
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
        self.last = None;
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
        let rgb = rgba_on_white(rgba, width, height);
        let reading = self.inner.read_image(rgb, &opts).map_err(|e| to_js_error(&e))?;
        self.finish(reading, (sx, sy))
    }

    /// The last read image, upright, long side at most `max_side`: what the report's coordinates refer
    /// to (scale by `picture.width / report.image.width`).
    #[wasm_bindgen(js_name = lastImage)]
    pub fn last_image(&self, max_side: u32) -> Option<Picture> {
        let reading = self.last.as_ref()?;
        let img = overlay::display_image(reading, max_side.max(16));
        let (width, height) = img.dimensions();
        let mut rgba = Vec::with_capacity(img.len() / 3 * 4);
        for p in img.pixels() {
            rgba.extend_from_slice(&[p[0], p[1], p[2], 255]);
        }
        Some(Picture { width, height, rgba })
    }

    /// The heatmap of the last read's positive findings as a transparent layer the size of `lastImage`.
    #[wasm_bindgen(js_name = lastHeatmap)]
    pub fn last_heatmap(&self, max_side: u32) -> Option<Picture> {
        let reading = self.last.as_ref()?;
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
        let out = self.inner.infer(input).map_err(|e| to_js_error(&e))?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        Ok(vec![ms, out.probabilities.first().copied().unwrap_or(f32::NAN) as f64])
    }

    /// Drop the last read's pixels (the page calls this when the user clears the result).
    #[wasm_bindgen(js_name = clearLast)]
    pub fn clear_last(&mut self) {
        self.last = None;
    }

    fn finish(&mut self, reading: Reading, scale: (f32, f32)) -> Result<JsValue, JsValue> {
        let mut report = reading.report.clone();
        if scale != (1.0, 1.0) {
            report.scale_coordinates(scale.0, scale.1);
        }
        let value = to_js(&report)?;
        self.last = Some(reading);
        Ok(value)
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
