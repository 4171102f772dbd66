//! The pipeline: decode -> film -> preprocess -> engine -> quality -> regions -> report.

use std::sync::Mutex;

use image::{RgbImage, imageops};
use web_time::Instant;

use crate::decode::{self, DecodeLimits};
use crate::engine::check::{self, Agreement};
use crate::engine::{Engine, LoadTimings, RawOutputs, cpu::CpuEngine};
use crate::error::{Error, Result};
use crate::film::{self, Film};
use crate::geometry::{self, Quad};
use crate::manifest::Manifest;
use crate::preprocess;
use crate::quality;
use crate::regions::{self, CamField};
use crate::report::*;

/// Hot regions reported per finding, strongest first.
const MAX_REGIONS: usize = 3;

/// The second look: centred crops of the photo (fraction of each side), tried in this order when the whole
/// read was refused as not a chest film and no corners were given. A crop's read is kept only when it passes
/// every check and its OOD distance is within the manifest's `ood.second_look_threshold` (stricter than the
/// refusal threshold: a guessed crop must look typical of chest films, not merely not foreign).
const SECOND_LOOK_CROPS: [f32; 2] = [0.8, 0.6];
/// Refusals a second look may overturn: the ones a wrong film region causes. An inverted image stays refused.
const SECOND_LOOK_FOR: [&str; 3] = ["not_chest_xray", "colour_photo", "page_or_screen"];

#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// Film corners in input-image pixels (after EXIF orientation), any order; overrides detection.
    pub corners: Option<[[f32; 2]; 4]>,
    /// Do not turn a rotated film upright (the rotation is still reported).
    pub no_auto_rotate: bool,
    /// A name for the input, echoed in the report's `file`.
    pub name: Option<String>,
}

/// A finished read: the report plus what an overlay needs.
pub struct Reading {
    pub report: Report,
    /// The decoded input, upright.
    pub image: RgbImage,
    /// Per finding, the CAM laid over the film (same order as `report.findings`).
    pub cams: Vec<CamField>,
}

/// A read between its steps: the film found and preprocessed, waiting for the model to run on `input`.
pub struct PendingRead {
    /// What the model must run on next (the manifest's input size, normalised).
    pub input: Vec<f32>,
    image: RgbImage,
    opts: ReadOptions,
    film: Film,
    grey: preprocess::GreyF32,
    timings: Timings,
    t0: Instant,
    t_model: Instant,
    /// Decode time and start, when the read began from encoded bytes.
    decode: Option<(f64, Instant)>,
    first: Option<FirstPass>,
    /// Set while a centred crop is being read after the whole read was refused.
    second_look: Option<SecondLook>,
    /// Set while the film is read turned, to settle an unsure orientation (the turn check).
    turn_check: Option<TurnCheck>,
}

/// A read refused as not a chest film for its orientation confidence (under the manifest's minimum, at least
/// its `turn_check_min_confidence`; the OOD distance within its threshold), while its input is read turned by
/// one, two and three quarter turns. A chest film has an "up": each turned read should name its turn.
struct TurnCheck {
    /// The outputs of the read being checked (what is reported).
    out: RawOutputs,
    /// The input they came from; the turned copies are made from it.
    base: Vec<f32>,
    /// The orientation (degrees clockwise) that read named.
    base_deg: u32,
    /// Quarter turns clockwise of the copy being read now (1 to 3).
    turns: usize,
}

/// The refused read a second look may replace, and the crops still to try.
struct SecondLook {
    /// The refused read's report and CAMs (its image is the pending read's).
    refused: Box<(Report, Vec<CamField>)>,
    /// Index in `SECOND_LOOK_CROPS` of the next crop to try (the one being read is the one before it).
    next: usize,
    /// Stage times of the reads before this one (film, preprocess, model, regions).
    earlier: Timings,
}

impl SecondLook {
    /// The crop being read now (fraction of each side).
    fn fraction(&self) -> f32 {
        SECOND_LOOK_CROPS[self.next - 1]
    }

    /// The refused read, reported after all: its stage times summed over the reads made, `total` since the start.
    fn into_refused(self, image: RgbImage, total: f64) -> Reading {
        let (mut report, cams) = *self.refused;
        report.timings_ms = Timings { total, ..self.earlier };
        Reading { report, image, cams }
    }
}

impl PendingRead {
    /// During a second look (the photo's centre read after the whole read was refused), the refused read
    /// itself: what a caller reports when a pass of the second look fails. None for any other read.
    pub fn into_refused(self) -> Option<Reading> {
        let total = ms(self.decode.map_or(self.t0, |(_, started)| started));
        Some(self.second_look?.into_refused(self.image, total))
    }
}

/// What the first model pass decided (orientation, polarity) and reported.
struct FirstPass {
    quality_items: Vec<QualityItem>,
    rotate: bool,
    deg: u32,
    conf: f32,
    inverted_p: f32,
    corrected: bool,
}

/// Where a read goes after one model pass.
pub enum Next {
    /// Run the model again on the read's new `input`, then `advance` again.
    Infer(PendingRead),
    Done(Reading),
}

pub struct Reader {
    manifest: Manifest,
    /// The CPU engine: every read's engine unless an accelerator reads, and the fallback when it fails.
    engine: Box<dyn Engine>,
    accelerator: Option<Accelerator>,
    limits: DecodeLimits,
    load_timings: LoadTimings,
}

/// An engine that reads in the CPU engine's place (the native GPU engine), or the reason there is none. It is
/// retired at its first failing pass: that read and every later one complete on the CPU, saying why.
struct Accelerator {
    engine: Option<Box<dyn Engine>>,
    retired: Mutex<Option<String>>,
}

/// What `Reader::with_checked_accelerator` found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AcceleratorCheck {
    /// The accelerator's outputs against the CPU engine's on `check::check_input`; absent when its pass failed.
    pub agreement: Option<Agreement>,
    /// Median model step of each engine (ms) over the timed runs; absent when the check failed.
    pub cpu_ms: Option<f64>,
    pub accelerator_ms: Option<f64>,
    /// Whether reads now run on the accelerator.
    pub chosen: bool,
    /// Why it was or was not chosen, in words.
    pub reason: String,
}

