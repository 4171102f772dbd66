//! The model manifest: every model-specific fact the reader needs, read from JSON next to the ONNX file.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub schema: u32,
    pub name: String,
    pub version: String,
    /// Lower-case hex sha256 of the ONNX file.
    pub sha256: String,
    pub input: InputSpec,
    pub outputs: OutputNames,
    pub findings: Vec<FindingSpec>,
    pub orientation: OrientationSpec,
    pub inverted: InvertedSpec,
    pub ood: OodSpec,
    #[serde(default)]
    pub regions: RegionSpec,
    /// Free-form provenance (training data, metrics); shown by `xray-reader info`.
    #[serde(default)]
    pub about: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InputSpec {
    pub name: String,
    pub channels: u32,
    pub height: u32,
    pub width: u32,
    /// Percentiles of the film's grey values mapped to 0 and 1 (then clipped).
    pub percentile_low: f32,
    pub percentile_high: f32,
    /// Local contrast equalisation after the percentile mapping, when the model was trained with it;
    /// absent means none (models up to 1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clahe: Option<ClaheSpec>,
    /// Flat padding cut off the image's edges before the film stage (src/border.rs), when the model was
    /// trained with it; absent means none (models up to 1.2.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trim_border: Option<TrimSpec>,
}

/// CLAHE as OpenCV's `createCLAHE(clip_limit, tiles).apply` on the 8-bit rounding of the percentile-mapped
/// input, followed by the percentile mapping again (models/training/data.py `to_input`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClaheSpec {
    pub clip_limit: f32,
    /// Tile grid, columns then rows.
    pub tiles: [u32; 2],
}

/// Edge rows and columns whose grey levels span at most `max_range` are trimmed, unless less than
/// `min_keep` of the height or width would remain (models/training/data.py `flat_border`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrimSpec {
    pub max_range: u8,
    pub min_keep: f32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutputNames {
    pub probabilities: String,
    pub cam: String,
    pub orientation: String,
    pub inverted: String,
    pub embedding: String,
    /// Optional (model 1.5.0 on): per-cell logits, on the CAM's grid, that density has been added there
    /// (an opacity), from a head trained on synthetic opacities. When present, peaks and regions follow its
    /// sigmoid, times the CAM as `regions.cam_exponent` says (`regions::localisation_map`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opacity: Option<String>,
}

