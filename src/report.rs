//! The one `Report` type: the contract for the CLI's JSON, the JS API and the page. Version it.

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Bumped when a field changes meaning or disappears (adding fields does not bump it).
pub const REPORT_SCHEMA_VERSION: u32 = 1;

pub const DISCLAIMER: &str = "Decision aid only, not a diagnosis. A trained clinician must review the film \
and the patient; a negative result does not rule out disease.";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub schema_version: u32,
    /// The input's name where there is one (the CLI's file path).
    pub file: Option<String>,
    pub ok: bool,
    pub error: Option<ErrorInfo>,
    /// False when any quality item has severity "refuse": findings are then for audit, not for use.
    pub accepted: bool,
    pub quality: Vec<QualityItem>,
    pub findings: Vec<Finding>,
    pub film: FilmInfo,
    /// Out-of-distribution score (1 is typical of training X-rays; refused above `ood_threshold`).
    pub ood_score: f32,
    pub ood_threshold: f32,
    pub orientation: OrientationInfo,
    /// Model's probability that the image is a negative (inverted greys).
    pub inverted_probability: f32,
    pub engine: String,
    /// Why `engine` is not the engine that was asked for (the WebGPU engine failed or is missing, and the
    /// read was done on the CPU). Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_note: Option<String>,
    pub model: ModelInfo,
    pub image: ImageSize,
    pub timings_ms: Timings,
    pub disclaimer: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorInfo {
    pub kind: String,
    pub message: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The read stands, with a caveat.
    Warn,
    /// The image was not accepted for reading; findings are reported for audit only.
    Refuse,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct QualityItem {
    /// Stable machine name: not_chest_xray, colour_photo, page_or_screen, inverted, rotated, too_dark, too_bright,
    /// low_contrast, low_resolution, blurred, second_look (the photo's centre was read after the whole read
    /// was refused; `FilmInfo::corners` is that crop), turn_checked (an unsure orientation settled by reading the
    /// film turned). (Whether a film was found in a photo is `FilmInfo::detected`,
    /// not a quality item: a file that is the radiograph itself has no film edge to find.)
    pub code: String,
    pub severity: Severity,
    /// What was found and what to do about it, for the person holding the phone.
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Finding {
    pub label: String,
    pub probability: f32,
    pub threshold: f32,
    pub positive: bool,
    /// Centre of the hot region holding the map's strongest activation (`regions::hot_centre`), in input-image
    /// pixels (after EXIF orientation).
    pub peak: [f32; 2],
    /// Hot regions (empty unless positive), axis-aligned boxes in input-image pixels: the one holding `peak`
    /// first (a positive finding always has it), then any others, strongest first.
    pub regions: Vec<Region>,
    /// Plain-language reading of the result.
    pub wording: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Region {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
    /// Mean relative activation inside the region, 0..1.
    pub score: f32,
    /// The region's outline (the flattened-film box mapped through the perspective), input pixels.
    pub polygon: [[f32; 2]; 4],
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FilmInfo {
    /// A film boundary was found in the photo (false: whole image read, corners given by the caller, or the
    /// photo's centre read by a second look).
    pub detected: bool,
    /// Corners given by the caller were used.
    pub from_caller: bool,
    /// Flat padding (digital black bars or a frame) was cut off the image's edges before reading; the
    /// corners are those of the image inside it.
    #[serde(default)]
    pub padding_trimmed: bool,
    /// TL, TR, BR, BL of the radiograph as read (upright), input-image pixels.
    pub corners: [[f32; 2]; 4],
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OrientationInfo {
    /// How far the film appeared rotated, clockwise, before correction.
    pub detected_deg_clockwise: u32,
    pub confidence: f32,
    pub corrected: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelInfo {
    pub name: String,
    pub version: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct ImageSize {
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Timings {
    pub decode: f64,
    pub film: f64,
    pub preprocess: f64,
    pub model: f64,
    pub regions: f64,
    pub total: f64,
}

pub fn wording(label: &str, probability: f32, threshold: f32, accepted: bool) -> String {
    let what = if label == "abnormal" { "an abnormality".to_string() } else { format!("{label}") };
    if !accepted {
        return format!(
            "Not read: the image did not pass the quality checks (see the reasons). The {label} score \
             ({probability:.2}) is shown for audit only."
        );
    }
    if probability >= threshold {
        format!(
            "Suggests {what} (score {probability:.2}, threshold {threshold:.2}). Have a clinician review \
             the film; the highlighted regions mark where the model saw the strongest signs."
        )
    } else {
        format!(
            "Does not suggest {what} at the operating threshold (score {probability:.2}, threshold \
             {threshold:.2}). This does not rule out disease; a clinician should still review the film."
        )
    }
}

impl Report {
    /// Re-express every pixel coordinate for an image scaled by `sx`, `sy` (used when a large photo was
    /// downscaled before reading, so that the report speaks in the caller's original pixels).
    pub fn scale_coordinates(&mut self, sx: f32, sy: f32) {
        let p = |q: &mut [f32; 2]| {
            q[0] *= sx;
            q[1] *= sy;
        };
        self.film.corners.iter_mut().for_each(p);
        for f in &mut self.findings {
            p(&mut f.peak);
            for r in &mut f.regions {
                r.x *= sx;
                r.y *= sy;
                r.w *= sx;
                r.h *= sy;
                r.polygon.iter_mut().for_each(p);
            }
        }
        self.image.width = (self.image.width as f32 * sx).round() as u32;
        self.image.height = (self.image.height as f32 * sy).round() as u32;
    }

    /// The report line for an input that could not be read at all.
    pub fn failure(name: Option<String>, err: &Error) -> serde_json::Value {
        serde_json::json!({
            "schema_version": REPORT_SCHEMA_VERSION,
            "file": name,
            "ok": false,
            "error": {"kind": err.kind(), "message": err.to_string()},
        })
    }
}
