//! `xray-reader`: the native command-line reader for kiosks and batch screening.

use std::borrow::Cow;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rayon::prelude::*;
use xray_reader::engine::Engine;
use xray_reader::reader::{BUNDLED_MANIFEST, BUNDLED_ONNX};
use xray_reader::report::Severity;
use xray_reader::{Error, ReadOptions, Reader, Report};

/// Version of the CLI's output contract (the JSON lines), independent of the crate version.
const CLI_CONTRACT: &str = "1";

#[derive(Parser)]
#[command(
    name = "xray-reader",
    version,
    about = "Offline chest X-ray reader: says whether a chest film looks abnormal, how confident it is, \
             and where. A decision aid, not a diagnosis: a clinician must review every film.",
    long_about = None,
    after_help = "Exit status: 0 when every file was read, 1 when any file could not be read (the batch \
                  goes on), 2 on usage errors.\n\nJSON output: one object per input file per line, in \
                  input order (see README, \"Report schema\"). Coordinates are pixels of the input image \
                  after EXIF orientation."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read one or more images (JPEG, PNG, WebP, BMP, TIFF, GIF; "-" reads standard input).
    Read {
        /// Print one JSON object per file per line instead of a human summary.
        #[arg(long)]
        json: bool,
        /// Write an annotated PNG per input (heatmap, regions, film outline) into this directory.
        #[arg(long, value_name = "DIR")]
        overlay: Option<PathBuf>,
        /// Use this ONNX model instead of the bundled one; its manifest is MODEL with `.onnx` replaced by
        /// `.manifest.json` unless --manifest is given. The checksum in the manifest is verified.
        #[arg(long, value_name = "PATH")]
        model: Option<PathBuf>,
        /// Manifest for --model.
        #[arg(long, value_name = "PATH", requires = "model")]
        manifest: Option<PathBuf>,
        /// Film corners in input pixels, x,y,x,y,x,y,x,y (any order); skips film detection.
        #[arg(long, value_name = "x,y,x,y,x,y,x,y", value_parser = parse_corners, allow_hyphen_values = true)]
        corners: Option<[[f32; 2]; 4]>,
        /// Report a rotated film without turning it upright.
        #[arg(long)]
        no_rotate: bool,
        /// Which engine runs the model: `cpu` (tract); `gpu`, the page's WebGPU kernels on a GPU through
        /// Vulkan (a build with `--features native-gpu` and a hardware GPU), reads falling back to the CPU with
        /// an `engine_note` when it cannot start or fails; `auto`, the GPU when it passes a self-check against
        /// the CPU and is faster, else the CPU.
        #[arg(long, value_enum, default_value_t = EngineChoice::Cpu)]
        engine: EngineChoice,
        /// Worker threads for batches (default: all cores).
        #[arg(long, value_name = "N")]
        jobs: Option<usize>,
        /// Image files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Print the model's manifest (name, version, checksum, findings and thresholds) as JSON.
    Info {
        #[arg(long, value_name = "PATH")]
        model: Option<PathBuf>,
        #[arg(long, value_name = "PATH", requires = "model")]
        manifest: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum EngineChoice {
    Auto,
    Cpu,
    Gpu,
}

fn parse_corners(s: &str) -> Result<[[f32; 2]; 4], String> {
    let v: Vec<f32> =
        s.split(',').map(|t| t.trim().parse::<f32>().map_err(|e| format!("`{t}`: {e}"))).collect::<Result<_, _>>()?;
    if v.len() != 8 || v.iter().any(|x| !x.is_finite()) {
        return Err(format!("expected 8 finite numbers, got {}", v.len()));
    }
    Ok([[v[0], v[1]], [v[2], v[3]], [v[4], v[5]], [v[6], v[7]]])
}

fn load_reader(model: Option<&Path>, manifest: Option<&Path>, engine: EngineChoice) -> Result<Reader, Error> {
    let (onnx, man) = match model {
        None => (Cow::Borrowed(BUNDLED_ONNX), Cow::Borrowed(BUNDLED_MANIFEST)),
        Some(m) => {
            let mpath = manifest.map(Path::to_path_buf).unwrap_or_else(|| {
                let s = m.to_string_lossy();
                PathBuf::from(match s.strip_suffix(".onnx") {
                    Some(stem) => format!("{stem}.manifest.json"),
                    None => format!("{s}.manifest.json"),
                })
            });
            let onnx = std::fs::read(m).map_err(|e| Error::Io(format!("{}: {e}", m.display())))?;
            let man = std::fs::read(&mpath).map_err(|e| Error::Io(format!("{}: {e}", mpath.display())))?;
            (Cow::Owned(onnx), Cow::Owned(man))
        }
    };
    let reader = Reader::from_bytes(&onnx, &man)?;
    Ok(match engine {
        EngineChoice::Cpu => reader,
        EngineChoice::Gpu => {
            let gpu = gpu_engine(&onnx, reader.manifest());
            let reader = reader.with_accelerator(gpu);
            if let Some(why) = reader.accelerator_note() {
                eprintln!("xray-reader: {why}");
            }
            reader
        }
        EngineChoice::Auto => match gpu_engine(&onnx, reader.manifest()) {
            Ok(gpu) => {
                let (reader, check) = reader.with_checked_accelerator(gpu, 5);
                let engine = if check.chosen { "the GPU" } else { "the CPU" };
                eprintln!("xray-reader: reading on {engine}: {}", check.reason);
                reader
            }
            Err(e) => {
                eprintln!("xray-reader: reading on the CPU: {e}");
                reader
            }
        },
    })
}

#[cfg(feature = "native-gpu")]
fn gpu_engine(onnx: &[u8], manifest: &xray_reader::manifest::Manifest) -> Result<Box<dyn Engine>, Error> {
    use xray_reader::engine::native_gpu::{AdapterChoice, NativeGpuEngine};
    let engine = NativeGpuEngine::new(onnx, manifest, AdapterChoice::Hardware, &mut Default::default())?;
    Ok(Box::new(engine))
}

#[cfg(not(feature = "native-gpu"))]
fn gpu_engine(_onnx: &[u8], _manifest: &xray_reader::manifest::Manifest) -> Result<Box<dyn Engine>, Error> {
    Err(Error::BackendUnavailable(
        "this build has no GPU engine: build with `cargo build --release --features native-gpu`".into(),
    ))
}

fn read_input(path: &Path) -> Result<Vec<u8>, Error> {
    if path.as_os_str() == "-" {
        let mut v = Vec::new();
        std::io::stdin().read_to_end(&mut v).map_err(|e| Error::Io(format!("stdin: {e}")))?;
        return Ok(v);
    }
    std::fs::read(path).map_err(|e| Error::Io(format!("{}: {e}", path.display())))
}

fn summary(r: &Report) -> String {
    let mut s = String::new();
    let name = r.file.as_deref().unwrap_or("-");
    if !r.accepted {
        s += &format!("{name}: NOT READ (refused by the quality checks; scores below are for audit only)\n");
    }
    for f in &r.findings {
        let verdict = if !r.accepted {
            "audit only"
        } else if f.positive {
            "FLAGGED for clinician review"
        } else {
            "not flagged"
        };
        s += &format!("{name}: {} {:.2} (threshold {:.2}) — {verdict}\n", f.label, f.probability, f.threshold);
        if r.accepted {
            s += &format!("  {}\n", f.wording);
        }
        for g in &f.regions {
            s += &format!("  region x={:.0} y={:.0} w={:.0} h={:.0} score {:.2}\n", g.x, g.y, g.w, g.h, g.score);
        }
    }
    for q in &r.quality {
        let sev = if q.severity == Severity::Refuse { "REFUSED" } else { "warning" };
        s += &format!("  {sev} [{}]: {}\n", q.code, q.message);
    }
    let film = if r.film.from_caller {
        "film corners given"
    } else if r.film.detected {
        "film found and flattened"
    } else if r.quality.iter().any(|q| q.code == "second_look") {
        "centre of the photo read (second look)"
    } else {
        "whole image read"
    };
    let padding = if r.film.padding_trimmed { " (flat padding at the edges cut off)" } else { "" };
    s += &format!("  {film}{padding}; {} engine, {:.0} ms\n", r.engine, r.timings_ms.total);
    s
}

fn overlay_path(dir: &Path, file: &Path, index: usize, used: &mut std::collections::HashSet<String>) -> PathBuf {
    let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "stdin".into());
    let mut name = format!("{stem}.overlay.png");
    if !used.insert(name.clone()) {
        name = format!("{stem}-{index}.overlay.png");
        used.insert(name.clone());
    }
    dir.join(name)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match cli.command {
        Command::Info { model, manifest } => {
            match load_reader(model.as_deref(), manifest.as_deref(), EngineChoice::Cpu) {
                Ok(r) => {
                    let mut v = serde_json::to_value(r.manifest()).unwrap_or_default();
                    if let Some(o) = v.get_mut("ood") {
                        // the statistics are long; summarise them
                        let dim = r.manifest().ood.mean.len();
                        let k = r.manifest().ood.components.len();
                        *o = serde_json::json!({"embedding_dim": dim, "components": k, "threshold": r.manifest().ood.threshold});
                    }
                    v["cli_contract"] = CLI_CONTRACT.into();
                    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("xray-reader: cannot load the model: {e} [{}]", e.kind());
                    ExitCode::from(1)
                }
            }
        }
        Command::Read { json, overlay, model, manifest, corners, no_rotate, engine, jobs, files } => {
            let reader = match load_reader(model.as_deref(), manifest.as_deref(), engine) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("xray-reader: cannot load the model: {e} [{}]", e.kind());
                    return ExitCode::from(1);
                }
            };
            if let Some(d) = &overlay {
                if let Err(e) = std::fs::create_dir_all(d) {
                    eprintln!("xray-reader: cannot create overlay directory {}: {e}", d.display());
                    return ExitCode::from(2);
                }
            }
            if files.iter().filter(|f| f.as_os_str() == "-").count() > 1 {
                eprintln!("xray-reader: standard input (-) can be read only once");
                return ExitCode::from(2);
            }
            let pool = match rayon::ThreadPoolBuilder::new().num_threads(jobs.unwrap_or(0)).build() {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("xray-reader: {e}");
                    return ExitCode::from(2);
                }
            };
            let mut used = std::collections::HashSet::new();
            let overlay_paths: Vec<Option<PathBuf>> = files
                .iter()
                .enumerate()
                .map(|(i, f)| overlay.as_deref().map(|d| overlay_path(d, f, i, &mut used)))
                .collect();
            let mut any_failed = false;
            let stdout = std::io::stdout();
            let chunk = pool.current_num_threads().max(1) * 2;
            let indexed: Vec<usize> = (0..files.len()).collect();
            for batch in indexed.chunks(chunk) {
                let lines: Vec<(bool, String)> = pool.install(|| {
                    batch
                        .par_iter()
                        .map(|&i| {
                            let file = &files[i];
                            let name = file.to_string_lossy().into_owned();
                            let opts = ReadOptions { corners, no_auto_rotate: no_rotate, name: Some(name.clone()) };
                            let result = read_input(file).and_then(|b| reader.read(&b, &opts));
                            match result {
                                Ok(reading) => {
                                    let mut note = String::new();
                                    if let Some(p) = &overlay_paths[i] {
                                        if let Err(e) = xray_reader::overlay::render(&reading).save(p) {
                                            note = format!("  overlay not written: {e}\n");
                                        }
                                    }
                                    let text = if json {
                                        serde_json::to_string(&reading.report).unwrap_or_default()
                                    } else {
                                        format!("{}{note}", summary(&reading.report))
                                    };
                                    if json && !note.is_empty() {
                                        eprint!("{name}:{note}");
                                    }
                                    (true, text)
                                }
                                Err(e) => {
                                    let text = if json {
                                        Report::failure(Some(name), &e).to_string()
                                    } else {
                                        format!("{name}: ERROR [{}] {e}\n", e.kind())
                                    };
                                    (false, text)
                                }
                            }
                        })
                        .collect()
                });
                let mut out = stdout.lock();
                for (ok, text) in lines {
                    any_failed |= !ok;
                    let _ = if json { writeln!(out, "{text}") } else { write!(out, "{text}") };
                }
                let _ = out.flush();
            }
            if any_failed { ExitCode::from(1) } else { ExitCode::SUCCESS }
        }
    }
}
