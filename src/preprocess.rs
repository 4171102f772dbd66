//! Preprocess: the flattened film -> the model's input tensor, exactly as the manifest (and training) say:
//! BT.601 luma, area-style resize to the input size (aspect not kept), percentile normalisation to [0, 1].
//! Grey values are kept in [0, 1] (the `image` crate clamps f32 pixels to that range when it resizes).

use image::{ImageBuffer, Luma, RgbImage, imageops};

use crate::manifest::InputSpec;

pub type GreyF32 = ImageBuffer<Luma<f32>, Vec<f32>>;

/// BT.601 luma of one pixel, in [0, 1].
pub fn luma_of(p: &image::Rgb<u8>) -> f32 {
    (0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32) / 255.0
}

pub fn luma(img: &RgbImage) -> GreyF32 {
    let (w, h) = img.dimensions();
    let data = img.pixels().map(luma_of).collect();
    GreyF32::from_raw(w, h, data).expect("buffer has w*h values")
}

/// Linear-interpolated percentile (numpy's default method) of unsorted values, `q` in [0, 100].
pub fn percentile(values: &[f32], q: f32) -> f32 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    percentile_sorted(&v, q)
}

pub fn percentile_sorted(v: &[f32], q: f32) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    let pos = (q / 100.0).clamp(0.0, 1.0) * (v.len() - 1) as f32;
    let i = pos.floor() as usize;
    let frac = pos - i as f32;
    if i + 1 < v.len() { v[i] + (v[i + 1] - v[i]) * frac } else { v[i] }
}

/// Grey film -> row-major [H*W] input in [0, 1].
pub fn to_input(grey: &GreyF32, spec: &InputSpec) -> Vec<f32> {
    let small = imageops::resize(grey, spec.width, spec.height, imageops::FilterType::Triangle);
    let mut sorted = small.as_raw().clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let lo = percentile_sorted(&sorted, spec.percentile_low);
    let hi = percentile_sorted(&sorted, spec.percentile_high);
    if hi - lo < 1e-5 {
        return vec![0.0; small.as_raw().len()];
    }
    small.as_raw().iter().map(|v| ((v - lo) / (hi - lo)).clamp(0.0, 1.0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_matches_numpy_linear() {
        // numpy.percentile([1, 2, 3, 4], [0, 25, 50, 99]) == [1.0, 1.75, 2.5, 3.97]
        let v = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert!((percentile(&v, 25.0) - 1.75).abs() < 1e-6);
        assert!((percentile(&v, 50.0) - 2.5).abs() < 1e-6);
        assert!((percentile(&v, 99.0) - 3.97).abs() < 1e-5);
    }

    #[test]
    fn input_is_normalised_and_sized() {
        let spec = InputSpec {
            name: "image".into(),
            channels: 1,
            height: 16,
            width: 16,
            percentile_low: 1.0,
            percentile_high: 99.0,
        };
        let g = GreyF32::from_fn(40, 30, |x, y| Luma([(x * 3 + y) as f32 / 160.0]));
        let t = to_input(&g, &spec);
        assert_eq!(t.len(), 256);
        assert!(t.iter().all(|v| (0.0..=1.0).contains(v)));
        assert!(t[0] < 0.05 && t[255] > 0.95);
        // a flat image carries no information: all zeros rather than NaN
        let flat = GreyF32::from_pixel(40, 30, Luma([0.3]));
        assert!(to_input(&flat, &spec).iter().all(|v| *v == 0.0));
    }
}
