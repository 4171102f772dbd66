//! Overlay: the input photo annotated with the heatmap (positive findings only), hot regions, the peak
//! and the film outline. Used by the CLI's `--overlay`; the web page draws its own from the same report.

use image::{Rgb, RgbImage, imageops};
use imageproc::drawing::{draw_cross_mut, draw_line_segment_mut};

use crate::reader::Reading;

/// Long side of the annotated image.
const MAX_SIDE: u32 = 1280;

pub fn render(reading: &Reading) -> RgbImage {
    let (w, h) = reading.image.dimensions();
    let s = (MAX_SIDE as f32 / w.max(h) as f32).min(1.0);
    let (ow, oh) = (((w as f32 * s).round() as u32).max(1), ((h as f32 * s).round() as u32).max(1));
    let mut out = if s < 1.0 { imageops::thumbnail(&reading.image, ow, oh) } else { reading.image.clone() };
    let report = &reading.report;

    for (finding, cam) in report.findings.iter().zip(&reading.cams) {
        if !finding.positive {
            continue;
        }
        let (lo, hi) = cam.range();
        let (to_film, fw, fh) = cam.input_to_film();
        for (x, y, p) in out.enumerate_pixels_mut() {
            let (u, v) = to_film * ((x as f32 + 0.5) / s, (y as f32 + 0.5) / s);
            let (u, v) = (u / fw, v / fh);
            if !(0.0..=1.0).contains(&u) || !(0.0..=1.0).contains(&v) || hi <= lo {
                continue;
            }
            let heat = (cam.sample(u, v) - lo) / (hi - lo);
            if heat < 0.25 {
                continue;
            }
            let c = colormap(heat);
            let a = 0.55 * heat;
            for k in 0..3 {
                p[k] = (p[k] as f32 * (1.0 - a) + c[k] as f32 * a).round() as u8;
            }
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
