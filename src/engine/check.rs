//! The self-check a GPU engine passes before it reads for anyone: a fixed input through it and through the CPU
//! engine, compared with the tolerances of the parity tests. The browser's `gpuCheck` (wasm.rs) and the
//! CLI's `--engine auto` (native) use it.

use super::RawOutputs;
use crate::manifest::InputSpec;
use crate::preprocess;

/// Largest difference allowed in any probability, orientation probability or the polarity.
pub const MAX_DIFFERENCE: f32 = 1e-3;
/// Smallest correlation allowed between the two engines' CAMs.
pub const MIN_CAM_CORRELATION: f32 = 0.999;

/// A fixed, smooth test pattern at the model's input size, normalised as a film would be.
pub fn check_input(spec: &InputSpec) -> Vec<f32> {
    let grey = preprocess::GreyF32::from_fn(spec.width, spec.height, |x, y| {
        let (fx, fy) = (x as f32 / spec.width as f32, y as f32 / spec.height as f32);
        image::Luma([0.5 + 0.3 * (fx * 9.0).sin() * (fy * 7.0).cos() - 0.2 * (fx - 0.5).abs()])
    });
    preprocess::to_input(&grey, spec)
}

/// How two engines' outputs for the same input agree.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Agreement {
    /// Largest difference over the probabilities, the orientation and the polarity.
    pub max_difference: f32,
    /// Correlation of the CAMs (all findings together), or of the opacity maps where that is lower (a model
    /// with an opacity output; 0 when only one engine returned one).
    pub cam_correlation: f32,
}

impl Agreement {
    pub fn of(candidate: &RawOutputs, cpu: &RawOutputs) -> Agreement {
        let max_difference = [
            max_abs_diff(&candidate.probabilities, &cpu.probabilities),
            max_abs_diff(&candidate.orientation, &cpu.orientation),
            (candidate.inverted - cpu.inverted).abs(),
        ]
        .into_iter()
        .fold(0.0, f32::max);
        let opacity = match (&candidate.opacity, &cpu.opacity) {
            (Some(a), Some(b)) => correlation(a, b),
            (None, None) => 1.0,
            _ => 0.0,
        };
        Agreement { max_difference, cam_correlation: correlation(&candidate.cam, &cpu.cam).min(opacity) }
    }

    pub fn passed(&self) -> bool {
        self.max_difference <= MAX_DIFFERENCE && self.cam_correlation >= MIN_CAM_CORRELATION
    }
}

/// Median of timings (NaN for none).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(if a.len() == b.len() { 0.0 } else { f32::INFINITY }, f32::max)
}

/// Pearson correlation of two equally long series (0 for different lengths or none; 1 for two constants).
pub fn correlation(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() || a.is_empty() {
        return 0.0;
    }
    let n = a.len() as f32;
    let (ma, mb) = (a.iter().sum::<f32>() / n, b.iter().sum::<f32>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    if saa == 0.0 && sbb == 0.0 { 1.0 } else { sab / (saa * sbb).sqrt().max(f32::MIN_POSITIVE) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outputs(p: f32, cam: Vec<f32>) -> RawOutputs {
        RawOutputs {
            probabilities: vec![p],
            cam_height: 1,
            cam_width: cam.len(),
            cam,
            orientation: vec![1.0, 0.0, 0.0, 0.0],
            inverted: 0.0,
            embedding: vec![],
            opacity: None,
        }
    }

    #[test]
    fn agreement_passes_close_outputs_and_fails_a_drifted_probability_or_a_scrambled_cam() {
        let cpu = outputs(0.5, vec![0.0, 1.0, 2.0, 3.0]);
        assert!(Agreement::of(&outputs(0.5005, vec![0.0, 1.0, 2.0, 3.001]), &cpu).passed());
        assert!(!Agreement::of(&outputs(0.502, vec![0.0, 1.0, 2.0, 3.0]), &cpu).passed());
        assert!(!Agreement::of(&outputs(0.5, vec![3.0, 1.0, 2.0, 0.0]), &cpu).passed());
        assert!(!Agreement::of(&outputs(0.5, vec![0.0, 1.0]), &cpu).passed(), "a CAM of another shape");
        // a model with an opacity map: both engines' maps must agree too
        let with_map = |map: Vec<f32>| RawOutputs { opacity: Some(map), ..cpu.clone() };
        let cpu_map = with_map(vec![-2.0, 0.5, 1.0, 3.0]);
        assert!(Agreement::of(&with_map(vec![-2.0, 0.5, 1.0, 3.001]), &cpu_map).passed());
        assert!(!Agreement::of(&with_map(vec![3.0, 0.5, 1.0, -2.0]), &cpu_map).passed(), "a scrambled opacity map");
        assert!(!Agreement::of(&cpu, &cpu_map).passed(), "an engine that lost the opacity output");
    }
}
