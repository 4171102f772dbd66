//! The GPU engine's kernels against the CPU engine, natively: parity on fixture films and the model step's
//! time on each, interleaved, plus whole reads on each. For machines with a GPU but no browser (the page's
//! WebGPU engine runs these very kernels; `scripts/bench.sh` times it in Chromium). BENCHMARKS.md records
//! its runs; usage: `cargo run --release --features native-gpu --bin xray-reader-gpu-bench -- [--runs N]
//! [--any-adapter] [FILE...]` (default files: the committed fixture films and photos).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use xray_reader::engine::check::{correlation, median};
use xray_reader::engine::native_gpu::{AdapterChoice, NativeGpuEngine};
use xray_reader::engine::{Engine, LoadTimings, RawOutputs};
use xray_reader::reader::BUNDLED_ONNX;
use xray_reader::{ReadOptions, Reader};

const DEFAULT_FILES: [&str; 6] = [
    "tests/fixtures/nih-normal.jpg",
    "tests/fixtures/nih-pneumonia.jpg",
    "tests/fixtures/kermany-normal.jpeg",
    "tests/fixtures/kermany-pneumonia.jpeg",
    "tests/fixtures/photo-nih-pneumonia.jpg",
    "tests/fixtures/photo-kermany-normal.jpg",
];

fn max_diff(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| (x as f64 - y as f64).abs()).fold(0.0, f64::max)
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn main() -> std::process::ExitCode {
    let mut runs = 30usize;
    let mut choice = AdapterChoice::Hardware;
    let mut files: Vec<PathBuf> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().and_then(|n| n.parse().ok()).unwrap_or(runs).max(1),
            "--any-adapter" => choice = AdapterChoice::Any,
            "-h" | "--help" => {
                println!("usage: xray-reader-gpu-bench [--runs N] [--any-adapter] [FILE...]");
                return std::process::ExitCode::SUCCESS;
            }
            _ => files.push(a.into()),
        }
    }
    if files.is_empty() {
        files = DEFAULT_FILES.iter().map(PathBuf::from).collect();
    }
    match bench(runs, choice, &files) {
        Ok(report) => {
            println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xray-reader-gpu-bench: {e} [{}]", e.kind());
            std::process::ExitCode::from(1)
        }
    }
}

fn bench(runs: usize, choice: AdapterChoice, files: &[PathBuf]) -> xray_reader::Result<serde_json::Value> {
    let t = Instant::now();
    let cpu = Reader::bundled()?;
    let cpu_start = ms(t);
    let manifest = cpu.manifest().clone();
    let mut gpu_timings = LoadTimings::default();
    let t = Instant::now();
    let gpu = Arc::new(NativeGpuEngine::new(BUNDLED_ONNX, &manifest, choice, &mut gpu_timings)?);
    let gpu_start = ms(t);
    eprintln!("adapter: {:?}; GPU engine ready in {gpu_start:.0} ms, CPU in {cpu_start:.0} ms", gpu.adapter);
    let opts = ReadOptions::default();
    let mut parity = Vec::new();
    let mut photos = Vec::new();
    let mut first_input = None;
    let mut worst = (0.0f64, 1.0f64);
    for f in files {
        let bytes = std::fs::read(f).map_err(|e| xray_reader::Error::Io(format!("{}: {e}", f.display())))?;
        let input = cpu.begin_bytes(&bytes, &opts)?.input;
        let (a, b): (RawOutputs, RawOutputs) = (cpu.infer(&input)?, gpu.infer(&input)?);
        let prob = max_diff(&a.probabilities, &b.probabilities);
        let corr =
            (0..manifest.findings.len()).map(|k| f64::from(correlation(a.cam_of(k), b.cam_of(k)))).fold(1.0, f64::min);
        worst = (worst.0.max(prob), worst.1.min(corr));
        eprintln!("{}: probabilities {:?} vs {:?}, CAM r {corr:.6}", f.display(), a.probabilities, b.probabilities);
        parity.push(serde_json::json!({
            "file": f.display().to_string(),
            "probabilities_cpu": a.probabilities, "probabilities_gpu": b.probabilities,
            "probability_max_diff": prob, "cam_min_correlation": corr,
            "orientation_max_diff": max_diff(&a.orientation, &b.orientation),
            "inverted_diff": (a.inverted as f64 - b.inverted as f64).abs(),
            "embedding_max_diff": max_diff(&a.embedding, &b.embedding),
            "opacity_correlation": match (&a.opacity, &b.opacity) {
                (Some(x), Some(y)) => Some(f64::from(correlation(x, y))),
                _ => None,
            },
        }));
        first_input.get_or_insert(input);
        photos.push(bytes);
    }
    // the model step, interleaved (CPU, GPU, CPU, ...) on the first file's input after three warm-ups each
    let input = first_input.ok_or_else(|| xray_reader::Error::Io("no files to read".into()))?;
    for _ in 0..3 {
        cpu.infer(&input)?;
        gpu.infer(&input)?;
    }
    let (mut cpu_ms, mut gpu_ms) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = Instant::now();
        cpu.infer(&input)?;
        cpu_ms.push(ms(t));
        let t = Instant::now();
        gpu.infer(&input)?;
        gpu_ms.push(ms(t));
    }
    let (cpu_step, gpu_step) = (median(cpu_ms), median(gpu_ms));
    eprintln!("model step, median of {runs}: CPU {cpu_step:.2} ms, GPU {gpu_step:.2} ms ({:.1}x)", cpu_step / gpu_step);
    // whole reads of every file on each engine (a second reader, reading on the same GPU engine), median per file
    let gpu_reader = Reader::bundled()?.with_accelerator(Ok(Box::new(gpu.clone()) as Box<dyn Engine>));
    let read_runs = runs.min(10);
    let mut reads = Vec::new();
    for (f, bytes) in files.iter().zip(&photos) {
        let (mut c, mut g) = (Vec::new(), Vec::new());
        let (mut engine_c, mut engine_g) = (String::new(), String::new());
        for _ in 0..read_runs {
            let t = Instant::now();
            let rc = cpu.read(bytes, &opts)?;
            c.push(ms(t));
            let t = Instant::now();
            let rg = gpu_reader.read(bytes, &opts)?;
            g.push(ms(t));
            engine_c = rc.report.engine.clone();
            engine_g = rg.report.engine.clone();
        }
        reads.push(serde_json::json!({
            "file": f.display().to_string(), "cpu_ms": median(c), "gpu_ms": median(g),
            "engines": [engine_c, engine_g],
        }));
    }
    Ok(serde_json::json!({
        "adapter": gpu.adapter,
        "cpu": cpu_model(),
        "cpu_threads": 1,
        "start_ms": {"cpu_reader": cpu_start, "gpu_engine": gpu_start},
        "parity": {"files": parity, "probability_max_diff": worst.0, "cam_min_correlation": worst.1},
        "model_step_ms": {"runs": runs, "cpu_median": cpu_step, "gpu_median": gpu_step, "speedup": cpu_step / gpu_step},
        "read_ms": {"runs_per_file": read_runs, "files": reads},
    }))
}
