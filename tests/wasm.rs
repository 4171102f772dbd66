//! The wasm `Reader` class in headless Chromium (wasm-bindgen-test), on real fixture images.
//! Run: `CHROMEDRIVER=/usr/bin/chromedriver cargo test --target wasm32-unknown-unknown --no-default-features --test wasm`
//! (scripts/test.sh runs it with `--profile web` and each wasm build's flags, as the page is built). Native builds
//! skip this file.
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
    use xray_reader::engine::check::correlation;
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
        let corr = correlation(&got.cam, &want.cam);
        assert!(corr >= 0.999, "CAM correlation {corr}");
        let (oa, ob) = (got.opacity.as_deref().unwrap_or_default(), want.opacity.as_deref().unwrap_or_default());
        assert!(!ob.is_empty() && oa.len() == ob.len(), "the GPU returns the opacity map");
        let corr = correlation(oa, ob);
        assert!(corr >= 0.999, "opacity map correlation {corr}");
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

/// The browser build's own f32 GEMM kernel (src/engine/wasm_gemm.rs) against a scalar model of every fused
/// operation tract can hand it: a 4×8 tile of A·B (k = 37) followed by one operation, stored both
/// row-major and transposed.
#[wasm_bindgen_test]
fn the_gemm_kernel_matches_a_scalar_model_of_each_fused_operation() {
    use tract_linalg::mmm::{FusedKerSpec as S, OutputStoreKer};
    const K: usize = 37;
    let mut seed = 7u32;
    let mut rnd = move || {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (seed >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0
    };
    let a: Vec<f32> = (0..K * 4).map(|_| rnd()).collect(); // packed: k-major, 4 rows per k
    let b: Vec<f32> = (0..K * 8).map(|_| rnd()).collect(); // packed: k-major, 8 columns per k
    let rows: Vec<f32> = (0..4).map(|_| rnd()).collect();
    let cols: Vec<f32> = (0..8).map(|_| rnd()).collect();
    let other: Vec<f32> = (0..32).map(|_| rnd()).collect(); // a 4×8 tile, row-major
    let tile_rm: Vec<f32> = (0..32).map(|_| rnd()).collect(); // LoadTile's row-major operand
    let mut product = [[0f32; 8]; 4];
    for (r, row) in product.iter_mut().enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            *v = (0..K).fold(0.0, |s, k| s + a[k * 4 + r] * b[k * 8 + c]);
        }
    }
    // a 4×8 f32 tile at `ptr`: row-major (32-byte rows) or transposed (4-byte rows, 16-byte columns)
    let tile = |ptr: *mut u8, transposed: bool| {
        let (row_byte_stride, col_byte_stride) = if transposed { (4, 16) } else { (32, 4) };
        OutputStoreKer { ptr, row_byte_stride, col_byte_stride, item_size: 4 }
    };
    /// The operands an operation reads besides the accumulator, for the scalar models.
    struct Operands<'a> {
        rows: &'a [f32],
        cols: &'a [f32],
        other: &'a [f32],
        tile: &'a [f32],
    }
    let data = Operands { rows: &rows, cols: &cols, other: &other, tile: &tile_rm };
    const SC: f32 = 0.25;
    type Model = fn(&Operands, usize, usize, f32) -> f32;
    let (rp, cp, ot) = (rows.as_ptr(), cols.as_ptr(), other.as_ptr() as *mut u8);
    let cases: Vec<(&str, S<f32>, Model)> = vec![
        ("none", S::Done, |_, _, _, x| x),
        ("ScalarMin", S::ScalarMin(SC), |_, _, _, x| x.min(SC)),
        ("ScalarMax", S::ScalarMax(SC), |_, _, _, x| x.max(SC)),
        ("ScalarAdd", S::ScalarAdd(SC), |_, _, _, x| x + SC),
        ("ScalarMul", S::ScalarMul(SC), |_, _, _, x| x * SC),
        ("ScalarSub", S::ScalarSub(SC), |_, _, _, x| SC - x),
        ("ScalarSubF", S::ScalarSubF(SC), |_, _, _, x| x - SC),
        ("LeakyRelu", S::LeakyRelu(SC), |_, _, _, x| if x > 0.0 { x } else { SC * x }),
        ("PerRowMin", S::PerRowMin(rp), |d, r, _, x| x.min(d.rows[r])),
        ("PerRowMax", S::PerRowMax(rp), |d, r, _, x| x.max(d.rows[r])),
        ("PerRowAdd", S::PerRowAdd(rp), |d, r, _, x| x + d.rows[r]),
        ("PerRowMul", S::PerRowMul(rp), |d, r, _, x| x * d.rows[r]),
        ("PerRowSub", S::PerRowSub(rp), |d, r, _, x| d.rows[r] - x),
        ("PerRowSubF", S::PerRowSubF(rp), |d, r, _, x| x - d.rows[r]),
        ("PerColMin", S::PerColMin(cp), |d, _, c, x| x.min(d.cols[c])),
        ("PerColMax", S::PerColMax(cp), |d, _, c, x| x.max(d.cols[c])),
        ("PerColAdd", S::PerColAdd(cp), |d, _, c, x| x + d.cols[c]),
        ("PerColMul", S::PerColMul(cp), |d, _, c, x| x * d.cols[c]),
        ("PerColSub", S::PerColSub(cp), |d, _, c, x| d.cols[c] - x),
        ("PerColSubF", S::PerColSubF(cp), |d, _, c, x| x - d.cols[c]),
        ("AddRowColProducts", S::AddRowColProducts(rp, cp), |d, r, c, x| x + d.rows[r] * d.cols[c]),
        ("AddUnicast", S::AddUnicast(tile(ot, false)), |d, r, c, x| x + d.other[r * 8 + c]),
        ("AddUnicast transposed", S::AddUnicast(tile(ot, true)), |d, r, c, x| x + d.other[c * 4 + r]),
        ("RoundingShiftRight", S::RoundingShiftRight(2, tract_linalg::mmm::RoundingPolicy::Even), |_, _, _, x| x / 4.0),
        ("ShiftLeft", S::ShiftLeft(3), |_, _, _, x| x * 8.0),
        ("LoadTile", S::LoadTile(std::ptr::null(), tile_rm.as_ptr()), |d, r, c, _| d.tile[r * 8 + c]),
    ];
    let kernel = &*xray_reader::engine::wasm_gemm::F32_4X8;
    for (name, op, model) in &cases {
        for transposed in [false, true] {
            let mut out = vec![f32::NAN; 32];
            let store = tile(out.as_mut_ptr() as *mut u8, transposed);
            let mut spec = vec![
                S::Clear,
                S::AddMatMul { k: K, pa: a.as_ptr() as *const u8, pb: b.as_ptr() as *const u8, packing: 0 },
            ];
            if !matches!(op, S::Done) {
                spec.push(*op);
            }
            spec.extend([S::Store(store), S::Done]);
            let rc = unsafe { (kernel.kernel)(&spec) };
            assert_eq!(rc, 0, "{name}");
            for r in 0..4 {
                for c in 0..8 {
                    let got = if transposed { out[c * 4 + r] } else { out[r * 8 + c] };
                    let want = model(&data, r, c, product[r][c]);
                    assert!(
                        (got - want).abs() <= 1e-5 * (1.0 + want.abs()),
                        "{name} (transposed {transposed}) [{r}][{c}]: {got} vs {want}"
                    );
                }
            }
        }
    }
}

/// tract's dispatch picks that kernel for the model's matrix products (and leaves matrix-vector products alone).
#[wasm_bindgen_test]
fn tract_runs_f32_matrix_products_on_the_readers_kernel() {
    use tract_linalg::mmm::{MmmDispatch, Query};
    use xray_reader::engine::wasm_gemm::KERNEL_NAME;
    let pick = |m, k, n| {
        MmmDispatch::native()
            .pick(&Query::plain(tract_onnx::prelude::DatumType::F32, Some(m), Some(k), Some(n)))
            .unwrap()
            .0
            .name()
            .to_string()
    };
    assert_eq!(pick(1152, 192, 196), KERNEL_NAME);
    assert_eq!(pick(16, 32, 12544), KERNEL_NAME);
    assert_ne!(pick(1280, 320, 1), KERNEL_NAME);
}