#[cfg(feature = "bundled-model")]
pub const BUNDLED_ONNX: &[u8] = include_bytes!("../models/xray-reader.onnx");
#[cfg(feature = "bundled-model")]
pub const BUNDLED_MANIFEST: &[u8] = include_bytes!("../models/xray-reader.manifest.json");

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

impl Reader {
    /// The model embedded in this build.
    #[cfg(feature = "bundled-model")]
    pub fn bundled() -> Result<Reader> {
        Reader::from_bytes(BUNDLED_ONNX, BUNDLED_MANIFEST)
    }

    /// Any model that follows the manifest contract; its checksum is verified before it is parsed.
    pub fn from_bytes(onnx: &[u8], manifest_json: &[u8]) -> Result<Reader> {
        Reader::from_bytes_with_digest(onnx, manifest_json, None)
    }

    /// As `from_bytes`, with the model's sha256 already computed by the caller over exactly these bytes (the
    /// browser worker uses WebCrypto, which is native code: ~5 ms instead of ~110 ms of not-yet-optimised
    /// wasm on a cold start). The digest is still compared with the manifest.
    pub fn from_bytes_with_digest(onnx: &[u8], manifest_json: &[u8], sha256: Option<&str>) -> Result<Reader> {
        let mut load_timings = LoadTimings::default();
        let t0 = Instant::now();
        let manifest = Manifest::from_json(manifest_json)?;
        load_timings.manifest = ms(t0);
        let t = Instant::now();
        let actual = sha256.map_or_else(|| sha256_hex(onnx), str::to_owned);
        if !actual.eq_ignore_ascii_case(&manifest.sha256) {
            return Err(Error::Checksum { expected: manifest.sha256.clone(), actual });
        }
        load_timings.checksum = ms(t);
        let engine = CpuEngine::new(onnx, &manifest, &mut load_timings)?;
        load_timings.total = ms(t0);
        Ok(Reader {
            manifest,
            engine: Box::new(engine),
            accelerator: None,
            limits: DecodeLimits::default(),
            load_timings,
        })
    }

