//! Native per-stage benchmarks (criterion): `cargo bench --bench stages`. Inputs are built from the committed
//! fixtures: a simulated 12 MP phone photo (4000x3000 JPEG) and the same photo at 2048 px, the size the web
//! app hands to wasm. Numbers are recorded in BENCHMARKS.md.

use std::io::Cursor;

use criterion::{Criterion, criterion_group, criterion_main};
use image::{ImageFormat, RgbImage, imageops};
use xray_reader::decode::{self, DecodeLimits};
use xray_reader::{ReadOptions, Reader, film, preprocess};

fn photo(width: u32, height: u32) -> Vec<u8> {
    let film = image::load_from_memory(include_bytes!("../tests/fixtures/photo-nih-pneumonia.jpg")).unwrap().to_rgb8();
    let big: RgbImage = imageops::resize(&film, width, height, imageops::FilterType::Triangle);
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(big).write_to(&mut Cursor::new(&mut out), ImageFormat::Jpeg).unwrap();
    out
}

fn stages(c: &mut Criterion) {
    let reader = Reader::bundled().unwrap();
    let spec = reader.manifest().input.clone();
    let limits = DecodeLimits::default();
    let opts = ReadOptions::default();
    let mut g = c.benchmark_group("stages");
    g.sample_size(10);
    for (name, w, h) in [("12mp", 4000, 3000), ("2048px", 2048, 1536)] {
        let bytes = photo(w, h);
        let img = decode::decode(&bytes, &limits).unwrap();
        g.bench_function(format!("decode_{name}"), |b| b.iter(|| decode::decode(&bytes, &limits).unwrap()));
        let trim = spec.trim_border.as_ref();
        g.bench_function(format!("film_{name}"), |b| b.iter(|| film::find(&img, None, trim)));
        let flat = film::find(&img, None, trim).image;
        g.bench_function(format!("preprocess_{name}"), |b| {
            b.iter(|| preprocess::to_input(&preprocess::luma(&flat), &spec))
        });
        g.bench_function(format!("read_{name}_end_to_end"), |b| b.iter(|| reader.read(&bytes, &opts).unwrap()));
    }
    let input = vec![0.5f32; (spec.width * spec.height * spec.channels) as usize];
    g.bench_function("model_step", |b| b.iter(|| reader.infer(&input).unwrap()));
    g.finish();
}

/// Start-up: the reader's model load (checksum, int8 weights folded by `engine::qdq`, tract optimise) against
/// tract loading the same file by itself (its own DequantizeLinear path).
fn load(c: &mut Criterion) {
    use tract_onnx::prelude::*;
    use xray_reader::reader::{BUNDLED_MANIFEST, BUNDLED_ONNX};
    let mut g = c.benchmark_group("load");
    g.sample_size(10);
    g.bench_function("reader_from_bytes", |b| b.iter(|| Reader::from_bytes(BUNDLED_ONNX, BUNDLED_MANIFEST).unwrap()));
    g.bench_function("tract_alone_unfolded", |b| {
        b.iter(|| {
            tract_onnx::onnx()
                .model_for_read(&mut Cursor::new(BUNDLED_ONNX))
                .unwrap()
                .with_input_fact(0, f32::fact([1, 1, 224, 224]).into())
                .unwrap()
                .into_optimized()
                .unwrap()
                .into_runnable()
                .unwrap()
        })
    });
    // the optimise of the reader's typed graph, the largest part of a start: tract's `into_optimized` against the
    // CPU engine's (`engine::cpu::optimise`: the same plan, its declutter in two rounds)
    let manifest = xray_reader::manifest::Manifest::from_json(BUNDLED_MANIFEST).unwrap();
    let typed = xray_reader::engine::typed_model(BUNDLED_ONNX, &manifest, &mut Default::default()).unwrap();
    g.bench_function("optimise_tract", |b| {
        b.iter_batched(|| typed.clone(), |m| m.into_optimized().unwrap(), criterion::BatchSize::LargeInput)
    });
    g.bench_function("optimise_engine", |b| {
        b.iter_batched(
            || typed.clone(),
            |m| xray_reader::engine::cpu::optimise(m).unwrap(),
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, stages, load);
criterion_main!(benches);
