//! Overlay: the input photo annotated with the heatmap (positive findings only), hot regions, the peak
//! and the film outline. Used by the CLI's `--overlay`; the web page draws its own from the same report.

use std::borrow::Cow;

use image::{Rgb, RgbImage, Rgba, RgbaImage, imageops};
use imageproc::drawing::{draw_cross_mut, draw_line_segment_mut};

use crate::reader::Reading;

/// Long side of the annotated image.
const MAX_SIDE: u32 = 1280;

pub fn render(reading: &Reading) -> RgbImage {
    let (w, _) = reading.image.dimensions();
    let mut out = display_image(reading, MAX_SIDE).into_owned();
    let (ow, oh) = out.dimensions();
    let s = ow as f32 / w as f32;
    let report = &reading.report;

    let heat = heat_layer(reading, ow, oh);
    for (p, h) in out.pixels_mut().zip(heat.pixels()) {
        let a = h[3] as f32 / 255.0;
        for k in 0..3 {
            p[k] = (p[k] as f32 * (1.0 - a) + h[k] as f32 * a).round() as u8;
        }
    }
    let thick = ((ow.max(oh) as f32) / 400.0).ceil().max(1.0) as i32;
    let scale = |p: [f32; 2]| [p[0] * s, p[1] * s];
    polygon(&mut out, &report.film.corners.map(scale), Rgb([0, 200, 255]), thick);
    for finding in &report.findings {
        for r in &finding.regions {
            polygon(&mut out, &r.polygon.map(scale), Rgb([255, 40, 40]), thick);
        }
        let [px, py] = scale(finding.peak);
        for d in -thick..=thick {
            draw_cross_mut(&mut out, Rgb([255, 255, 0]), px as i32 + d, py as i32);
            draw_cross_mut(&mut out, Rgb([255, 255, 0]), px as i32, py as i32 + d);
        }
    }
    out
}

/// The heatmap of the positive findings as a transparent layer of `width` x `height` pixels laid over the
/// upright input image (alpha 0 outside the film and where activation is low). The page draws it with an
/// opacity slider; `render` blends it into the annotated PNG.
pub fn heat_layer(reading: &Reading, width: u32, height: u32) -> RgbaImage {
    let mut layer = RgbaImage::new(width.max(1), height.max(1));
    let (w, _) = reading.image.dimensions();
    let s = width as f32 / w as f32;
    for (finding, cam) in reading.report.findings.iter().zip(&reading.cams) {
        if !finding.positive {
            continue;
        }
        let (lo, hi) = cam.range();
        if hi <= lo {
            continue;
        }
        let (to_film, fw, fh) = cam.input_to_film();
        for (x, y, p) in layer.enumerate_pixels_mut() {
            let (u, v) = to_film * ((x as f32 + 0.5) / s, (y as f32 + 0.5) / s);
            let (u, v) = (u / fw, v / fh);
            if !(0.0..=1.0).contains(&u) || !(0.0..=1.0).contains(&v) {
                continue;
            }
            let heat = (cam.sample(u, v) - lo) / (hi - lo);
            let alpha = if heat < 0.25 { 0 } else { (0.55 * heat * 255.0).round() as u8 };
            if alpha > p[3] {
                let c = colormap(heat);
                *p = Rgba([c[0], c[1], c[2], alpha]);
            }
        }
    }
    layer
}

/// The upright input image scaled so its long side is at most `max_side` (never enlarged); borrowed when it
/// already fits (the page asks for the read's own size, and copies it once into RGBA).
pub fn display_image(reading: &Reading, max_side: u32) -> Cow<'_, RgbImage> {
    let (w, h) = reading.image.dimensions();
    let (ow, oh) = display_image_size(reading, max_side);
    if (ow, oh) == (w, h) {
        return Cow::Borrowed(&reading.image);
    }
    Cow::Owned(imageops::thumbnail(&reading.image, ow, oh))
}

/// The size `display_image` returns.
pub fn display_image_size(reading: &Reading, max_side: u32) -> (u32, u32) {
    let (w, h) = reading.image.dimensions();
    crate::geometry::fit_within(w, h, max_side)
}

fn polygon(img: &mut RgbImage, pts: &[[f32; 2]; 4], colour: Rgb<u8>, thick: i32) {
    for i in 0..4 {
        let a = pts[i];
        let b = pts[(i + 1) % 4];
        for dx in -(thick / 2)..=(thick / 2) {
            for dy in -(thick / 2)..=(thick / 2) {
                let o = |p: [f32; 2]| (p[0] + dx as f32, p[1] + dy as f32);
                draw_line_segment_mut(img, o(a), o(b), colour);
            }
        }
    }
}

/// Blue -> cyan -> yellow -> red.
fn colormap(t: f32) -> [u8; 3] {
    let t = t.clamp(0.0, 1.0);
    let stops = [[0.0, 0.0, 255.0], [0.0, 255.0, 255.0], [255.0, 255.0, 0.0], [255.0, 0.0, 0.0]];
    let f = t * 3.0;
    let i = (f.floor() as usize).min(2);
    let k = f - i as f32;
    let c = |j: usize| (stops[i][j] * (1.0 - k) + stops[i + 1][j] * k) as u8;
    [c(0), c(1), c(2)]
}
