//! Resampling on the read's hot path, written for RGB8 only: downscaling of large photos (whole-factor box
//! averaging first, then the `image` crate's area resampling, `thumbnail`, for the small remainder) and the
//! film's perspective warp. Measured reasons (native release, 2048 px photo): `thumbnail` weighs fractional
//! pixel areas for every output pixel, ~60 ns per output pixel at ratios near 1.5 (2048 → 1400 px took
//! ~85 ms), where a box average over whole blocks is one add per input value; imageproc's generic
//! `warp_into` (any pixel type, border checks and a projective division per sample) took ~40 ns per output
//! pixel, 32 ms for a 1024 px film.

use image::{RgbImage, imageops};

use crate::geometry::Quad;

/// Average `f`×`f` blocks: output `(w / f) × (h / f)`, output pixel `(i, j)` covering input pixels
/// `[i f, (i + 1) f) × [j f, (j + 1) f)`, so input coordinates map to output ones by exactly `1 / f`.
/// The last `w % f` columns and `h % f` rows are dropped. Returns the factor applied with the image: 1 (and
/// a copy) when `f <= 1` or a side is shorter than `f`.
pub fn box_shrink(img: &RgbImage, f: u32) -> (RgbImage, u32) {
    let (w, h) = img.dimensions();
    if f <= 1 || w < f || h < f {
        return (img.clone(), 1);
    }
    let (ow, oh) = (w / f, h / f);
    let (f, row_len) = (f as usize, w as usize * 3);
    let src = img.as_raw();
    let area = (f * f) as u32;
    let mut sums = vec![0u32; ow as usize * 3];
    let mut out = Vec::with_capacity(ow as usize * oh as usize * 3);
    for oy in 0..oh as usize {
        sums.fill(0);
        for row in src[oy * f * row_len..(oy + 1) * f * row_len].chunks_exact(row_len) {
            for (sum, block) in sums.chunks_exact_mut(3).zip(row.chunks_exact(3 * f)) {
                for px in block.chunks_exact(3) {
                    sum[0] += px[0] as u32;
                    sum[1] += px[1] as u32;
                    sum[2] += px[2] as u32;
                }
            }
        }
        out.extend(sums.iter().map(|&s| ((s + area / 2) / area) as u8));
    }
    (RgbImage::from_raw(ow, oh, out).expect("box_shrink: buffer size matches its dimensions"), f as u32)
}

/// Downscale to exactly `tw × th` (area averaging): a box average by the largest whole factor that keeps
/// at least the target size, then `thumbnail` for the rest. Returns the input unchanged in size when the
/// target is not smaller.
pub fn shrink_to(img: &RgbImage, tw: u32, th: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let f = (w / tw.max(1)).min(h / th.max(1));
    if f >= 2 {
        let (boxed, _) = box_shrink(img, f);
        if boxed.dimensions() == (tw, th) {
            return boxed;
        }
        return imageops::thumbnail(&boxed, tw, th);
    }
    imageops::thumbnail(img, tw, th)
}

/// The homography taking the `w × h` rectangle (corners TL, TR, BR, BL at (0,0), (w,0), (w,h), (0,h)) onto
/// `quad` (same corner order), as row-major `[a, b, c, d, e, f, g, h, 1]`: with `q = g u + h v + 1`,
/// x = (a u + b v + c) / q and y = (d u + e v + f) / q. Heckbert's closed form for the unit square, then
/// scaled. None for a degenerate quad.
pub fn rect_to_quad(quad: &Quad, w: f32, h: f32) -> Option<[f64; 9]> {
    let [[x0, y0], [x1, y1], [x2, y2], [x3, y3]] = quad.map(|[x, y]| [x as f64, y as f64]);
    let (dx1, dx2, dx3) = (x1 - x2, x3 - x2, x0 - x1 + x2 - x3);
    let (dy1, dy2, dy3) = (y1 - y2, y3 - y2, y0 - y1 + y2 - y3);
    let (g, hh) = if dx3.abs() < 1e-9 && dy3.abs() < 1e-9 {
        (0.0, 0.0)
    } else {
        let den = dx1 * dy2 - dx2 * dy1;
        if den.abs() < 1e-12 {
            return None;
        }
        ((dx3 * dy2 - dx2 * dy3) / den, (dx1 * dy3 - dx3 * dy1) / den)
    };
    let (a, b, d, e) = (x1 - x0 + g * x1, x3 - x0 + hh * x3, y1 - y0 + g * y1, y3 - y0 + hh * y3);
    let (w, h) = (w as f64, h as f64);
    let m = [a / w, b / h, x0, d / w, e / h, y0, g / w, hh / h, 1.0];
    let det = m[0] * (m[4] - m[5] * m[7]) - m[1] * (m[3] - m[5] * m[6]) + m[2] * (m[3] * m[7] - m[4] * m[6]);
    (m.iter().all(|v| v.is_finite()) && det.abs() > 1e-12).then_some(m)
}