    /// Where this reader's start-up time went.
    pub fn load_timings(&self) -> &LoadTimings {
        &self.load_timings
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Read on `engine` (the native GPU engine) instead of the CPU engine, which stays loaded: a pass that
    /// fails on `engine` (a device lost mid-batch) retires it, and that read and every later one complete on the
    /// CPU with an `engine_note`. `Err` (the engine could not start) reads on the CPU from the first read,
    /// with that reason as the note. No self-check: the caller asked for this engine.
    pub fn with_accelerator(mut self, engine: Result<Box<dyn Engine>>) -> Reader {
        self.accelerator = Some(match engine {
            Ok(engine) => Accelerator { engine: Some(engine), retired: Mutex::new(None) },
            Err(e) => Accelerator {
                engine: None,
                retired: Mutex::new(Some(format!("the requested engine is not available ({e}); read on the CPU"))),
            },
        });
        self
    }

    /// Read on `engine` only if it agrees with the CPU engine on a fixed input (`engine::check`: the browser's
    /// self-check) and its median model step over `runs` interleaved runs is shorter; otherwise keep reading
    /// on the CPU, without a note (the choice was the reader's to make).
    pub fn with_checked_accelerator(self, engine: Box<dyn Engine>, runs: usize) -> (Reader, AcceleratorCheck) {
        let input = check::check_input(&self.manifest.input);
        let mut found = AcceleratorCheck {
            agreement: None,
            cpu_ms: None,
            accelerator_ms: None,
            chosen: false,
            reason: String::new(),
        };
        let (cpu, other) = (self.engine.infer(&input), engine.infer(&input));
        let agreement = match (cpu, other) {
            (Ok(cpu), Ok(other)) => Agreement::of(&other, &cpu),
            (Err(e), _) | (_, Err(e)) => {
                found.reason = format!("the {} engine's check pass failed: {e}", engine.name());
                return (self, found);
            }
        };
        found.agreement = Some(agreement);
        if !agreement.passed() {
            found.reason = format!(
                "the {} engine disagreed with the CPU engine (difference {:.2e}, CAM correlation {:.5})",
                engine.name(),
                agreement.max_difference,
                agreement.cam_correlation
            );
            return (self, found);
        }
        let (mut cpu_ms, mut other_ms) = (Vec::new(), Vec::new());
        for _ in 0..runs.max(1) {
            let t = Instant::now();
            let cpu = self.engine.infer(&input);
            cpu_ms.push(ms(t));
            let t = Instant::now();
            let other = engine.infer(&input);
            other_ms.push(ms(t));
            if let Err(e) = cpu.and(other) {
                found.reason = format!("a timed pass failed: {e}");
                return (self, found);
            }
        }
        let (cpu_ms, other_ms) = (check::median(cpu_ms), check::median(other_ms));
        (found.cpu_ms, found.accelerator_ms) = (Some(cpu_ms), Some(other_ms));
        found.chosen = other_ms < cpu_ms;
        found.reason = format!(
            "the {} engine agreed with the CPU engine and took {other_ms:.1} ms per model step against the CPU's \
             {cpu_ms:.1} ms",
            engine.name()
        );
        if found.chosen {
            return (self.with_accelerator(Ok(engine)), found);
        }
        (self, found)
    }

    /// Why reads no longer run on the accelerator, when one was asked for and is not in use.
    pub fn accelerator_note(&self) -> Option<String> {
        self.accelerator.as_ref().and_then(|a| a.retired.lock().ok().and_then(|r| r.clone()))
    }

    pub fn with_limits(mut self, limits: DecodeLimits) -> Reader {
        self.limits = limits;
        self
    }

    /// Read encoded image bytes (any supported format).
    pub fn read(&self, bytes: &[u8], opts: &ReadOptions) -> Result<Reading> {
        guarded(|| self.read_bytes(bytes, opts))
    }

    /// Read already-decoded, upright RGB pixels.
    pub fn read_image(&self, image: RgbImage, opts: &ReadOptions) -> Result<Reading> {
        guarded(|| self.read_pixels(image, opts))
    }

    fn read_bytes(&self, bytes: &[u8], opts: &ReadOptions) -> Result<Reading> {
        self.run_sync(self.begin_bytes(bytes, opts)?)
    }

    fn read_pixels(&self, image: RgbImage, opts: &ReadOptions) -> Result<Reading> {
        self.run_sync(self.begin(image, opts)?)
    }

    /// Drive a read to its end with this reader's own (synchronous) engine.
    fn run_sync(&self, mut pending: PendingRead) -> Result<Reading> {
        let mut note = None;
        loop {
            let mut pass = None;
            if let Some(acc) = &self.accelerator {
                let retired = acc.retired.lock().map(|r| r.clone()).unwrap_or_else(|_| Some("retired".into()));
                match (retired, &acc.engine) {
                    (Some(why), _) => note = Some(why),
                    (None, None) => {}
                    (None, Some(engine)) => match engine.infer(&pending.input) {
                        Ok(out) => pass = Some((out, engine.name())),
                        Err(e) => {
                            let why = format!("the {} engine failed ({e}); read on the CPU", engine.name());
                            if let Ok(mut retired) = acc.retired.lock() {
                                retired.get_or_insert_with(|| why.clone());
                            }
                            note = Some(why);
                        }
                    },
                }
            }
            let pass = match pass {
                Some((out, engine)) => Ok((out, engine)),
                None => self.engine.infer(&pending.input).map(|out| (out, self.engine.name())),
            };
            let next = match pass {
                Ok((out, engine)) => self.advance(pending, out, engine, note.clone())?,
                Err(e) => self.after_failed_pass(pending, e, self.engine.name(), note.clone())?,
            };
            match next {
                Next::Infer(p) => pending = p,
                Next::Done(reading) => return Ok(reading),
            }
        }
    }

    /// Start a read of encoded bytes: decode, then as `begin`.
    pub fn begin_bytes(&self, bytes: &[u8], opts: &ReadOptions) -> Result<PendingRead> {
        let t0 = Instant::now();
        let image = decode::decode(bytes, &self.limits)?;
        let decode_ms = ms(t0);
        let mut pending = self.begin(image, opts)?;
        pending.decode = Some((decode_ms, t0));
        Ok(pending)
    }

    /// Start a read of upright pixels: find the film and preprocess it. The returned read waits for the
    /// model to run on `PendingRead::input` (with any engine), then for `advance`.
    pub fn begin(&self, image: RgbImage, opts: &ReadOptions) -> Result<PendingRead> {
        let t0 = Instant::now();
        let (w, h) = image.dimensions();
        let min = self.limits.min_side;
        if w.min(h) < min {
            return Err(Error::TooSmall { width: w, height: h, min });
        }
        let corners = match opts.corners {
            Some(c) => Some(geometry::validate_corners(c, w, h)?),
            None => None,
        };
        Ok(self.prepare(image, opts, corners, t0))
    }

    /// Find (or take) the film and preprocess it for the model.
    fn prepare(&self, image: RgbImage, opts: &ReadOptions, corners: Option<Quad>, t0: Instant) -> PendingRead {
        let mut timings = Timings::default();

        let t = Instant::now();
        let film = film::find(&image, corners, self.manifest.input.trim_border.as_ref());
        timings.film = ms(t);

        let t = Instant::now();
        let grey = preprocess::luma(&film.image);
        let input = preprocess::to_input(&grey, &self.manifest.input);
        timings.preprocess = ms(t);
        PendingRead {
            input,
            image,
            opts: opts.clone(),
            film,
            grey,
            timings,
            t0,
            t_model: Instant::now(),
            decode: None,
            first: None,
            second_look: None,
            turn_check: None,
        }
    }

    /// Continue a read with the model's outputs for `pending.input`: either the film must be read again
    /// (turned upright, or re-inverted), or the read is finished. `engine` names the engine that ran;
    /// `engine_note` says why it is not the one asked for, if so.
    pub fn advance(
        &self,
        mut p: PendingRead,
        out: RawOutputs,
        engine: &str,
        engine_note: Option<String>,
    ) -> Result<Next> {
        if let Some(mut check) = p.turn_check.take() {
            let side = self.manifest.input.width as usize;
            let classes = &self.manifest.orientation.classes_deg_clockwise;
            let min = self.manifest.ood.turn_check_min_confidence.unwrap_or(1.0);
            let (k, conf) = argmax(&out.orientation);
            let expected = (check.base_deg + 90 * check.turns as u32) % 360;
            let agrees = classes.get(k) == Some(&expected) && conf >= min;
            if agrees && check.turns < 3 {
                check.turns += 1;
                p.input = preprocess::turned(&check.base, side, check.turns);
                p.turn_check = Some(check);
                return Ok(Next::Infer(p));
            }
            // settled: report the read that was checked
            p.input = check.base;
            return self.finish(p, check.out, agrees, engine, engine_note);
        }
        if p.first.is_none() {
            // Orientation and polarity: correct what the model is sure of, then read again.
            let mut quality_items = Vec::new();
            let o = &self.manifest.orientation;
            let (k, conf) = argmax(&out.orientation);
            let deg = o.classes_deg_clockwise.get(k).copied().unwrap_or(0);
            let rotate = deg != 0 && conf >= o.min_confidence;
            let inverted_p = out.inverted;
            let inverted = inverted_p >= self.manifest.inverted.threshold;
            let corrected = rotate && !p.opts.no_auto_rotate;
            if corrected {
                p.film = turn_upright(p.film, deg);
                quality_items.push(QualityItem {
                    code: "rotated".into(),
                    severity: Severity::Warn,
                    message: format!(
                        "The film appeared rotated {deg}° clockwise (confidence {conf:.2}); it was turned upright \
                         and read again. Check that the result view shows it upright."
                    ),
                });
            } else if rotate {
                quality_items.push(QualityItem {
                    code: "rotated".into(),
                    severity: Severity::Warn,
                    message: format!(
                        "The film appears rotated {deg}° clockwise (confidence {conf:.2}); it was read as it is."
                    ),
                });
            }
            if inverted {
                quality_items.push(QualityItem {
                    code: "inverted".into(),
                    severity: Severity::Refuse,
                    message: format!(
                        "The image looks like a negative: bones dark, lungs light (probability {inverted_p:.2}). \
                         Photograph the film itself or export the image with normal greys, then read again."
                    ),
                });
            }
            p.first = Some(FirstPass { quality_items, rotate, deg, conf, inverted_p, corrected });
            if corrected || inverted {
                if corrected {
                    p.grey = preprocess::luma(&p.film.image);
                }
                p.input = preprocess::to_input(&p.grey, &self.manifest.input);
                if inverted {
                    p.input.iter_mut().for_each(|v| *v = 1.0 - *v);
                }
                return Ok(Next::Infer(p));
            }
        }
        if self.needs_turn_check(&p, &out) {
            let side = self.manifest.input.width as usize;
            let (k, _) = argmax(&out.orientation);
            let base_deg = self.manifest.orientation.classes_deg_clockwise.get(k).copied().unwrap_or(0);
            let base = std::mem::take(&mut p.input);
            p.input = preprocess::turned(&base, side, 1);
            p.turn_check = Some(TurnCheck { out, base, base_deg, turns: 1 });
            return Ok(Next::Infer(p));
        }
        self.finish(p, out, false, engine, engine_note)
    }

    /// The read's report from its last pass's outputs (`turns_agree`: a turn check settled its orientation).
    fn finish(
        &self,
        p: PendingRead,
        out: RawOutputs,
        turns_agree: bool,
        engine: &str,
        engine_note: Option<String>,
    ) -> Result<Next> {
        let PendingRead {
            image, opts, film, grey, input, mut timings, t0, t_model, decode, first, second_look, ..
        } = p;
        let FirstPass { mut quality_items, rotate, deg, conf, inverted_p, corrected } =
            first.expect("set on the first pass (advance)");
        timings.model = ms(t_model);
        let (w, h) = image.dimensions();
        let side = self.manifest.input.width as usize;

        // What the image is, and how good it is.
        let ood_score = quality::ood_score(&out.embedding, &self.manifest.ood);
        let (_, orientation_confidence) = argmax(&out.orientation);
        quality_items.extend(quality::check_ood(ood_score, orientation_confidence, turns_agree, &self.manifest.ood));
        if turns_agree {
            quality_items.push(quality::turn_checked(orientation_confidence));
        }
        quality_items.extend(quality::check_colour(quality::colourfulness(&film.image)));
        quality_items.extend(quality::check_page(&grey));
        let film_side = film_min_side(&film.corners);
        quality_items.extend(quality::check_film(&grey, film_side, &input, side));
        let accepted = !quality_items.iter().any(|q| q.severity == Severity::Refuse);

        let t = Instant::now();
        let (fw, fh) = film.image.dimensions();
        let mut cams = Vec::new();
        let mut findings = Vec::new();
        for (i, f) in self.manifest.findings.iter().enumerate() {
            let map = regions::localisation_map(out.cam_of(i), out.opacity.as_deref(), &self.manifest.regions);
            let cam = CamField::new(&map, out.cam_height, out.cam_width, &film.corners, fw as f32, fh as f32)
                .ok_or_else(|| Error::InvalidCorners("the film corners are degenerate".into()))?;
            let p = out.probabilities[i];
            let positive = p >= f.threshold;
            let (peak, regions) = cam.analyse(&self.manifest.regions, w, h, MAX_REGIONS, positive);
            findings.push(Finding {
                label: f.label.clone(),
                probability: p,
                threshold: f.threshold,
                positive,
                peak,
                regions,
                wording: wording(&f.label, p, f.threshold, accepted),
            });
            cams.push(cam);
        }
        timings.regions = ms(t);
        timings.total = ms(t0);
        if let Some((decode_ms, started)) = decode {
            timings.decode = decode_ms;
            timings.total = ms(started);
        }

        let report = Report {
            schema_version: REPORT_SCHEMA_VERSION,
            file: opts.name.clone(),
            ok: true,
            error: None,
            accepted,
            quality: quality_items,
            findings,
            film: FilmInfo {
                detected: film.detected,
                from_caller: opts.corners.is_some(),
                padding_trimmed: film.trimmed,
                corners: film.corners,
            },
            ood_score,
            ood_threshold: self.manifest.ood.threshold,
            orientation: OrientationInfo {
                detected_deg_clockwise: if rotate { deg } else { 0 },
                confidence: conf,
                corrected,
            },
            inverted_probability: inverted_p,
            engine: engine.into(),
            engine_note,
            model: ModelInfo {
                name: self.manifest.name.clone(),
                version: self.manifest.version.clone(),
                sha256: self.manifest.sha256.clone(),
            },
            image: ImageSize { width: w, height: h },
            timings_ms: timings,
            disclaimer: DISCLAIMER.into(),
        };
        self.conclude(Reading { report, image, cams }, opts, t0, decode, second_look)
    }

    /// Where a read goes when the engine fails on `p.input`: a turn check ends as failed (the checked read is
    /// reported, refused, and may go on to the second look), a second look ends with the refused read it was
    /// looking past; any other pass's failure is the read's error.
    pub fn after_failed_pass(
        &self,
        mut p: PendingRead,
        e: Error,
        engine: &str,
        engine_note: Option<String>,
    ) -> Result<Next> {
        if let Some(check) = p.turn_check.take() {
            p.input = check.base;
            return self.finish(p, check.out, false, engine, engine_note);
        }
        p.into_refused().map(Next::Done).ok_or(e)
    }

    /// Whether a finished pass should be settled by the turn check: its orientation confidence is under the
    /// manifest's minimum but at least `turn_check_min_confidence`, its OOD distance within the threshold, and
    /// it is not a negative (refused for that anyway) nor a crop of the second look (which must read typical).
    /// Other checks (colour, exposure) come after and may still refuse it.
    fn needs_turn_check(&self, p: &PendingRead, out: &RawOutputs) -> bool {
        let (ood, input) = (&self.manifest.ood, &self.manifest.input);
        let Some(min) = ood.turn_check_min_confidence else { return false };
        let (_, conf) = argmax(&out.orientation);
        let inverted = p.first.as_ref().is_some_and(|f| f.inverted_p >= self.manifest.inverted.threshold);
        input.width == input.height
            && p.second_look.is_none()
            && !inverted
            && conf < ood.min_orientation_confidence
            && conf >= min
            && quality::ood_score(&out.embedding, ood) <= ood.threshold
    }

    /// A finished read is final unless it was refused for what a wrong film region causes; then the photo's
    /// centre is read (a second look), and the first crop whose read is accepted and typical replaces it.
    fn conclude(
        &self,
        mut reading: Reading,
        opts: ReadOptions,
        t0: Instant,
        decode: Option<(f64, Instant)>,
        look: Option<SecondLook>,
    ) -> Result<Next> {
        let Some(limit) = self.manifest.ood.second_look_threshold else {
            return Ok(Next::Done(reading));
        };
        let mut look = match look {
            None => {
                let r = &reading.report;
                let refusals = r.quality.iter().filter(|q| q.severity == Severity::Refuse);
                let eligible = !r.accepted && refusals.clone().all(|q| SECOND_LOOK_FOR.contains(&q.code.as_str()));
                if opts.corners.is_some() || !eligible {
                    return Ok(Next::Done(reading));
                }
                let Reading { report, image, cams } = reading;
                let earlier = report.timings_ms.clone();
                let refused = Box::new((report, cams));
                return Ok(self.second_look(image, opts, t0, decode, SecondLook { refused, next: 0, earlier }));
            }
            Some(look) => look,
        };
        // stage times add up over the reads; the total runs from the start of the first
        let add = |a: f64, b: f64| ((a + b) * 100.0).round() / 100.0;
        let (e, t) = (&mut look.earlier, &reading.report.timings_ms);
        e.film = add(e.film, t.film);
        e.preprocess = add(e.preprocess, t.preprocess);
        e.model = add(e.model, t.model);
        e.regions = add(e.regions, t.regions);
        let total = ms(decode.map_or(t0, |(_, started)| started));
        if reading.report.accepted && reading.report.ood_score <= limit {
            let r = &mut reading.report;
            r.timings_ms = Timings { total, ..look.earlier };
            let pct = (look.fraction() * 100.0).round();
            r.quality.insert(
                0,
                QualityItem {
                    code: "second_look".into(),
                    severity: Severity::Warn,
                    message: format!(
                        "The whole photo did not read as a chest film (no film edges were found, or the region \
                         found was not the film), so the centre {pct} % of the photo was read instead. Check that \
                         the outline in the result view holds the chest film; for a better read, retake with the \
                         film's edges visible and the film filling most of the frame."
                    ),
                },
            );
            return Ok(Next::Done(reading));
        }
        if look.next < SECOND_LOOK_CROPS.len() {
            return Ok(self.second_look(reading.image, opts, t0, decode, look));
        }
        Ok(Next::Done(look.into_refused(reading.image, total)))
    }

    /// Start reading the next centred crop of `image`.
    fn second_look(
        &self,
        image: RgbImage,
        opts: ReadOptions,
        t0: Instant,
        decode: Option<(f64, Instant)>,
        mut look: SecondLook,
    ) -> Next {
        let (w, h) = image.dimensions();
        look.next += 1;
        let f = look.fraction();
        let (mx, my) = (w as f32 * (1.0 - f) / 2.0, h as f32 * (1.0 - f) / 2.0);
        let (x1, y1) = (w as f32 - mx, h as f32 - my);
        let crop = [[mx, my], [x1, my], [x1, y1], [mx, y1]];
        let mut p = self.prepare(image, &opts, Some(crop), t0);
        p.decode = decode;
        p.second_look = Some(look);
        Next::Infer(p)
    }

    /// Raw model outputs for a preprocessed input (for evaluation tools).
    pub fn infer(&self, input: &[f32]) -> Result<RawOutputs> {
        self.engine.infer(input)
    }

    /// Per-op timing of this reader's engine on a preprocessed input (benchmark tooling).
    pub fn profile(&self, input: &[f32], runs: usize) -> Result<Vec<crate::engine::OpTime>> {
        self.engine.profile(input, runs)
    }
}

/// Run a read, turning a panic anywhere below (a decoder bug, say) into `Error::Internal`, so one bad
/// input cannot take a batch or a page down. Both public read entry points go through here.
fn guarded(read: impl FnOnce() -> Result<Reading>) -> Result<Reading> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)).unwrap_or_else(|p| {
        let msg = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(Error::Internal(msg))
    })
}

