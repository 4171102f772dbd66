//! Preprocess: the flattened film -> the model's input tensor, exactly as the manifest (and training) say:
//! BT.601 luma, area resize to the input size (aspect not kept; OpenCV's `INTER_AREA`, which training uses),
//! percentile normalisation to [0, 1], then, when the manifest asks for it, CLAHE on the 8-bit rounding of
//! that and the percentile mapping again. Grey values are kept in [0, 1].

use image::{ImageBuffer, Luma, RgbImage, imageops};

use crate::clahe::clahe;
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

/// `percentile_sorted(v, q)` of `v` as if sorted, without sorting it: the two neighbouring ranks are found by
/// selection, O(n) instead of a sort's O(n log n), and the result is the same value. Reorders `v`.
pub fn percentile_selected(v: &mut [f32], q: f32) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    let pos = (q / 100.0).clamp(0.0, 1.0) * (v.len() - 1) as f32;
    let i = pos.floor() as usize;
    let frac = pos - i as f32;
    let (_, &mut lo, above) = v.select_nth_unstable_by(i, |a, b| a.total_cmp(b));
    match above.iter().copied().min_by(|a, b| a.total_cmp(b)) {
        Some(hi) => lo + (hi - lo) * frac,
        None => lo,
    }
}

/// A square row-major input (one or more planes of `side` x `side`) turned clockwise by `quarter_turns`
/// quarter turns: the model's view of the film photographed turned that way.
pub fn turned(input: &[f32], side: usize, quarter_turns: usize) -> Vec<f32> {
    debug_assert_eq!(input.len() % (side * side).max(1), 0);
    let mut out = input.to_vec();
    for _ in 0..quarter_turns % 4 {
        let from = out.clone();
        for (dst, src) in out.chunks_exact_mut(side * side).zip(from.chunks_exact(side * side)) {
            for y in 0..side {
                for x in 0..side {
                    // clockwise: the left column, read upwards, becomes the top row
                    dst[y * side + x] = src[(side - 1 - x) * side + y];
                }
            }
        }
    }
    out
}

/// Grey film -> row-major [H*W] input in [0, 1].
pub fn to_input(grey: &GreyF32, spec: &InputSpec) -> Vec<f32> {
    let small = area_resize(grey, spec.width, spec.height);
    let x = percentile_map(small.into_raw(), spec);
    let Some(c) = spec.clahe else { return x };
    // 8-bit as training rounds it (numpy's round: half to even)
    let bytes = x.iter().map(|v| (v * 255.0).round_ties_even() as u8).collect();
    let u8_grey = image::GrayImage::from_raw(spec.width, spec.height, bytes).expect("buffer has w*h values");
    let equalised = clahe(&u8_grey, c.clip_limit, c.tiles[0], c.tiles[1]);
    percentile_map(equalised.as_raw().iter().map(|&v| v as f32 / 255.0).collect(), spec)
}

/// Shrink by averaging each output pixel's footprint in the source (partly covered source pixels weighted by
/// their overlap), separably, as OpenCV's `INTER_AREA` does when neither side grows. A film smaller than the
/// target on either side (rare: the reader's films are larger than the model input) is enlarged with a
/// triangle filter instead.
pub fn area_resize(grey: &GreyF32, w: u32, h: u32) -> GreyF32 {
    let (sw, sh) = grey.dimensions();
    if sw < w || sh < h || w == 0 || h == 0 {
        return imageops::resize(grey, w, h, imageops::FilterType::Triangle);
    }
    let (xs, ys) = (footprints(sw, w), footprints(sh, h));
    let src = grey.as_raw();
    // rows first: each source row shrunk to w columns, then the rows blended
    let mut rows = vec![0.0f32; sh as usize * w as usize];
    for (row, out) in src.chunks_exact(sw as usize).zip(rows.chunks_exact_mut(w as usize)) {
        for (o, taps) in out.iter_mut().zip(&xs) {
            *o = taps.iter().map(|&(i, wt)| row[i] * wt).sum();
        }
    }
    let mut out = vec![0.0f32; w as usize * h as usize];
    for (line, taps) in out.chunks_exact_mut(w as usize).zip(&ys) {
        for &(j, wt) in taps {
            let row = &rows[j * w as usize..(j + 1) * w as usize];
            for (o, v) in line.iter_mut().zip(row) {
                *o += v * wt;
            }
        }
    }
    GreyF32::from_raw(w, h, out).expect("buffer has w*h values")
}

