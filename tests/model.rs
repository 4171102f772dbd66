//! The shipped model: integrity, shape of its outputs, and what it says about clear cases.

mod common;
use common::*;
use xray_reader::Reader;
use xray_reader::reader::{BUNDLED_MANIFEST, BUNDLED_ONNX, sha256_hex};

#[test]
fn manifest_checksum_matches_the_shipped_file() {
    let m: serde_json::Value = serde_json::from_slice(BUNDLED_MANIFEST).unwrap();
    assert_eq!(m["sha256"].as_str().unwrap(), sha256_hex(BUNDLED_ONNX));
    let on_disk = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/models/xray-reader.onnx")).unwrap();
    assert_eq!(on_disk, BUNDLED_ONNX, "the embedded model is the one in models/");
    assert!(BUNDLED_ONNX.len() <= 6 * 1024 * 1024, "model is at most 6 MB");
}

#[test]
fn one_pass_gives_probabilities_cams_and_checks() {
    let r = reader();
    let spec = &r.manifest().input;
    let out = r.infer(&vec![0.3; (spec.width * spec.height) as usize]).unwrap();
    assert_eq!(out.probabilities.len(), r.manifest().findings.len());
    assert_eq!(r.manifest().findings[0].label, "abnormal");
    // output stride 16: a 14x14 map for a 224 px input, before any upsampling
    let side = (spec.width / 16) as usize;
    assert_eq!((out.cam_height, out.cam_width), (side, side), "CAM is the last-stage grid");
    assert_eq!(out.cam.len(), r.manifest().findings.len() * side * side);
    assert_eq!(out.orientation.len(), 4);
    assert!((out.orientation.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    // the opacity map (model 1.5.0 on) lies on the CAM's grid
    assert!(r.manifest().outputs.opacity.is_some(), "the shipped model has an opacity head");
    assert_eq!(out.opacity.as_ref().map(Vec::len), Some(side * side), "opacity map on the CAM's grid");
    // the CAM holds per-location logits: their mean is the finding's logit
    let mean = out.cam_of(0).iter().sum::<f32>() / (side * side) as f32;
    let p = 1.0 / (1.0 + (-mean).exp());
    assert!((p - out.probabilities[0]).abs() < 1e-3, "sigmoid(mean CAM) {p} vs probability {}", out.probabilities[0]);
}

#[test]
fn clear_normals_and_abnormals_land_on_the_right_side() {
    for (name, want) in [
        ("kermany-normal.jpeg", false),
        ("kermany-pneumonia.jpeg", true),
        ("nih-normal.jpg", false),
        ("nih-pneumonia.jpg", true),
    ] {
        let r = read(name);
        let f = abnormal(&r);
        assert!(r.report.accepted, "{name} refused: {:?}", r.report.quality);
        assert_eq!(f.positive, want, "{name}: probability {} threshold {}", f.probability, f.threshold);
        assert_eq!(f.regions.is_empty(), !want, "{name}: regions only when positive");
        let (w, h) = (r.report.image.width as f32, r.report.image.height as f32);
        assert!(f.peak[0] >= 0.0 && f.peak[0] <= w && f.peak[1] >= 0.0 && f.peak[1] <= h);
        if let Some(g) = f.regions.first() {
            let [x, y] = f.peak;
            assert!(
                g.x <= x && x <= g.x + g.w && g.y <= y && y <= g.y + g.h,
                "{name}: the first region holds the peak"
            );
        }
        assert!(!r.report.film.detected, "{name} is a bare radiograph: no film should be found in it");
    }
}

#[test]
fn a_tampered_model_is_refused() {
    let mut bad = BUNDLED_ONNX.to_vec();
    let n = bad.len();
    bad[n / 2] ^= 0x55;
    match Reader::from_bytes(&bad, BUNDLED_MANIFEST) {
        Err(e) => assert_eq!(e.kind(), "checksum"),
        Ok(_) => panic!("tampered model accepted"),
    }
}

#[test]
fn a_manifest_that_does_not_match_the_model_is_refused() {
    let mut m: serde_json::Value = serde_json::from_slice(BUNDLED_MANIFEST).unwrap();
    m["outputs"]["cam"] = "heatmap".into();
    let e = Reader::from_bytes(BUNDLED_ONNX, &serde_json::to_vec(&m).unwrap()).err().expect("refused");
    assert_eq!(e.kind(), "model_mismatch", "{e}");

    let mut m: serde_json::Value = serde_json::from_slice(BUNDLED_MANIFEST).unwrap();
    m["ood"]["mean"] = serde_json::json!([0.0, 1.0]);
    m["ood"]["components"] = serde_json::json!([[1.0, 0.0]]);
    m["ood"]["variances"] = serde_json::json!([1.0]);
    let e = Reader::from_bytes(BUNDLED_ONNX, &serde_json::to_vec(&m).unwrap()).err().expect("refused");
    assert_eq!(e.kind(), "model_mismatch", "{e}");

    let mut m: serde_json::Value = serde_json::from_slice(BUNDLED_MANIFEST).unwrap();
    m["outputs"]["opacity"] = "lesions".into();
    let e = Reader::from_bytes(BUNDLED_ONNX, &serde_json::to_vec(&m).unwrap()).err().expect("refused");
    assert_eq!(e.kind(), "model_mismatch", "an opacity output the model lacks: {e}");

    // a manifest that does not name the opacity output still loads: the map is the CAM alone (models before 1.5.0)
    let mut m: serde_json::Value = serde_json::from_slice(BUNDLED_MANIFEST).unwrap();
    m["outputs"].as_object_mut().unwrap().remove("opacity");
    let five = Reader::from_bytes(BUNDLED_ONNX, &serde_json::to_vec(&m).unwrap()).expect("five outputs load");
    let input = vec![0.3; (m["input"]["width"].as_u64().unwrap() * m["input"]["height"].as_u64().unwrap()) as usize];
    let (a, b) = (five.infer(&input).unwrap(), reader().infer(&input).unwrap());
    assert!(a.opacity.is_none() && b.opacity.is_some());
    assert_eq!((a.probabilities, a.cam), (b.probabilities, b.cam));

    let e = Reader::from_bytes(BUNDLED_ONNX, b"{not json").err().expect("refused");
    assert_eq!(e.kind(), "manifest");
    let e = Reader::from_bytes(b"garbage", BUNDLED_MANIFEST).err().expect("refused");
    assert_eq!(e.kind(), "checksum");
}

#[test]
fn folding_the_int8_weights_at_load_gives_what_tracts_own_dequantization_gives() {
    use tract_onnx::prelude::*;
    let r = reader();
    let spec = &r.manifest().input;
    let (w, h) = (spec.width as usize, spec.height as usize);
    let input: Vec<f32> = (0..w * h)
        .map(|i| (0.5 + 0.4 * ((i / w) as f32 / 7.0).sin() * ((i % w) as f32 / 11.0).cos()).clamp(0.0, 1.0))
        .collect();
    let ours = r.infer(&input).unwrap();
    // tract alone, on the unmodified file: DequantizeLinear handled by tract's own ops
    let plan = tract_onnx::onnx()
        .model_for_read(&mut std::io::Cursor::new(BUNDLED_ONNX))
        .unwrap()
        .with_input_fact(0, f32::fact([1, 1, h, w]).into())
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let x = tract_ndarray::Array4::from_shape_vec([1, 1, h, w], input).unwrap();
    let out = plan.run(tvec!(Tensor::from(x).into())).unwrap();
    let values = |k: usize| out[k].to_plain_array_view::<f32>().unwrap().iter().copied().collect::<Vec<f32>>();
    let close = |a: &[f32], b: &[f32], tol: f32, what: &str| {
        assert_eq!(a.len(), b.len(), "{what}");
        let worst = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(worst <= tol, "{what}: max difference {worst}");
    };
    close(&ours.probabilities, &values(0), 1e-5, "probabilities");
    close(&ours.cam, &values(1), 1e-3, "cam");
    close(&ours.orientation, &values(2), 1e-5, "orientation");
    close(&ours.embedding, &values(4), 1e-3, "embedding");
    close(ours.opacity.as_deref().expect("opacity map"), &values(5), 1e-3, "opacity");
}

/// The CPU engine's plan runs its depthwise convolutions (all but the first) on batch-free tensors (natively
/// channels, height, width; the wasm build's plan puts channels last), the layout tract's full optimisation gives
/// (its `ChangeAxes` pass). With the ONNX file's own layout (a batch axis in front, channels first), tract's wasm
/// depthwise convolution is several times slower and the browser's model step lost its lead over
/// onnxruntime-web (ratio 0.68 → 0.87–0.98; BENCHMARKS.md sessions 20 and 26). Natively both layouts run at the
/// same speed, so only this check, or a browser benchmark, notices when a change to the optimisation loses it.
#[test]
fn the_cpu_engines_plan_runs_depthwise_convolutions_batch_free() {
    use xray_reader::engine::{LoadTimings, cpu, typed_model};
    let r = reader();
    let typed = typed_model(BUNDLED_ONNX, r.manifest(), &mut LoadTimings::default()).unwrap();
    let plan = cpu::optimise(typed).unwrap();
    let depthwise: Vec<_> = plan.nodes().iter().filter(|n| n.op.name().contains("DepthWise")).collect();
    assert!(depthwise.len() >= 16, "EfficientNet-Lite0 has 16 depthwise convolutions, found {}", depthwise.len());
    let batched: Vec<String> = depthwise
        .iter()
        .filter(|n| plan.outlet_fact(n.inputs[0]).unwrap().rank() != 3)
        .map(|n| format!("{} {:?}", n.name, plan.outlet_fact(n.inputs[0]).unwrap().shape))
        .collect();
    // the stem's first one keeps its batch axis in tract's own pipeline too
    assert!(batched.len() <= 1, "depthwise convolutions on batched inputs: {batched:?}");
}

/// The CPU engine declutters in two rounds (`engine::declutter`); on the fixture films' inputs its plan must give
/// what tract's `into_optimized` gives on the same graph (bitwise on the machines measured; the check allows a
/// relative 1e-6 in case another CPU's kernels round differently), and have the same ops on the same shapes.
#[test]
fn the_cpu_engines_optimisation_computes_what_tracts_own_one_computes() {
    use tract_onnx::prelude::*;
    use xray_reader::engine::{LoadTimings, cpu, typed_model};
    use xray_reader::reader::ReadOptions;
    let r = reader();
    let i = &r.manifest().input;
    let shape = [1, 1, i.height as usize, i.width as usize];
    let typed = || typed_model(BUNDLED_ONNX, r.manifest(), &mut LoadTimings::default()).unwrap();
    let (ours, tracts) = (cpu::optimise(typed()).unwrap(), typed().into_optimized().unwrap());
    let ops = |m: &TypedModel| {
        let mut ops: Vec<String> = m
            .nodes()
            .iter()
            .map(|n| format!("{} {:?}", n.op.name(), n.outputs.iter().map(|o| &o.fact.shape).collect::<Vec<_>>()))
            .collect();
        ops.sort();
        ops
    };
    assert_eq!(ops(&ours), ops(&tracts), "the same ops on the same shapes");
    let (ours, tracts) = (ours.into_runnable().unwrap(), tracts.into_runnable().unwrap());
    for name in meta()["films"].as_object().unwrap().keys() {
        let input = r.begin_bytes(&bytes(name), &ReadOptions::default()).unwrap().input;
        let x: Tensor = tract_ndarray::Array4::from_shape_vec(shape, input).unwrap().into();
        let (a, b) = (ours.run(tvec!(x.clone().into())).unwrap(), tracts.run(tvec!(x.into())).unwrap());
        assert_eq!(a.len(), b.len());
        for (k, (a, b)) in a.iter().zip(b.iter()).enumerate() {
            let (a, b) = (a.to_plain_array_view::<f32>().unwrap(), b.to_plain_array_view::<f32>().unwrap());
            assert_eq!(a.shape(), b.shape(), "{name}: output {k}");
            let worst = a.iter().zip(b.iter()).map(|(x, y)| (x - y).abs() / (1.0 + y.abs())).fold(0.0f32, f32::max);
            assert!(worst <= 1e-6, "{name}: output {k} differs by {worst}");
        }
    }
}

#[test]
fn the_reader_agrees_with_onnxruntime_on_the_fixture_films() {
    // fixtures.json: onnxruntime (Python) on the training pipeline's own preprocessing of the same files;
    // the model card quotes this agreement (within 0.001)
    let meta = meta();
    for (name, film) in meta["films"].as_object().unwrap() {
        let want = film["probability_onnxruntime"].as_f64().unwrap() as f32;
        let got = abnormal(&read(name)).probability;
        assert!((got - want).abs() < 0.001, "{name}: reader {got} vs onnxruntime {want}");
    }
}

/// The WebGPU engine runs `engine::plan` step for step as `engine::reference` does; this holds the lowering
/// of the shipped model (every op, shape, stride and constant) to what tract computes.
#[test]
fn the_gpu_plan_computes_what_tract_computes() {
    use xray_reader::engine::{plan::Plan, reference};
    let manifest = xray_reader::manifest::Manifest::from_json(BUNDLED_MANIFEST).unwrap();
    let plan = Plan::load(BUNDLED_ONNX, &manifest).expect("every op of the shipped model has a GPU kernel");
    // activations share buffers by lifetime: GPU memory for them stays phone-sized (119 MB unshared)
    let (activations, _) = plan.floats();
    assert!(activations * 4 < 16_000_000, "{} MB of activations", activations * 4 / 1_000_000);
    let reader = Reader::bundled().unwrap();
    for name in ["kermany-normal.jpeg", "nih-pneumonia.jpg"] {
        let image = xray_reader::decode::decode(&bytes(name), &Default::default()).unwrap();
        let input = xray_reader::preprocess::to_input(&xray_reader::preprocess::luma(&image), &manifest.input);
        let cpu = reader.infer(&input).unwrap();
        let outs = reference::run(&plan, &input).unwrap();
        let spec = xray_reader::engine::OutputSpec::of(&manifest);
        let got = spec.raw_outputs(outs).unwrap();
        let close =
            |a: &[f32], b: &[f32], tol: f32| a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol * (1.0 + y.abs()));
        assert!(
            close(&got.probabilities, &cpu.probabilities, 1e-4),
            "{name}: {:?} vs {:?}",
            got.probabilities,
            cpu.probabilities
        );
        assert!(close(&got.cam, &cpu.cam, 1e-3), "{name}: CAM differs");
        assert!(close(&got.orientation, &cpu.orientation, 1e-4), "{name}: orientation differs");
        assert!(close(&got.embedding, &cpu.embedding, 1e-3), "{name}: embedding differs");
        let (a, b) = (got.opacity.as_deref().unwrap(), cpu.opacity.as_deref().unwrap());
        assert!(a.len() == b.len() && close(a, b, 1e-3), "{name}: opacity map differs");
        assert!((got.inverted - cpu.inverted).abs() < 1e-4);
    }
}

/// The opacity head (model 1.5.0 on) sees density painted into a normal adult film: a soft bright patch
/// (halfway to white at its centre, 7 % of the width across) drawn into either lung field, high or low, raises
/// the opacity logit of its cell at every place tried, by at least 2 at most of them, and moves the opacity
/// map's peak, and the reader's (the manifest's map: since session 31 the opacity map alone), onto it at most
/// of them (the head also fires on normal anatomy near the diaphragm, which wins at some places; beside the
/// heart's left border 1.6.0's head rises by under 1: models/MODEL_CARD.md).
#[test]
fn the_opacity_map_finds_density_painted_into_a_lung_field() {
    use xray_reader::preprocess::{luma, to_input};
    let r = reader();
    let image = xray_reader::decode::decode(&bytes("nih-normal.jpg"), &Default::default()).unwrap();
    let grey = luma(&image);
    let (w, h) = (grey.width() as f32, grey.height() as f32);
    let side = 14usize;
    let argmax = |v: &[f32]| (0..v.len()).max_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap();
    let before = r.infer(&to_input(&grey, &r.manifest().input)).unwrap().opacity.unwrap();
    let places = [(0.3, 0.55), (0.3, 0.4), (0.7, 0.4), (0.7, 0.6), (0.25, 0.65)];
    let (mut opacity_hits, mut map_hits, mut clear_rises) = (0, 0, 0);
    for (fx, fy) in places {
        let (cx, cy, radius) = (fx * w, fy * h, 0.07 * w);
        let mut painted = grey.clone();
        for (x, y, p) in painted.enumerate_pixels_mut() {
            let d2 = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)) / (radius * radius);
            p.0[0] += 0.5 * (-0.5 * d2).exp() * (0.9 - p.0[0]).max(0.0);
        }
        let cell = ((fy * side as f32) as usize, (fx * side as f32) as usize);
        let near = |i: usize| (i / side).abs_diff(cell.0) <= 1 && (i % side).abs_diff(cell.1) <= 1;
        let after = r.infer(&to_input(&painted, &r.manifest().input)).unwrap();
        let opacity = after.opacity.as_deref().unwrap();
        let k = cell.0 * side + cell.1;
        assert!(opacity[k] - before[k] >= 0.5, "patch at {cell:?}: logit {} -> {}", before[k], opacity[k]);
        clear_rises += usize::from(opacity[k] - before[k] >= 2.0);
        opacity_hits += usize::from(near(argmax(opacity)));
        let spec = &r.manifest().regions;
        map_hits += usize::from(near(argmax(&xray_reader::regions::localisation_map(&after.cam, Some(opacity), spec))));
    }
    assert!(clear_rises >= 4, "the logit rose by 2 or more at {clear_rises} places of {}", places.len());
    assert!(opacity_hits >= 3, "the opacity map peaked at the patch {opacity_hits} times of {}", places.len());
    assert!(map_hits >= 3, "the reader's map peaked at the patch {map_hits} times of {}", places.len());
}
