//! The page's GPU kernels (src/engine/wgsl, the step words of src/engine/kernels.rs) run natively through wgpu
//! (feature `native-gpu`): on fixture films they agree with the CPU engine as the browser's self-check
//! demands (probabilities within 1e-3, CAM correlation ≥ 0.999), and a whole read on the GPU engine says
//! what the CPU read says. Needs a Vulkan adapter, software ones accepted: `.ci/run` installs Mesa's lavapipe
//! and sets XRAY_REQUIRE_GPU=1, so that there a missing adapter fails the test; elsewhere it is reported and
//! the test passes without running.
#![cfg(feature = "native-gpu")]

mod common;

use std::sync::Arc;

use xray_reader::engine::Engine;
use xray_reader::engine::check::correlation;
use xray_reader::engine::native_gpu::{AdapterChoice, NativeGpuEngine};
use xray_reader::reader::BUNDLED_ONNX;
use xray_reader::{Error, ReadOptions, Reader};

fn gpu_or_skip(reader: &Reader) -> Option<NativeGpuEngine> {
    let mut timings = Default::default();
    match NativeGpuEngine::new(BUNDLED_ONNX, reader.manifest(), AdapterChoice::Any, &mut timings) {
        Ok(engine) => {
            eprintln!("GPU adapter: {:?}", engine.adapter);
            Some(engine)
        }
        Err(e) if std::env::var_os("XRAY_REQUIRE_GPU").is_none() => {
            eprintln!("skipped: no GPU engine here ({e}); set XRAY_REQUIRE_GPU=1 to make this a failure");
            None
        }
        Err(e) => panic!("XRAY_REQUIRE_GPU is set but the GPU engine cannot start: {e}"),
    }
}

#[test]
fn gpu_kernels_agree_with_the_cpu_engine_on_fixture_films() {
    let cpu = Reader::bundled().unwrap();
    let Some(gpu) = gpu_or_skip(&cpu) else { return };
    for name in ["nih-normal.jpg", "kermany-pneumonia.jpeg", "photo-nih-pneumonia.jpg"] {
        let input = cpu.begin_bytes(&common::bytes(name), &ReadOptions::default()).unwrap().input;
        let (a, b) = (cpu.infer(&input).unwrap(), gpu.infer(&input).unwrap());
        for (p, q) in a.probabilities.iter().zip(&b.probabilities) {
            assert!((p - q).abs() < 1e-3, "{name}: probability {q} on the GPU, {p} on the CPU");
        }
        assert_eq!((a.cam_height, a.cam_width), (b.cam_height, b.cam_width));
        for k in 0..a.probabilities.len() {
            let r = f64::from(correlation(a.cam_of(k), b.cam_of(k)));
            assert!(r >= 0.999, "{name}: CAM {k} correlates {r} with the CPU's");
        }
        let (oa, ob) = (a.opacity.as_deref().unwrap_or_default(), b.opacity.as_deref().unwrap_or_default());
        assert_eq!(oa.len(), ob.len(), "{name}: both engines return the opacity map");
        let r = f64::from(correlation(oa, ob));
        assert!(r >= 0.999, "{name}: opacity map correlates {r} with the CPU's");
        for (p, q) in a.orientation.iter().zip(&b.orientation) {
            assert!((p - q).abs() < 1e-3, "{name}: orientation {q} on the GPU, {p} on the CPU");
        }
        assert!((a.inverted - b.inverted).abs() < 1e-3, "{name}: inverted {} vs {}", b.inverted, a.inverted);
        let scale = a.embedding.iter().fold(0f32, |m, x| m.max(x.abs()));
        let worst = a.embedding.iter().zip(&b.embedding).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(worst <= 1e-3 * scale.max(1.0), "{name}: embedding differs by {worst} (largest value {scale})");
    }
    // a wrong input is a typed error, not a crash or a GPU validation panic
    assert!(matches!(gpu.infer(&[0.0; 7]), Err(Error::Inference(_))));
}

#[test]
fn a_read_on_the_gpu_engine_reports_what_the_cpu_read_reports() {
    let cpu = Reader::bundled().unwrap();
    let Some(engine) = gpu_or_skip(&cpu) else { return };
    let gpu = Reader::bundled().unwrap().with_accelerator(Ok(Box::new(engine)));
    let bytes = common::bytes("photo-nih-pneumonia.jpg");
    let (a, b) =
        (cpu.read(&bytes, &ReadOptions::default()).unwrap(), gpu.read(&bytes, &ReadOptions::default()).unwrap());
    assert_eq!((a.report.engine.as_str(), b.report.engine.as_str()), ("cpu", "gpu"));
    assert_eq!(b.report.engine_note, None);
    assert!(a.report.accepted && b.report.accepted, "the photo is read on both engines");
    assert_eq!(a.report.findings.len(), b.report.findings.len());
    for (f, g) in a.report.findings.iter().zip(&b.report.findings) {
        assert_eq!(f.positive, g.positive, "{}: the engines disagree on the call", f.label);
        assert!((f.probability - g.probability).abs() < 1e-3, "{}: {} vs {}", f.label, g.probability, f.probability);
        assert_eq!(f.regions.len(), g.regions.len(), "{}: the highlighted regions differ in number", f.label);
    }
}

/// A GPU lost mid-batch (a driver reset) costs no read: the read that meets it and every later one complete
/// on the CPU, each saying why.
#[test]
fn a_lost_gpu_device_leaves_the_reads_to_the_cpu_with_a_note() {
    let cpu = Reader::bundled().unwrap();
    let Some(engine) = gpu_or_skip(&cpu) else { return };
    let engine = Arc::new(engine);
    let gpu = Reader::bundled().unwrap().with_accelerator(Ok(Box::new(engine.clone())));
    let bytes = common::bytes("nih-pneumonia.jpg");
    let opts = ReadOptions::default();
    let first = gpu.read(&bytes, &opts).unwrap();
    assert_eq!(first.report.engine, "gpu");
    engine.destroy_device_for_test();
    let expected = cpu.read(&bytes, &opts).unwrap();
    for _ in 0..2 {
        let r = gpu.read(&bytes, &opts).unwrap();
        assert_eq!(r.report.engine, "cpu");
        let note = r.report.engine_note.as_deref().unwrap_or_default();
        assert!(note.contains("gpu engine failed") && note.contains("read on the CPU"), "{note}");
        assert_eq!(r.report.findings, expected.report.findings, "the read is the CPU's own");
    }
    assert!(gpu.accelerator_note().is_some());
}

/// `--engine auto`: the GPU engine passes the self-check against the CPU; it reads only when it is faster (a
/// software Vulkan never is), and a reader that kept the CPU says nothing about it in its reports.
#[test]
fn the_self_check_passes_and_the_faster_engine_reads() {
    let cpu = Reader::bundled().unwrap();
    let Some(engine) = gpu_or_skip(&cpu) else { return };
    let (reader, check) = Reader::bundled().unwrap().with_checked_accelerator(Box::new(engine), 1);
    let agreement = check.agreement.expect("both check passes ran");
    assert!(agreement.passed(), "{agreement:?}");
    let (cpu_ms, gpu_ms) = (check.cpu_ms.unwrap(), check.accelerator_ms.unwrap());
    assert_eq!(check.chosen, gpu_ms < cpu_ms, "{check:?}");
    let r = reader.read(&common::bytes("kermany-normal.jpeg"), &ReadOptions::default()).unwrap();
    assert_eq!(r.report.engine, if check.chosen { "gpu" } else { "cpu" });
    assert_eq!(r.report.engine_note, None);
}
