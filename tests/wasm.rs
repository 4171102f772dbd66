//! The wasm `Reader` class in headless Chromium (wasm-bindgen-test), on real fixture images.
//! Run: `CHROMEDRIVER=/usr/bin/chromedriver cargo test --target wasm32-unknown-unknown --no-default-features --test wasm`
//! (scripts/test.sh does it). Native builds skip this file.
#![cfg(target_arch = "wasm32")]

use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;
use xray_reader::Report;
use xray_reader::wasm::JsReader;

wasm_bindgen_test_configure!(run_in_browser);

const ONNX: &[u8] = include_bytes!("../models/xray-reader.onnx");
const MANIFEST: &[u8] = include_bytes!("../models/xray-reader.manifest.json");

fn reader() -> JsReader {
    JsReader::from_bytes(ONNX, MANIFEST, None).expect("bundled model loads")
}

fn report(v: JsValue) -> Report {
    serde_wasm_bindgen::from_value(v).expect("the JS report is the Rust Report")
}

/// Read options `{backend}` as a plain JS object, as a page passes them.
fn opts(backend: &str) -> JsValue {
    let o = js_sys::Object::new();
    js_sys::Reflect::set(&o, &"backend".into(), &backend.into()).unwrap();
    o.into()
}

fn kind(err: JsValue) -> String {
    js_sys::Reflect::get(&err, &"kind".into()).ok().and_then(|k| k.as_string()).unwrap_or_default()
}

#[wasm_bindgen_test]
fn clear_cases_land_on_the_right_side_in_the_browser() {
    let mut r = reader();
    let sick = report(r.read(include_bytes!("fixtures/nih-pneumonia.jpg"), JsValue::UNDEFINED).unwrap());
    let well = report(r.read(include_bytes!("fixtures/kermany-normal.jpeg"), JsValue::UNDEFINED).unwrap());
    assert!(sick.accepted && sick.findings[0].positive, "{:?}", sick.findings[0]);
    assert!(well.accepted && !well.findings[0].positive, "{:?}", well.findings[0]);
    assert_eq!(sick.engine, "cpu");
    // the heatmap layer exists for the positive read and matches the display image's size
    r.read(include_bytes!("fixtures/nih-pneumonia.jpg"), JsValue::UNDEFINED).unwrap();
    let img = r.last_image(256).unwrap();
    let heat = r.last_heatmap(256).unwrap();
    assert_eq!((img.width(), img.height()), (heat.width(), heat.height()));
    assert!(heat.into_rgba().chunks(4).any(|p| p[3] > 0));
}

#[wasm_bindgen_test]
fn a_photo_is_flattened_and_pixels_with_an_original_size_report_original_coordinates() {
    let mut r = reader();
    let bytes = include_bytes!("fixtures/photo-nih-pneumonia.jpg");
    let full = report(r.read(bytes, JsValue::UNDEFINED).unwrap());
    assert!(full.film.detected);
    // the same photo given as half-size pixels that stand for the full-size original
    let img = image::load_from_memory(bytes).unwrap().to_rgba8();
    let (w, h) = img.dimensions();
    let half = image::imageops::resize(&img, w / 2, h / 2, image::imageops::FilterType::Triangle);
    let small = report(r.read_pixels(half.as_raw(), w / 2, h / 2, w, h, JsValue::UNDEFINED).unwrap());
    assert_eq!((small.image.width, small.image.height), (w, h));
    for (a, b) in small.film.corners.iter().zip(full.film.corners.iter()) {
        assert!((a[0] - b[0]).abs() < 0.03 * w as f32 && (a[1] - b[1]).abs() < 0.03 * h as f32, "{a:?} vs {b:?}");
    }
    assert_eq!(small.findings[0].positive, full.findings[0].positive);
}