/// Undo a clockwise rotation of `deg`: turn the film counter-clockwise and relabel its corners.
fn turn_upright(film: Film, deg: u32) -> Film {
    let quarter_turns = (deg / 90) as usize % 4;
    let image = match quarter_turns {
        1 => imageops::rotate270(&film.image),
        2 => imageops::rotate180(&film.image),
        3 => imageops::rotate90(&film.image),
        _ => film.image,
    };
    let mut corners: Quad = film.corners;
    corners.rotate_left(quarter_turns);
    Film { image, corners, ..film }
}

fn film_min_side(q: &Quad) -> f32 {
    (0..4).map(|i| geometry::dist(q[i], q[(i + 1) % 4])).fold(f32::INFINITY, f32::min)
}

fn argmax(v: &[f32]) -> (usize, f32) {
    v.iter().copied().enumerate().fold((0, f32::NEG_INFINITY), |a, (i, x)| if x > a.1 { (i, x) } else { a })
}

fn ms(t: Instant) -> f64 {
    (t.elapsed().as_secs_f64() * 1e5).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn turning_upright_relabels_corners_to_follow_the_pixels() {
        // a 4x2 film whose top-left pixel is marked; it was rotated 90 degrees clockwise
        let mut img = RgbImage::new(4, 2);
        img.put_pixel(3, 0, Rgb([255, 0, 0])); // after a cw turn, the original TL lands top-right
        let corners = [[0.0, 0.0], [4.0, 0.0], [4.0, 2.0], [0.0, 2.0]];
        let f = turn_upright(Film { image: img, corners, detected: false, trimmed: false }, 90);
        assert_eq!(f.image.dimensions(), (2, 4));
        assert_eq!(f.image.get_pixel(0, 0)[0], 255);
        // the upright film's TL is the photo's TR corner
        assert_eq!(f.corners[0], [4.0, 0.0]);
    }

    /// The inputs a scripted engine was called with, in call order.
    type Inputs = Arc<std::sync::Mutex<Vec<Vec<f32>>>>;

    /// An engine that answers each call with the next scripted OOD score (upright and sure unless
    /// `orientations` scripts otherwise, never inverted), and records its calls and their inputs.
    struct Scripted {
        manifest: Manifest,
        scores: Vec<f32>,
        inverted: f32,
        /// Calls from this one on fail.
        fail_from: usize,
        calls: Arc<AtomicUsize>,
        /// Per call, the orientation class named and its probability (upright and sure when absent).
        orientations: Vec<(usize, f32)>,
        /// The inputs the engine was called with.
        inputs: Inputs,
    }

    impl Scripted {
        /// Answers with `scores` in turn (the last one repeated), upright and sure, never inverted, never failing.
        fn new(manifest: &Manifest, scores: Vec<f32>, calls: &Arc<AtomicUsize>) -> Scripted {
            Scripted {
                manifest: manifest.clone(),
                scores,
                inverted: 0.0,
                fail_from: usize::MAX,
                calls: calls.clone(),
                orientations: Vec::new(),
                inputs: Default::default(),
            }
        }
    }

    impl Engine for Scripted {
        fn name(&self) -> &'static str {
            "scripted"
        }
        fn infer(&self, input: &[f32]) -> Result<RawOutputs> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            self.inputs.lock().unwrap().push(input.to_vec());
            if n >= self.fail_from {
                return Err(Error::Inference("scripted failure".into()));
            }
            let score = self.scores[n.min(self.scores.len() - 1)];
            let (class, p) = self.orientations.get(n).copied().unwrap_or((0, 1.0));
            let mut orientation = vec![(1.0 - p) / 3.0; 4];
            orientation[class] = p;
            Ok(RawOutputs {
                probabilities: vec![0.9],
                cam: vec![0.0; 4],
                cam_height: 2,
                cam_width: 2,
                orientation,
                inverted: self.inverted,
                embedding: embedding_scoring(&self.manifest, score),
                opacity: None,
            })
        }
    }

    /// An embedding whose OOD score is `target` (within 1e-3): the mean moved along the first component.
    fn embedding_scoring(m: &Manifest, target: f32) -> Vec<f32> {
        let at = |t: f32| -> Vec<f32> { m.ood.mean.iter().zip(&m.ood.components[0]).map(|(a, c)| a + t * c).collect() };
        let (mut lo, mut hi) = (0.0f32, 1.0f32);
        while quality::ood_score(&at(hi), &m.ood) < target {
            hi *= 2.0;
        }
        for _ in 0..60 {
            let mid = (lo + hi) / 2.0;
            if quality::ood_score(&at(mid), &m.ood) < target { lo = mid } else { hi = mid }
        }
        at(hi)
    }

    /// A reader of the bundled manifest whose engine answers with `scores` in turn; and its call count.
    fn scripted_reader(scores: &[f32], inverted: f32) -> (Reader, Arc<AtomicUsize>) {
        let manifest = Manifest::from_json(BUNDLED_MANIFEST).unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let scores = scores.to_vec();
        let engine = Scripted { inverted, ..Scripted::new(&manifest, scores, &calls) };
        let reader = Reader {
            manifest,
            engine: Box::new(engine),
            accelerator: None,
            limits: DecodeLimits::default(),
            load_timings: Default::default(),
        };
        (reader, calls)
    }

    fn calls(n: &AtomicUsize) -> usize {
        n.load(Ordering::SeqCst)
    }

    /// A textured grey photo (no film edges, not flat), 400x300.
    fn photo() -> RgbImage {
        RgbImage::from_fn(400, 300, |x, y| {
            let v = 128.0 + 60.0 * ((x as f32 / 17.0).sin() * (y as f32 / 23.0).cos());
            Rgb([v as u8; 3])
        })
    }

    fn codes(r: &Reading) -> Vec<&str> {
        r.report.quality.iter().map(|q| q.code.as_str()).collect()
    }

    #[test]
    fn a_photo_refused_whole_is_read_again_at_its_centre_and_the_first_typical_crop_is_kept() {
        let m = Manifest::from_json(BUNDLED_MANIFEST).unwrap();
        let (refuse, second) = (m.ood.threshold * 2.0, m.ood.second_look_threshold.unwrap());
        // whole photo foreign, the 80 % crop between the two thresholds (accepted, but not typical), 60 % typical
        let (reader, n) = scripted_reader(&[refuse, (second + m.ood.threshold) / 2.0, second * 0.5], 0.0);
        let r = reader.read_image(photo(), &ReadOptions::default()).unwrap();
        assert_eq!(calls(&n), 3);
        assert!(r.report.accepted, "{:?}", r.report.quality);
        assert_eq!(codes(&r)[0], "second_look");
        assert!(r.report.quality[0].message.contains("centre 60 %"), "{}", r.report.quality[0].message);
        assert!(!codes(&r).contains(&"not_chest_xray"));
        // the film read is the centred 60 % crop, reported as not detected and not the caller's
        let c = r.report.film.corners;
        let crop = [[80.0, 60.0], [320.0, 60.0], [320.0, 240.0], [80.0, 240.0]];
        assert!(c.iter().flatten().zip(crop.iter().flatten()).all(|(a, b)| (a - b).abs() < 0.01), "{c:?}");
        assert!(!r.report.film.detected && !r.report.film.from_caller);
        assert!(r.report.ood_score <= second);
        let t = &r.report.timings_ms;
        assert!(t.total >= t.film + t.preprocess + t.model + t.regions - 0.05, "{t:?}");
    }

    #[test]
    fn the_first_crop_that_reads_typical_ends_the_second_look() {
        let m = Manifest::from_json(BUNDLED_MANIFEST).unwrap();
        let (reader, n) = scripted_reader(&[m.ood.threshold * 2.0, m.ood.second_look_threshold.unwrap() * 0.5], 0.0);
        let r = reader.read_image(photo(), &ReadOptions::default()).unwrap();
        assert_eq!(calls(&n), 2);
        assert!(r.report.accepted && r.report.quality[0].message.contains("centre 80 %"));
        assert!((r.report.film.corners[0][0] - 40.0).abs() < 0.01, "{:?}", r.report.film.corners);
    }

    #[test]
    fn a_colourful_photo_gets_a_second_look_and_stays_refused_when_its_centre_is_colourful_too() {
        let m = Manifest::from_json(BUNDLED_MANIFEST).unwrap();
        let (reader, n) = scripted_reader(&[m.ood.second_look_threshold.unwrap() * 0.5], 0.0);
        let colourful =
            RgbImage::from_fn(400, 300, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8]));
        let r = reader.read_image(colourful, &ReadOptions::default()).unwrap();
        assert_eq!(calls(&n), 3, "the whole photo and both crops");
        assert!(!r.report.accepted && codes(&r).contains(&"colour_photo"), "{:?}", codes(&r));
        assert!(!codes(&r).contains(&"second_look"));
    }

    #[test]
    fn a_failing_pass_during_the_second_look_reports_the_refused_read_not_an_error() {
        let m = Manifest::from_json(BUNDLED_MANIFEST).unwrap();
        let failing = |fail_from: usize| {
            let (mut reader, n) = scripted_reader(&[], 0.0);
            let manifest = reader.manifest.clone();
            let scores = vec![m.ood.threshold * 2.0];
            reader.engine = Box::new(Scripted { fail_from, ..Scripted::new(&manifest, scores, &n) });
            (reader, n)
        };
        let (reader, n) = failing(1);
        let r = reader.read_image(photo(), &ReadOptions::default()).unwrap();
        assert_eq!(calls(&n), 2);
        assert!(!r.report.accepted && codes(&r).contains(&"not_chest_xray"));
        // a failure on a read's own first pass is still an error
        let (reader, _) = failing(0);
        assert!(matches!(reader.read_image(photo(), &ReadOptions::default()), Err(Error::Inference(_))));
    }

    #[test]
    fn when_no_crop_reads_as_a_typical_chest_film_the_first_refusal_is_reported() {
        let m = Manifest::from_json(BUNDLED_MANIFEST).unwrap();
        let between = (m.ood.second_look_threshold.unwrap() + m.ood.threshold) / 2.0;
        let (reader, n) = scripted_reader(&[m.ood.threshold * 2.0, between, between], 0.0);
        let r = reader.read_image(photo(), &ReadOptions::default()).unwrap();
        assert_eq!(calls(&n), 3, "both crops tried");
        assert!(!r.report.accepted);
        assert!(codes(&r).contains(&"not_chest_xray") && !codes(&r).contains(&"second_look"));
        assert!(r.report.ood_score > m.ood.threshold, "the whole read's report, not a crop's");
        assert_ne!(r.report.film.corners[1][0], 320.0);
    }

    #[test]
    fn no_second_look_for_an_accepted_or_inverted_read_given_corners_or_a_model_without_the_threshold() {
        let m = Manifest::from_json(BUNDLED_MANIFEST).unwrap();
        let (foreign, typical) = (m.ood.threshold * 2.0, m.ood.second_look_threshold.unwrap() * 0.5);
        let (reader, n) = scripted_reader(&[typical], 0.0);
        let r = reader.read_image(photo(), &ReadOptions::default()).unwrap();
        assert!(r.report.accepted && !codes(&r).contains(&"second_look"));
        assert_eq!(calls(&n), 1);

        let (reader, n) = scripted_reader(&[foreign, typical], 0.0);
        let corners = Some([[10.0, 10.0], [390.0, 10.0], [390.0, 290.0], [10.0, 290.0]]);
        let r = reader.read_image(photo(), &ReadOptions { corners, ..Default::default() }).unwrap();
        assert!(!r.report.accepted, "the caller's film is read as given");
        assert_eq!(calls(&n), 1);

        // a negative is refused whatever else, even when it also looks foreign: its read is re-inverted once
        // (two passes), never cropped
        let (reader, n) = scripted_reader(&[foreign, foreign, typical], 0.99);
        let r = reader.read_image(photo(), &ReadOptions::default()).unwrap();
        assert!(!r.report.accepted && codes(&r).contains(&"inverted") && codes(&r).contains(&"not_chest_xray"));
        assert!(!codes(&r).contains(&"second_look"));
        assert_eq!(calls(&n), 2);

        // a flat image: refused as flat (and foreign), nothing to crop
        let (reader, n) = scripted_reader(&[foreign, typical], 0.0);
        let flat = RgbImage::from_pixel(400, 300, Rgb([128, 128, 128]));
        let r = reader.read_image(flat, &ReadOptions::default()).unwrap();
        assert!(!r.report.accepted && codes(&r).contains(&"low_contrast"), "{:?}", codes(&r));
        assert_eq!(calls(&n), 1);

        let (mut reader, n) = scripted_reader(&[foreign, typical], 0.0);
        reader.manifest.ood.second_look_threshold = None;
        let r = reader.read_image(photo(), &ReadOptions::default()).unwrap();
        assert!(!r.report.accepted);
        assert_eq!(calls(&n), 1);
    }

    /// A reader whose engine reads every input as a typical chest film (OOD well within both thresholds),
    /// naming `orientations` in turn; its call count and the inputs it was given.
    fn turning_reader(orientations: &[(usize, f32)]) -> (Reader, Arc<AtomicUsize>, Inputs) {
        let (mut reader, n) = scripted_reader(&[], 0.0);
        let manifest = reader.manifest.clone();
        let scores = vec![manifest.ood.second_look_threshold.unwrap() * 0.5];
        let inputs: Inputs = Default::default();
        reader.engine = Box::new(Scripted {
            orientations: orientations.to_vec(),
            inputs: inputs.clone(),
            ..Scripted::new(&manifest, scores, &n)
        });
        (reader, n, inputs)
    }

    /// The caller's corners (no second look, so only the turn check adds passes).
    fn given_corners() -> ReadOptions {
        ReadOptions {
            corners: Some([[10.0, 10.0], [390.0, 10.0], [390.0, 290.0], [10.0, 290.0]]),
            ..Default::default()
        }
    }

    #[test]
    fn an_unsure_film_whose_turned_reads_each_name_their_turn_is_read_with_a_warning() {
        let m = Manifest::from_json(BUNDLED_MANIFEST).unwrap();
        let unsure = (m.ood.turn_check_min_confidence.unwrap() + m.ood.min_orientation_confidence) / 2.0;
        let (reader, n, inputs) = turning_reader(&[(0, unsure), (1, 0.99), (2, 0.995), (3, 0.99)]);
        let r = reader.read_image(photo(), &ReadOptions::default()).unwrap();
        assert_eq!(calls(&n), 4, "the read and three turned copies");
        assert!(r.report.accepted, "{:?}", r.report.quality);
        assert!(codes(&r).contains(&"turn_checked") && !codes(&r).contains(&"not_chest_xray"), "{:?}", codes(&r));
        // what is reported is the first read's: its orientation confidence, its film
        assert!((r.report.orientation.confidence - unsure).abs() < 1e-6);
        assert!(!r.report.orientation.corrected);
        // the copies are the same input turned a quarter, a half and three quarters clockwise
        let inputs = inputs.lock().unwrap();
        let side = m.input.width as usize;
        for q in 1..4 {
            assert_eq!(inputs[q], preprocess::turned(&inputs[0], side, q), "copy {q}");
        }
        assert_ne!(inputs[1], inputs[0]);
    }

    #[test]
    fn a_turned_read_naming_the_wrong_turn_or_unsure_of_it_ends_the_check_and_the_film_stays_refused() {
        let m = Manifest::from_json(BUNDLED_MANIFEST).unwrap();
        let min = m.ood.turn_check_min_confidence.unwrap();
        let unsure = (min + m.ood.min_orientation_confidence) / 2.0;
        for (script, passes) in [
            (vec![(0, unsure), (0, 0.99)], 2),                 // a texture: "up" stays where it was
            (vec![(0, unsure), (1, 0.99), (3, 0.99)], 3),      // half a turn named as three quarters
            (vec![(0, unsure), (1, 0.99), (2, min * 0.9)], 3), // the right turn, but unsure of it
        ] {
            let (reader, n, _) = turning_reader(&script);
            let r = reader.read_image(photo(), &given_corners()).unwrap();
            assert_eq!(calls(&n), passes, "{script:?}");
            assert!(!r.report.accepted, "{script:?}");
            assert!(codes(&r).contains(&"not_chest_xray") && !codes(&r).contains(&"turn_checked"));
            assert!((r.report.orientation.confidence - unsure).abs() < 1e-6, "the first read is reported");
        }
    }

    #[test]
    fn a_failing_pass_during_the_turn_check_ends_it_as_failed_and_the_read_is_refused_not_an_error() {
        let m = Manifest::from_json(BUNDLED_MANIFEST).unwrap();
        let unsure = (m.ood.turn_check_min_confidence.unwrap() + m.ood.min_orientation_confidence) / 2.0;
        for (opts, passes) in [(given_corners(), 2), (ReadOptions::default(), 3)] {
            let (mut reader, n, _) = turning_reader(&[]);
            let typical = vec![m.ood.second_look_threshold.unwrap() * 0.5];
            let orientations = vec![(0, unsure)];
            reader.engine = Box::new(Scripted { fail_from: 1, orientations, ..Scripted::new(&m, typical, &n) });
            // the first pass, the failing turned pass, and without corners the second look's first crop, whose
            // failing pass ends the second look too
            let r = reader.read_image(photo(), &opts).unwrap();
            assert_eq!(calls(&n), passes);
            assert!(
                !r.report.accepted && codes(&r).contains(&"not_chest_xray") && !codes(&r).contains(&"turn_checked")
            );
        }
    }

    #[test]
    fn no_turn_check_for_a_sure_film_a_hopeless_one_a_foreign_one_or_a_model_without_it() {
        let m = Manifest::from_json(BUNDLED_MANIFEST).unwrap();
        let min = m.ood.turn_check_min_confidence.unwrap();
        let unsure = (min + m.ood.min_orientation_confidence) / 2.0;
        // sure of its orientation: accepted after one pass
        let (reader, n, _) = turning_reader(&[(0, 0.999), (1, 0.99)]);
        let r = reader.read_image(photo(), &given_corners()).unwrap();
        assert!(r.report.accepted && !codes(&r).contains(&"turn_checked") && calls(&n) == 1, "{:?}", codes(&r));
        // too unsure to be checked: refused after one pass
        let (reader, n, _) = turning_reader(&[(0, min * 0.9), (1, 0.99), (2, 0.99), (3, 0.99)]);
        let r = reader.read_image(photo(), &given_corners()).unwrap();
        assert!(!r.report.accepted && calls(&n) == 1);
        // far from chest films: refused for that, unchecked
        let (mut reader, n, _) = turning_reader(&[(0, unsure), (1, 0.99), (2, 0.99), (3, 0.99)]);
        let far = m.ood.threshold * 2.0;
        let orientations = vec![(0, unsure), (1, 0.99), (2, 0.99), (3, 0.99)];
        reader.engine = Box::new(Scripted { orientations, ..Scripted::new(&m, vec![far], &n) });
        let r = reader.read_image(photo(), &given_corners()).unwrap();
        assert!(!r.report.accepted && calls(&n) == 1);
        // a manifest without the field: refused as before, one pass
        let (mut reader, n, _) = turning_reader(&[(0, unsure), (1, 0.99), (2, 0.99), (3, 0.99)]);
        reader.manifest.ood.turn_check_min_confidence = None;
        let r = reader.read_image(photo(), &given_corners()).unwrap();
        assert!(!r.report.accepted && codes(&r).contains(&"not_chest_xray") && calls(&n) == 1);
    }
}