/// Flatten `quad` of `src` into a `w × h` image: output pixel (u, v) samples the source bilinearly at the
/// homography's image of (u, v) (imageproc's convention: integer output coordinates), edge pixels
/// repeated beyond the border. Identity-like maps reproduce the source exactly. None for a degenerate quad.
pub fn warp_quad(src: &RgbImage, quad: &Quad, w: u32, h: u32) -> Option<RgbImage> {
    let [a, b, c, d, e, f, g, hh, _] = rect_to_quad(quad, w as f32, h as f32)?;
    let (sw, sh) = (src.width() as usize, src.height() as usize);
    if sw == 0 || sh == 0 {
        return None;
    }
    let (max_x, max_y) = ((sw - 1) as f32, (sh - 1) as f32);
    let raw = src.as_raw();
    let mut out = vec![0u8; w as usize * h as usize * 3];
    for (v, row) in out.chunks_exact_mut(w as usize * 3).enumerate() {
        let v = v as f64;
        // homogeneous coordinates at u = 0, stepped by (a, d, g) per pixel
        let (mut xn, mut yn, mut wn) = (b * v + c, e * v + f, hh * v + 1.0);
        for px in row.chunks_exact_mut(3) {
            let inv = 1.0 / wn;
            let x = ((xn * inv) as f32).clamp(0.0, max_x);
            let y = ((yn * inv) as f32).clamp(0.0, max_y);
            xn += a;
            yn += d;
            wn += g;
            let (x0, y0) = (x as usize, y as usize);
            let (x1, y1) = ((x0 + 1).min(sw - 1), (y0 + 1).min(sh - 1));
            let (tx, ty) = (x - x0 as f32, y - y0 as f32);
            let (r0, r1) = (y0 * sw * 3, y1 * sw * 3);
            let (p00, p01, p10, p11) = (r0 + x0 * 3, r0 + x1 * 3, r1 + x0 * 3, r1 + x1 * 3);
            for k in 0..3 {
                let top = raw[p00 + k] as f32 + tx * (raw[p01 + k] as f32 - raw[p00 + k] as f32);
                let bot = raw[p10 + k] as f32 + tx * (raw[p11 + k] as f32 - raw[p10 + k] as f32);
                px[k] = (top + ty * (bot - top) + 0.5) as u8;
            }
        }
    }
    RgbImage::from_raw(w, h, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn box_shrink_averages_whole_blocks_and_drops_the_remainder() {
        // 5×4 with f = 2: 2×2 output, the fifth column dropped
        let img = RgbImage::from_fn(5, 4, |x, y| Rgb([(10 * x + y) as u8, 100, (x * y) as u8]));
        let (out, f) = box_shrink(&img, 2);
        assert_eq!((out.dimensions(), f), ((2, 2), 2));
        // block (1, 1): x in 2..4, y in 2..4 -> red mean (22+23+32+33)/4 = 27.5 -> 28, blue (4+6+6+9)/4 = 6.25 -> 6
        assert_eq!(out.get_pixel(1, 1), &Rgb([28, 100, 6]));
        assert_eq!(out.get_pixel(0, 0), &Rgb([6, 100, 0])); // (0+1+10+11)/4 = 5.5 -> 6; (0+0+0+1)/4 -> 0
        // a side shorter than the factor: nothing to average, and the caller is told so
        let thin = RgbImage::new(9, 1);
        assert_eq!(box_shrink(&thin, 3).1, 1);
    }

    #[test]
    fn shrink_to_hits_the_size_and_keeps_the_content() {
        // a left-dark, right-bright photo stays so, at exactly the requested size, for whole and
        // fractional ratios alike
        let img = RgbImage::from_fn(2048, 1536, |x, _| if x < 1024 { Rgb([20, 20, 20]) } else { Rgb([220, 220, 220]) });
        for (tw, th) in [(256, 192), (1392, 1044), (1000, 750), (2048, 1536)] {
            let out = shrink_to(&img, tw, th);
            assert_eq!(out.dimensions(), (tw, th));
            assert!(out.get_pixel(tw / 4, th / 2)[0] < 30, "{tw}: left half dark");
            assert!(out.get_pixel(3 * tw / 4, th / 2)[0] > 210, "{tw}: right half bright");
        }
    }

    #[test]
    fn the_homography_agrees_with_imageproc_and_the_warp_with_its_warp() {
        use imageproc::geometric_transformations::{Border, Interpolation, warp_into};
        let quad = [[130.0, 110.0], [470.0, 150.0], [440.0, 690.0], [100.0, 640.0]];
        let (w, h) = (300u32, 400u32);
        let m = rect_to_quad(&quad, w as f32, h as f32).unwrap();
        let p = crate::geometry::film_to_input(&quad, w as f32, h as f32).unwrap();
        for (u, v) in [(0.0, 0.0), (300.0, 0.0), (300.0, 400.0), (0.0, 400.0), (123.0, 77.0), (290.5, 12.25)] {
            let den = m[6] * u + m[7] * v + 1.0;
            let ours = [(m[0] * u + m[1] * v + m[2]) / den, (m[3] * u + m[4] * v + m[5]) / den];
            let theirs = crate::geometry::map(&p, u as f32, v as f32);
            assert!(
                (ours[0] as f32 - theirs[0]).abs() < 0.01 && (ours[1] as f32 - theirs[1]).abs() < 0.01,
                "{ours:?} {theirs:?}"
            );
        }
        // a textured source: the two warps differ by rounding only
        let src = RgbImage::from_fn(600, 800, |x, y| {
            Rgb([
                ((x * 7 + y * 3) % 256) as u8,
                ((x / 3 + y / 5) % 256) as u8,
                (128.0 + 100.0 * ((x as f32) / 13.0).sin()) as u8,
            ])
        });
        let ours = warp_quad(&src, &quad, w, h).unwrap();
        let mut theirs = RgbImage::new(w, h);
        warp_into(&src, p.invert(), Interpolation::Bilinear, Border::Replicate, &mut theirs);
        let mut worst = 0;
        let mut big = 0;
        for (a, b) in ours.as_raw().iter().zip(theirs.as_raw()) {
            let d = (*a as i32 - *b as i32).abs();
            worst = worst.max(d);
            big += (d > 2) as usize;
        }
        // the modulo texture has 255 -> 0 jumps, where a hair of sub-pixel difference moves a lot
        assert!(
            big * 1000 < ours.as_raw().len(),
            "{big} of {} values differ by more than 2 (worst {worst})",
            ours.as_raw().len()
        );
    }

    #[test]
    fn warp_of_the_whole_image_is_the_identity_and_edges_repeat() {
        let src = RgbImage::from_fn(40, 30, |x, y| Rgb([(x * 6) as u8, (y * 8) as u8, 7]));
        let same = warp_quad(&src, &crate::geometry::rect_quad(40.0, 30.0), 40, 30).unwrap();
        assert_eq!(same, src);
        // a quad hanging off the right edge: samples beyond it repeat the last column
        let off = warp_quad(&src, &[[20.0, 0.0], [60.0, 0.0], [60.0, 30.0], [20.0, 30.0]], 40, 30).unwrap();
        assert_eq!(off.get_pixel(39, 5), src.get_pixel(39, 5));
        assert_eq!(off.get_pixel(0, 5), src.get_pixel(20, 5));
        assert!(warp_quad(&src, &[[0.0, 0.0]; 4], 10, 10).is_none());
    }
}