/// For each of `n` output cells over `size` source pixels: the source pixels it covers and their weights
/// (overlap / cell width, summing to 1).
fn footprints(size: u32, n: u32) -> Vec<Vec<(usize, f32)>> {
    let scale = size as f64 / n as f64;
    (0..n)
        .map(|d| {
            let (a, b) = (d as f64 * scale, ((d + 1) as f64 * scale).min(size as f64));
            let first = a.floor() as usize;
            let last = (b.ceil() as usize).min(size as usize);
            (first..last)
                .filter_map(|i| {
                    let overlap = b.min(i as f64 + 1.0) - a.max(i as f64);
                    (overlap > 1e-9).then(|| (i, (overlap / (b - a)) as f32))
                })
                .collect()
        })
        .collect()
}

/// Map the values' [low, high] percentiles to [0, 1] and clip; a flat image (no spread) maps to zeros.
fn percentile_map(mut values: Vec<f32>, spec: &InputSpec) -> Vec<f32> {
    let mut sorted = values.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let lo = percentile_sorted(&sorted, spec.percentile_low);
    let hi = percentile_sorted(&sorted, spec.percentile_high);
    if hi - lo < 1e-5 {
        values.fill(0.0);
        return values;
    }
    for v in values.iter_mut() {
        *v = ((*v - lo) / (hi - lo)).clamp(0.0, 1.0);
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::ClaheSpec;

    #[test]
    fn a_quarter_turn_clockwise_takes_the_top_row_to_the_right_column() {
        // 1 2 3      7 4 1
        // 4 5 6  ->  8 5 2
        // 7 8 9      9 6 3
        let a: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        assert_eq!(turned(&a, 3, 1), [7.0, 4.0, 1.0, 8.0, 5.0, 2.0, 9.0, 6.0, 3.0]);
        assert_eq!(turned(&a, 3, 2), [9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0]);
        assert_eq!(turned(&turned(&a, 3, 3), 3, 1), a);
        assert_eq!(turned(&a, 3, 4), a);
        // planes turn each on their own
        let two: Vec<f32> = a.iter().chain(a.iter()).copied().collect();
        assert_eq!(turned(&two, 3, 1)[9..], turned(&a, 3, 1)[..]);
    }

    #[test]
    fn percentile_matches_numpy_linear() {
        // numpy.percentile([1, 2, 3, 4], [0, 25, 50, 99]) == [1.0, 1.75, 2.5, 3.97]
        let v = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert!((percentile(&v, 25.0) - 1.75).abs() < 1e-6);
        assert!((percentile(&v, 50.0) - 2.5).abs() < 1e-6);
        assert!((percentile(&v, 99.0) - 3.97).abs() < 1e-5);
        // selection gives the sorted answer exactly, on values with ties, in any order
        let mut rng = 12345u32;
        let mut vals: Vec<f32> = (0..1001)
            .map(|_| {
                rng = rng.wrapping_mul(1664525).wrapping_add(1013904223);
                (rng >> 24) as f32 / 7.0
            })
            .collect();
        let mut sorted = vals.clone();
        sorted.sort_by(|a, b| a.total_cmp(b));
        for q in [0.0, 1.0, 12.5, 50.0, 99.0, 99.9, 100.0] {
            assert_eq!(percentile_selected(&mut vals, q), percentile_sorted(&sorted, q), "q = {q}");
        }
        assert_eq!(percentile_selected(&mut [], 50.0), 0.0);
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
            clahe: None,
            trim_border: None,
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

    fn spec_224(clahe: Option<ClaheSpec>) -> InputSpec {
        InputSpec {
            name: "image".into(),
            channels: 1,
            height: 224,
            width: 224,
            percentile_low: 1.0,
            percentile_high: 99.0,
            clahe,
            trim_border: None,
        }
    }

    const CLAHE_2_8X8: Option<ClaheSpec> = Some(ClaheSpec { clip_limit: 2.0, tiles: [8, 8] });

    #[test]
    fn clahe_input_matches_the_training_preprocessing() {
        // models/training/make_clahe_fixtures.py: data.to_input with CLAHE on, of the same 224 px grey film
        let film = image::load_from_memory(include_bytes!("../tests/fixtures/clahe/square-input.png")).unwrap();
        let grey = luma(&film.to_rgb8());
        let expected =
            image::load_from_memory(include_bytes!("../tests/fixtures/clahe/square-to-input.png")).unwrap().to_luma16();
        let ours = to_input(&grey, &spec_224(CLAHE_2_8X8));
        let diffs: Vec<f32> =
            ours.iter().zip(expected.as_raw()).map(|(a, &b)| (a - b as f32 / 65535.0).abs()).collect();
        let max = diffs.iter().copied().fold(0.0, f32::max);
        let mean = diffs.iter().sum::<f32>() / diffs.len() as f32;
        assert!(max <= 2.5 / 255.0, "largest difference {max}");
        assert!(mean < 0.1 / 255.0, "mean difference {mean}");
        // and the manifest switch matters: without CLAHE the input is a different image
        let plain = to_input(&grey, &spec_224(None));
        let changed = plain.iter().zip(&ours).filter(|(a, b)| (*a - *b).abs() > 2.0 / 255.0).count();
        assert!(changed > ours.len() / 4, "CLAHE changed only {changed} pixels");
    }

    #[test]
    fn clahe_evens_out_a_glare_gradient() {
        // a textured film under a strong left-to-right exposure gradient (glare, vignetting on a lightbox):
        // CLAHE (clip 2, a mild setting) brings the two halves' mean brightness closer than the global percentile mapping does
        let g = GreyF32::from_fn(224, 224, |x, y| {
            let texture = if (x / 7 + y / 5) % 2 == 0 { 0.08 } else { 0.0 } + ((x * 13 + y * 7) % 11) as f32 * 0.004;
            Luma([0.15 + 0.6 * x as f32 / 224.0 + texture])
        });
        let half_gap = |t: &[f32]| {
            let (mut l, mut r) = (0.0, 0.0);
            for (i, v) in t.iter().enumerate() {
                if i % 224 < 112 { l += v } else { r += v }
            }
            (r - l) / (224.0 * 112.0)
        };
        let plain = half_gap(&to_input(&g, &spec_224(None)));
        let equalised = half_gap(&to_input(&g, &spec_224(CLAHE_2_8X8)));
        assert!(plain > 0.3, "the gradient is there without CLAHE: {plain}");
        assert!(equalised < plain * 0.7, "CLAHE left a gap of {equalised} (without: {plain})");
    }

    #[test]
    fn clahe_keeps_a_flat_image_flat() {
        let flat = GreyF32::from_pixel(300, 200, Luma([0.3]));
        assert!(to_input(&flat, &spec_224(CLAHE_2_8X8)).iter().all(|v| *v == 0.0));
    }

    #[test]
    fn area_resize_averages_each_footprint() {
        // 5 -> 2 columns: cells [0, 2.5) and [2.5, 5), the middle pixel split half and half
        let row = GreyF32::from_raw(5, 1, vec![0.1, 0.2, 0.3, 0.4, 0.5]).unwrap();
        let out = area_resize(&row, 2, 1);
        assert!((out.as_raw()[0] - (0.1 + 0.2 + 0.5 * 0.3) / 2.5).abs() < 1e-6);
        assert!((out.as_raw()[1] - (0.5 * 0.3 + 0.4 + 0.5) / 2.5).abs() < 1e-6);
        // 4x4 -> 2x2 is the mean of each 2x2 block; a constant film stays constant at any ratio
        let g = GreyF32::from_fn(4, 4, |x, y| Luma([(x + 4 * y) as f32 / 16.0]));
        let out = area_resize(&g, 2, 2);
        assert!((out.as_raw()[0] - (0.0 + 1.0 + 4.0 + 5.0) / 64.0).abs() < 1e-6);
        assert!((out.as_raw()[3] - (10.0 + 11.0 + 14.0 + 15.0) / 64.0).abs() < 1e-6);
        let flat = area_resize(&GreyF32::from_pixel(517, 389, Luma([0.7])), 224, 224);
        assert!(flat.as_raw().iter().all(|v| (v - 0.7).abs() < 1e-5));
        // same size is the identity; growing falls back to a smooth enlargement of the right size
        assert_eq!(area_resize(&g, 4, 4).as_raw(), g.as_raw());
        assert_eq!(area_resize(&g, 9, 3).dimensions(), (9, 3));
    }
}