#[wasm_bindgen_test]
fn bad_inputs_throw_errors_with_kinds_and_the_reader_goes_on() {
    let mut r = reader();
    assert_eq!(kind(r.read(&[], JsValue::UNDEFINED).unwrap_err()), "empty");
    assert_eq!(
        kind(r.read(&include_bytes!("fixtures/nih-normal.jpg")[..4000], JsValue::UNDEFINED).unwrap_err()),
        "corrupt"
    );
    assert_eq!(kind(r.read_pixels(&[0; 10], 4, 4, 0, 0, JsValue::UNDEFINED).unwrap_err()), "corrupt");
    let opts = js_sys::JSON::parse(r#"{"backend":"quantum"}"#).unwrap();
    assert_eq!(kind(r.read(include_bytes!("fixtures/nih-normal.jpg"), opts).unwrap_err()), "invalid_options");
    let astronaut = report(r.read(include_bytes!("fixtures/not-xray-astronaut.jpg"), JsValue::UNDEFINED).unwrap());
    assert!(!astronaut.accepted);
    let ok = report(r.read(include_bytes!("fixtures/nih-normal.jpg"), JsValue::UNDEFINED).unwrap());
    assert!(ok.accepted);
}

#[wasm_bindgen_test]
fn a_tampered_model_is_refused() {
    let mut bad = ONNX.to_vec();
    let n = bad.len() / 2;
    bad[n] ^= 0xff;
    let err = JsReader::from_bytes(&bad, MANIFEST, None).err().expect("checksum mismatch refused");
    assert_eq!(kind(err), "checksum");
    // a digest computed by the caller (the worker uses WebCrypto) is still held against the manifest
    let wrong = xray_reader::reader::sha256_hex(&bad);
    let err = JsReader::from_bytes(ONNX, MANIFEST, Some(wrong)).err().expect("wrong digest refused");
    assert_eq!(kind(err), "checksum");
    let right = xray_reader::reader::sha256_hex(ONNX).to_uppercase();
    assert!(JsReader::from_bytes(ONNX, MANIFEST, Some(right)).is_ok(), "hex case does not matter");
}

/// The WebGPU engine (SwiftShader's CPU emulation under `--enable-unsafe-webgpu`, see webdriver.json) against
/// the CPU engine on fixture films: raw outputs, then whole reads through the JS class.
#[wasm_bindgen_test]
async fn the_webgpu_engine_matches_the_cpu_engine_on_fixture_films() {
    use xray_reader::engine::webgpu::GpuEngine;
    let manifest = xray_reader::manifest::Manifest::from_json(MANIFEST).unwrap();
    let gpu = GpuEngine::new(ONNX, &manifest).await.expect("WebGPU starts (Chromium with --enable-unsafe-webgpu)");
    let cpu = xray_reader::Reader::from_bytes(ONNX, MANIFEST).unwrap();
    let fixtures: [&[u8]; 3] = [
        include_bytes!("fixtures/kermany-normal.jpeg"),
        include_bytes!("fixtures/nih-pneumonia.jpg"),
        include_bytes!("fixtures/photo-nih-normal.jpg"),
    ];
    for bytes in fixtures {
        let image = xray_reader::decode::decode(bytes, &Default::default()).unwrap();
        let input = xray_reader::preprocess::to_input(&xray_reader::preprocess::luma(&image), &manifest.input);
        let want = cpu.infer(&input).unwrap();
        let got = gpu.infer(&input).await.expect("the GPU runs the model");
        let diff = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(
            diff(&got.probabilities, &want.probabilities) <= 1e-3,
            "{:?} vs {:?}",
            got.probabilities,
            want.probabilities
        );
        assert!(diff(&got.orientation, &want.orientation) <= 1e-3);
        assert!((got.inverted - want.inverted).abs() <= 1e-3);
        assert_eq!((got.cam_height, got.cam_width), (want.cam_height, want.cam_width));
        let n = got.cam.len() as f32;
        let (ma, mb) = (got.cam.iter().sum::<f32>() / n, want.cam.iter().sum::<f32>() / n);
        let cov: f32 = got.cam.iter().zip(&want.cam).map(|(a, b)| (a - ma) * (b - mb)).sum();
        let va: f32 = got.cam.iter().map(|a| (a - ma) * (a - ma)).sum();
        let vb: f32 = want.cam.iter().map(|b| (b - mb) * (b - mb)).sum();
        let corr = cov / (va * vb).sqrt();
        assert!(corr >= 0.999, "CAM correlation {corr}");
    }

    // through the JS class: start, self-check, then a read that asks for WebGPU says it ran there
    let r = reader();
    r.start_webgpu(ONNX.to_vec()).await.expect("startWebGpu resolves");
    let check = r.gpu_check(1).await.expect("gpuCheck resolves");
    assert_eq!(js_sys::Reflect::get(&check, &"passed".into()).unwrap(), JsValue::TRUE);
    let bytes = include_bytes!("fixtures/rotated-90cw-nih-normal.png").to_vec();
    let on_gpu = report(r.read_async(bytes.clone(), opts("webgpu")).unwrap().await.unwrap());
    let on_cpu = report(r.read_async(bytes, opts("cpu")).unwrap().await.unwrap());
    assert_eq!((on_gpu.engine.as_str(), on_cpu.engine.as_str()), ("webgpu", "cpu"));
    assert!(on_gpu.engine_note.is_none());
    assert!(on_gpu.orientation.corrected && on_cpu.orientation.corrected, "the second pass ran on each engine");
    assert!((on_gpu.findings[0].probability - on_cpu.findings[0].probability).abs() <= 1e-3);
}

#[wasm_bindgen_test]
async fn asking_for_webgpu_before_it_runs_reads_on_the_cpu_and_says_why() {
    let r = reader();
    let rep = report(
        r.read_async(include_bytes!("fixtures/nih-normal.jpg").to_vec(), opts("webgpu")).unwrap().await.unwrap(),
    );
    assert_eq!(rep.engine, "cpu");
    assert!(rep.engine_note.unwrap().contains("not started"));
    assert_eq!(kind(r.set_backend("webgpu").unwrap_err()), "backend_unavailable");
}