impl OutputNames {
    /// The output names in the order engines return them: the five every model has, then `opacity` when
    /// the manifest names it.
    pub fn names(&self) -> Vec<&str> {
        let mut names =
            vec![self.probabilities.as_str(), &self.cam, &self.orientation, &self.inverted, &self.embedding];
        names.extend(self.opacity.as_deref());
        names
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FindingSpec {
    pub label: String,
    /// Operating threshold on the probability: at or above it the finding is reported positive.
    pub threshold: f32,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrientationSpec {
    /// Orientation classes in model output order, as degrees the image is rotated clockwise.
    pub classes_deg_clockwise: Vec<u32>,
    /// Correct the rotation only when the model is at least this sure.
    pub min_confidence: f32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InvertedSpec {
    pub threshold: f32,
}

/// Out-of-distribution check: squared Mahalanobis distance of the embedding in a PCA subspace of the
/// training embeddings plus the squared residual outside it (scaled by its mean), divided by the dimension.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OodSpec {
    pub mean: Vec<f32>,
    pub components: Vec<Vec<f32>>,
    pub variances: Vec<f32>,
    pub residual_scale: f32,
    /// Scores above this are refused as "not a chest X-ray".
    pub threshold: f32,
    /// A chest film has an unmistakable "up": when the orientation head's top probability is below this,
    /// the image is refused as "not a chest X-ray" too (0 disables the check).
    #[serde(default)]
    pub min_orientation_confidence: f32,
    /// When the whole read is refused as not a chest film, the reader reads the photo's centre; that read
    /// is kept only when its score is at most this (absent: no second look). At most `threshold`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second_look_threshold: Option<f32>,
    /// A read refused only because its orientation confidence is under `min_orientation_confidence`, but at
    /// least this, is read again turned by 90, 180 and 270 degrees; when every turned read names its turn
    /// with at least this confidence, the film has an "up" after all and is not refused for it (absent: no
    /// such check). Below `min_orientation_confidence`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn_check_min_confidence: Option<f32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegionSpec {
    /// A pixel is "hot" when its normalised activation is at least this fraction of the peak.
    pub hot_fraction: f32,
    /// Regions smaller than this fraction of the film are dropped.
    pub min_area_fraction: f32,
    /// For a model with an opacity map: the map peaks and regions follow is the finding's CAM (scaled to
    /// [0, 1]) raised to this power, times sigmoid(opacity) (`regions::localisation_map`). 1 (the default,
    /// what model 1.5.0's manifest meant) weighs the CAM fully; 0 follows the opacity map alone (1.6.0's
    /// manifest since session 31: its lesions are found more often without the CAM, models/MODEL_CARD.md).
    #[serde(default = "full_cam")]
    pub cam_exponent: f32,
    /// Optional (1.6.0's manifest since session 32): weights in [0, 1] on the CAM's grid, row by row from the
    /// top, for where the lungs usually lie on a film; the map is multiplied by them before the peak and the
    /// regions are taken (`regions::localisation_map`), so places the lungs do not reach (the trachea and
    /// mediastinum, under the diaphragm, an image corner) win the peak less often. The model's CAM must have
    /// this grid. Learned without labels from the training normals (models/training/lung_prior.py).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lung_prior: Option<Vec<Vec<f32>>>,
}

fn full_cam() -> f32 {
    1.0
}

impl Default for RegionSpec {
    fn default() -> Self {
        RegionSpec { hot_fraction: 0.6, min_area_fraction: 0.01, cam_exponent: full_cam(), lung_prior: None }
    }
}

impl RegionSpec {
    /// The lung prior's grid (rows, columns), when the manifest has one.
    pub fn lung_prior_grid(&self) -> Option<[usize; 2]> {
        self.lung_prior.as_ref().map(|rows| [rows.len(), rows.first().map_or(0, Vec::len)])
    }
}

impl Manifest {
    pub fn from_json(bytes: &[u8]) -> Result<Manifest> {
        let m: Manifest = serde_json::from_slice(bytes).map_err(|e| Error::Manifest(e.to_string()))?;
        m.validate()?;
        Ok(m)
    }

    fn validate(&self) -> Result<()> {
        let bad = |s: String| Err(Error::Manifest(s));
        if self.schema != 1 {
            return bad(format!("schema {} is not supported (expected 1)", self.schema));
        }
        if self.sha256.len() != 64 || !self.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return bad("sha256 must be 64 hex digits".into());
        }
        let i = &self.input;
        if i.channels != 1 || !(16..=2048).contains(&i.height) || !(16..=2048).contains(&i.width) {
            return bad(format!("input {}x{}x{} is not supported", i.channels, i.height, i.width));
        }
        if !(0.0..50.0).contains(&i.percentile_low) || !(50.0..=100.0).contains(&i.percentile_high) {
            return bad("percentiles must satisfy 0 <= low < 50 <= high <= 100".into());
        }
        if let Some(c) = &i.clahe {
            let fits = |t: u32, size: u32| (1..=size).contains(&t);
            if !(c.clip_limit.is_finite() && c.clip_limit >= 0.0)
                || !fits(c.tiles[0], i.width)
                || !fits(c.tiles[1], i.height)
            {
                return bad("input.clahe needs clip_limit >= 0 and between 1 and the input size tiles per side".into());
            }
        }
        if let Some(t) = &i.trim_border {
            if !(t.min_keep > 0.0 && t.min_keep <= 1.0) {
                return bad("input.trim_border.min_keep must lie in (0, 1]".into());
            }
        }
        if !(0.0..=4.0).contains(&self.regions.cam_exponent) {
            return bad("regions.cam_exponent must lie in [0, 4]".into());
        }
        if let Some(rows) = &self.regions.lung_prior {
            let width = rows.first().map_or(0, Vec::len);
            if width == 0
                || rows.iter().any(|r| r.len() != width)
                || rows.iter().flatten().any(|v| !(0.0..=1.0).contains(v))
                || !rows.iter().flatten().any(|v| *v > 0.0)
            {
                return bad("regions.lung_prior must be equally long rows of weights in [0, 1], not all 0".into());
            }
        }
        if self.findings.is_empty() || !self.findings.iter().any(|f| f.label == "abnormal") {
            return bad("findings must include \"abnormal\"".into());
        }
        if self.findings.iter().any(|f| !(0.0..=1.0).contains(&f.threshold)) {
            return bad("finding thresholds must lie in [0, 1]".into());
        }
        if self.orientation.classes_deg_clockwise.is_empty()
            || self.orientation.classes_deg_clockwise.iter().any(|d| d % 90 != 0 || *d >= 360)
        {
            return bad("orientation classes must be multiples of 90 below 360".into());
        }
        let o = &self.ood;
        let d = o.mean.len();
        if d == 0 || o.components.len() != o.variances.len() || o.components.iter().any(|c| c.len() != d) {
            return bad("ood statistics have inconsistent dimensions".into());
        }
        if o.variances.iter().any(|v| !(*v > 0.0)) || !(o.residual_scale > 0.0) || !o.threshold.is_finite() {
            return bad("ood variances, residual_scale and threshold must be positive and finite".into());
        }
        if !(0.0..=1.0).contains(&o.min_orientation_confidence) {
            return bad("ood.min_orientation_confidence must lie in [0, 1]".into());
        }
        if o.second_look_threshold.is_some_and(|t| !(t > 0.0 && t <= o.threshold)) {
            return bad("ood.second_look_threshold must be positive and at most ood.threshold".into());
        }
        // at least the confidence a rotation is corrected at: a film the check confirms as turned has then
        // always been turned upright first
        let corrects_at = self.orientation.min_confidence;
        if o.turn_check_min_confidence
            .is_some_and(|c| !(c >= corrects_at && c > 0.0 && c < o.min_orientation_confidence))
        {
            return bad("ood.turn_check_min_confidence must be at least orientation.min_confidence and below \
                        ood.min_orientation_confidence"
                .into());
        }
        Ok(())
    }

    pub fn finding(&self, label: &str) -> Option<&FindingSpec> {
        self.findings.iter().find(|f| f.label == label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundled() -> serde_json::Value {
        serde_json::from_slice(crate::reader::BUNDLED_MANIFEST).unwrap()
    }

    /// The bundled manifest with `section.key` set to `value` must be refused as a bad manifest.
    fn assert_refused_with(section: &str, key: &str, value: serde_json::Value) {
        let mut m = bundled();
        m[section][key] = value.clone();
        let e = Manifest::from_json(&serde_json::to_vec(&m).unwrap()).err();
        assert!(matches!(e, Some(Error::Manifest(_))), "{section}.{key} = {value} accepted");
    }

    /// Without `section.key` (older models) the manifest still parses, and writing it back leaves it out.
    fn parsed_without(section: &str, key: &str) -> Manifest {
        let mut m = bundled();
        m[section].as_object_mut().unwrap().remove(key);
        let parsed = Manifest::from_json(&serde_json::to_vec(&m).unwrap()).unwrap();
        assert!(serde_json::to_value(&parsed).unwrap()[section].get(key).is_none());
        parsed
    }

    #[test]
    fn clahe_settings_are_read_and_checked() {
        let mut m = bundled();
        m["input"]["clahe"] = serde_json::json!({"clip_limit": 2.0, "tiles": [8, 8]});
        let parsed = Manifest::from_json(&serde_json::to_vec(&m).unwrap()).unwrap();
        assert_eq!(parsed.input.clahe, Some(ClaheSpec { clip_limit: 2.0, tiles: [8, 8] }));

        for bad in [
            serde_json::json!({"clip_limit": 2.0, "tiles": [0, 8]}),
            serde_json::json!({"clip_limit": -1.0, "tiles": [8, 8]}),
            serde_json::json!({"clip_limit": 2.0, "tiles": [8, 500]}),
            serde_json::json!({"clip_limit": 2.0}),
        ] {
            assert_refused_with("input", "clahe", bad);
        }
        // absent: no CLAHE (models up to 1.1.0)
        assert_eq!(parsed_without("input", "clahe").input.clahe, None);
    }

    #[test]
    fn border_trim_settings_are_read_and_checked() {
        let mut m = bundled();
        m["input"]["trim_border"] = serde_json::json!({"max_range": 6, "min_keep": 0.5});
        let parsed = Manifest::from_json(&serde_json::to_vec(&m).unwrap()).unwrap();
        assert_eq!(parsed.input.trim_border, Some(TrimSpec { max_range: 6, min_keep: 0.5 }));
        for bad in [
            serde_json::json!({"max_range": 6, "min_keep": 0.0}),
            serde_json::json!({"max_range": 6, "min_keep": 1.5}),
            serde_json::json!({"max_range": 300, "min_keep": 0.5}),
            serde_json::json!({"max_range": -1, "min_keep": 0.5}),
            serde_json::json!({"min_keep": 0.5}),
        ] {
            assert_refused_with("input", "trim_border", bad);
        }
        assert_eq!(parsed_without("input", "trim_border").input.trim_border, None);
    }

    #[test]
    fn the_second_look_threshold_is_read_and_must_lie_below_the_refusal_threshold() {
        let parsed = Manifest::from_json(&serde_json::to_vec(&bundled()).unwrap()).unwrap();
        let t = parsed.ood.second_look_threshold.expect("the bundled model has a second look");
        assert!(t > 0.0 && t < parsed.ood.threshold);
        for bad in [0.0, -1.0, parsed.ood.threshold as f64 * 1.5] {
            assert_refused_with("ood", "second_look_threshold", serde_json::json!(bad));
        }
        // absent (models before this field): no second look
        assert_eq!(parsed_without("ood", "second_look_threshold").ood.second_look_threshold, None);
    }

    #[test]
    fn the_cam_exponent_is_read_and_checked() {
        let parsed = Manifest::from_json(&serde_json::to_vec(&bundled()).unwrap()).unwrap();
        assert_eq!(parsed.regions.cam_exponent, 0.0, "the bundled model's map is its opacity map alone");
        for bad in [-1.0, 5.0] {
            assert_refused_with("regions", "cam_exponent", serde_json::json!(bad));
        }
        // absent (1.5.0's manifest): the full CAM, as that manifest meant
        let mut m = bundled();
        m["regions"].as_object_mut().unwrap().remove("cam_exponent");
        assert_eq!(Manifest::from_json(&serde_json::to_vec(&m).unwrap()).unwrap().regions.cam_exponent, 1.0);
    }

    #[test]
    fn the_lung_prior_is_read_and_checked() {
        let parsed = Manifest::from_json(&serde_json::to_vec(&bundled()).unwrap()).unwrap();
        assert_eq!(parsed.regions.lung_prior_grid(), Some([14, 14]), "the bundled model's prior is on its CAM grid");
        let prior = parsed.regions.lung_prior.as_ref().unwrap();
        // the lungs outweigh the image's corners and the mediastinum's top
        assert!(prior[6][4] > 2.0 * prior[0][0] && prior[6][9] > 2.0 * prior[13][13], "{prior:?}");
        assert!(prior[6][4] > 1.5 * prior[1][7], "{prior:?}");
        for bad in [
            serde_json::json!([]),
            serde_json::json!([[]]),
            serde_json::json!([[0.5, 0.5], [0.5]]),
            serde_json::json!([[0.5, 1.5], [0.5, 0.5]]),
            serde_json::json!([[0.5, -0.1], [0.5, 0.5]]),
            serde_json::json!([[0.0, 0.0], [0.0, 0.0]]),
            serde_json::json!([[0.5, "a"], [0.5, 0.5]]),
        ] {
            assert_refused_with("regions", "lung_prior", bad);
        }
        // absent (manifests before session 32): no prior
        assert_eq!(parsed_without("regions", "lung_prior").regions.lung_prior_grid(), None);
    }

    #[test]
    fn the_turn_check_confidence_is_read_and_must_lie_below_the_orientation_minimum() {
        let parsed = Manifest::from_json(&serde_json::to_vec(&bundled()).unwrap()).unwrap();
        let c = parsed.ood.turn_check_min_confidence.expect("the bundled model has a turn check");
        assert!(c > 0.0 && c < parsed.ood.min_orientation_confidence);
        let below_correction = parsed.orientation.min_confidence as f64 * 0.9;
        for bad in [0.0, -0.5, below_correction, parsed.ood.min_orientation_confidence as f64, 1.5] {
            assert_refused_with("ood", "turn_check_min_confidence", serde_json::json!(bad));
        }
        // absent (models before this field): no turn check
        assert_eq!(parsed_without("ood", "turn_check_min_confidence").ood.turn_check_min_confidence, None);
    }
}
