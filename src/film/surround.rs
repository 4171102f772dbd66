//! The radiograph inside a dark surround: a phone or monitor photographed while it shows the radiograph
//! (often one forwarded by a messaging app) is found as one region, the whole screen with its black
//! letterbox bands and the app's bars above and below. Squeezed to the model's square input, the radiograph
//! then fills only part of it, flattened. Inside a found region this looks for the radiograph as the part
//! between dark, textureless bands.
//!
//! Only a region shaped like a screen (`SCREEN_ASPECT`) is looked into, and only across its long axis (a
//! portrait phone's letterbox rows, a landscape monitor's pillarbox columns): a squarer region is a film, whose
//! own dark collimated margins are part of what the model was trained on and must stay.
//!
//! Method, on a copy of the flattened region about `DETECT_SIDE` on its long side, taking rows of a portrait
//! region (columns of a landscape one): texture per row is the 75th percentile of a band-pass (difference of
//! Gaussians) across the row. From the middle row outwards, the first run of textureless rows (at least
//! `MIN_RUN` of the long side) that is darker than the part kept (below its 10th-90th percentile range's lower
//! quarter) ends the radiograph on that side; the cut goes to the strongest row-to-row step next to the run
//! (the band-pass smears the radiograph's edge outwards). Textureless bright bands are left alone: the lower
//! abdomen of a bare radiograph is one, as are a lightbox's panel and a printout's paper, which
//! `lit_uniform_rim` in the parent module handles.

use image::{ImageBuffer, Luma, RgbImage, imageops};

/// Texture below this (grey levels, 0-255, of the band-pass on the detection-sized copy) is none: a screen's
/// black with the phone camera's noise, JPEG and moire stays under it; rows through a radiograph do not.
const FLAT: f32 = 1.0;
/// A textureless run must be at least this share of the long side to end the radiograph.
const MIN_RUN: f32 = 0.04;
/// Band-pass: the copy blurred by these two sigmas (pixels), subtracted.
const SIGMAS: (f32, f32) = (1.0, 4.0);
/// The run counts as a dark surround when its median is below the kept part's 10th percentile plus this
/// share of its 10th-90th percentile range.
const DARK_SHARE: f32 = 0.25;
/// What is kept must cover at least this share of the region.
const MIN_KEPT: f32 = 0.25;
/// Only a region at least this elongated is taken for a screen (phones about 2:1, monitors 16:9 or 16:10),
/// and only bands across its long axis are cut: films are squarer (35x43 cm, 24x30, 18x24), and a film's
/// own dark collimated margins, which the model has seen in training, must stay.
const SCREEN_ASPECT: f32 = 1.5;

type Grey = ImageBuffer<Luma<f32>, Vec<f32>>;

/// The radiograph's rectangle (left, top, right, bottom in `flat`'s pixels) inside dark textureless bands
/// across the long axis of a screen-shaped region, or None when no band is cut off.
pub(super) fn inside(flat: &RgbImage) -> Option<[f32; 4]> {
    let (w, h) = flat.dimensions();
    // lines run across the long axis: rows of a portrait region, columns of a landscape one
    let rows = h >= w;
    let (n, m) = if rows { (h, w) } else { (w, h) };
    if m < 16 || !screen_shaped(w as f32, h as f32) {
        return None;
    }
    let grey: Grey =
        ImageBuffer::from_fn(w, h, |x, y| Luma([255.0 * crate::preprocess::luma_of(flat.get_pixel(x, y))]));
    let grey = imageops::blur(&grey, 1.0);
    let (fine, coarse) = (imageops::blur(&grey, SIGMAS.0), imageops::blur(&grey, SIGMAS.1));
    // (line i, counted along the long axis; position j along that line)
    let at = |i: u32, j: u32| if rows { (j, i) } else { (i, j) };
    let g = |i: u32, j: u32| {
        let (x, y) = at(i, j);
        grey.get_pixel(x, y)[0]
    };
    let texture = |i: u32, j: u32| {
        let (x, y) = at(i, j);
        (fine.get_pixel(x, y)[0] - coarse.get_pixel(x, y)[0]).abs()
    };
    let line_texture: Vec<f32> = (0..n).map(|i| percentile((0..m).map(|j| texture(i, j)).collect(), 0.75)).collect();
    let line_step: Vec<f32> =
        (0..n - 1).map(|i| (0..m).map(|j| (g(i + 1, j) - g(i, j)).abs()).sum::<f32>() / m as f32).collect();
    let lines = |range: std::ops::Range<usize>| -> Vec<f32> {
        range.flat_map(|i| (0..m).map(move |j| (i as u32, j))).map(|(i, j)| g(i, j)).collect()
    };
    let cuts = Cuts::find(&line_texture, &line_step)?;
    let (start, end) = cuts.bounds(n);
    let cuts = cuts.dark_only(&lines(start as usize..end as usize), |(a, b)| lines(a..b));
    let (start, end) = cuts.bounds(n);
    if cuts.is_none() || end <= start || ((end - start) as f32) < MIN_KEPT * n as f32 {
        return None;
    }
    let (start, end) = (start as f32, end as f32);
    Some(if rows { [0.0, start, w as f32, end] } else { [start, 0.0, end, h as f32] })
}

/// Whether a region of this size is shaped like a screen (`SCREEN_ASPECT`); `slack` below 1 loosens the test,
/// for a size measured before the region is resampled.
pub(super) fn screen_shaped_within(w: f32, h: f32, slack: f32) -> bool {
    w.max(h) >= slack * SCREEN_ASPECT * w.min(h)
}

fn screen_shaped(w: f32, h: f32) -> bool {
    screen_shaped_within(w, h, 1.0)
}

/// Where the radiograph ends on either side of the middle along one axis, and the textureless run beyond.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Cuts {
    /// First index kept and the run before it (indices `run.0..run.1`), when that side is cut.
    start: Option<(u32, (usize, usize))>,
    /// One past the last index kept and the run after it, when that side is cut.
    end: Option<(u32, (usize, usize))>,
}

impl Cuts {
    const NONE: Cuts = Cuts { start: None, end: None };

    fn is_none(&self) -> bool {
        self.start.is_none() && self.end.is_none()
    }

    fn bounds(&self, n: u32) -> (u32, u32) {
        (self.start.map_or(0, |(i, _)| i), self.end.map_or(n, |(i, _)| i))
    }

    /// From the middle outwards, the first textureless run on each side; None when the middle itself is
    /// textureless (nothing there to keep). `step[i]` is the mean step between lines i and i+1.
    fn find(texture: &[f32], step: &[f32]) -> Option<Cuts> {
        let n = texture.len();
        let mid = n / 2;
        if texture[mid] < FLAT {
            return None;
        }
        let run_len = ((MIN_RUN * n as f32) as usize).max(3);
        let flat = |i: usize| texture[i] < FLAT;
        let before = first_run((0..mid).rev(), flat, run_len).map(|(inner, outer)| (outer, inner));
        let after = first_run(mid + 1..n, flat, run_len);
        // the edge: the strongest step from a couple of lines into the run to `reach` lines into the kept part
        let reach = (3.0 * SIGMAS.1) as usize + 2;
        let strongest = |lo: usize, hi: usize| {
            (lo..hi.min(step.len())).max_by(|&a, &b| step[a].total_cmp(&step[b])).map(|i| (i + 1) as u32)
        };
        let start = before.and_then(|(outer, inner)| {
            let cut = strongest(inner.saturating_sub(2), inner + 1 + reach)?;
            Some((cut, (outer, inner + 1)))
        });
        let end = after.and_then(|(first, outer)| {
            let cut = strongest(first.saturating_sub(reach), first + 2)?;
            Some((cut, (first, outer + 1)))
        });
        Some(Cuts { start, end })
    }

    /// Keep a cut only where its run is darker than the part kept (a screen's black, not a bright band).
    fn dark_only(self, kept: &[f32], band: impl Fn((usize, usize)) -> Vec<f32>) -> Cuts {
        if kept.is_empty() {
            return Cuts::NONE;
        }
        let (p10, p90) = (percentile(kept.to_vec(), 0.1), percentile(kept.to_vec(), 0.9));
        let limit = p10 + DARK_SHARE * (p90 - p10);
        let dark = |side: Option<(u32, (usize, usize))>| {
            side.filter(|(_, run)| {
                let v = band(*run);
                !v.is_empty() && percentile(v, 0.5) < limit
            })
        };
        Cuts { start: dark(self.start), end: dark(self.end) }
    }
}

/// Walking `order` (from the middle outwards), the first `run_len` flat lines in a row: the run's line
/// nearest the middle and its farthest, the run followed out to its end.
fn first_run(
    order: impl Iterator<Item = usize>,
    flat: impl Fn(usize) -> bool,
    run_len: usize,
) -> Option<(usize, usize)> {
    let order: Vec<usize> = order.collect();
    let mut run = 0;
    for (k, &i) in order.iter().enumerate() {
        run = if flat(i) { run + 1 } else { 0 };
        if run == run_len {
            let inner = order[k + 1 - run_len];
            let outer = order[k..].iter().take_while(|&&j| flat(j)).last().copied().unwrap_or(i);
            return Some((inner, outer));
        }
    }
    None
}

fn percentile(mut v: Vec<f32>, q: f32) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    let k = ((v.len() - 1) as f32 * q).round() as usize;
    *v.select_nth_unstable_by(k, |a, b| a.total_cmp(b)).1
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    /// Grain that a photo of a screen keeps (a few grey levels).
    fn grain(x: u32, y: u32) -> f32 {
        ((x.wrapping_mul(2654435761) ^ y.wrapping_mul(40503)) % 7) as f32 - 3.0
    }

    /// Radiograph-like structure (ribs, lungs) at grey ~120.
    fn anatomy(x: u32, y: u32) -> f32 {
        120.0
            + 50.0 * (x as f32 / 9.0).sin() * (y as f32 / 11.0).cos()
            + 30.0 * (y as f32 / 60.0).sin()
            + 3.0 * grain(x, y)
    }

    fn grey(v: f32) -> Rgb<u8> {
        let v = v.clamp(0.0, 255.0) as u8;
        Rgb([v, v, v])
    }

    /// A phone screen, flattened: status bar with icons, black letterbox, the radiograph (rows 100..300, full
    /// width), black letterbox, navigation bar with its handle.
    fn screen() -> RgbImage {
        RgbImage::from_fn(200, 400, |x, y| match y {
            0..12 if (20..30).contains(&(x % 40)) && (3..9).contains(&y) => grey(200.0),
            0..12 => grey(14.0 + grain(x, y)),
            100..300 => grey(anatomy(x, y)),
            370..400 if (70..130).contains(&x) && (382..388).contains(&y) => grey(160.0),
            370..400 => grey(20.0 + grain(x, y)),
            _ => grey(8.0 + grain(x, y)),
        })
    }

    #[test]
    fn the_radiograph_is_cut_out_of_a_screens_letterbox_and_bars() {
        let [l, t, r, b] = inside(&screen()).expect("letterbox found");
        for (got, want) in [(l, 0.0), (t, 100.0), (r, 200.0), (b, 300.0)] {
            assert!((got - want).abs() <= 3.0, "{:?} vs the radiograph's [0, 100, 200, 300]", [l, t, r, b]);
        }
        // sideways (a landscape screen, pillarboxed): the same across columns
        let img = screen();
        let turned = RgbImage::from_fn(400, 200, |x, y| *img.get_pixel(y, x));
        let [l, t, r, b] = inside(&turned).expect("pillarbox found");
        for (got, want) in [(l, 100.0), (t, 0.0), (r, 300.0), (b, 200.0)] {
            assert!((got - want).abs() <= 3.0, "{:?} vs the radiograph's [100, 0, 300, 200]", [l, t, r, b]);
        }
    }

    #[test]
    fn a_radiograph_with_a_bright_smooth_end_or_none_is_left_whole() {
        // the lower abdomen of a bare radiograph: smooth and bright, not a screen's black
        let abdomen = RgbImage::from_fn(200, 400, |x, y| {
            if y < 300 { grey(anatomy(x, y)) } else { grey(225.0 + (y - 300) as f32 * 0.1) }
        });
        assert_eq!(inside(&abdomen), None);
        let whole = RgbImage::from_fn(200, 400, |x, y| grey(anatomy(x, y)));
        assert_eq!(inside(&whole), None);
        // nothing textured in the middle: nothing to keep
        assert_eq!(inside(&RgbImage::from_pixel(200, 400, grey(10.0))), None);
        assert_eq!(inside(&RgbImage::new(3, 5)), None);
    }

    #[test]
    fn a_films_own_dark_margins_stay() {
        // a film-shaped region (4:3) whose radiograph has dark collimated bands beside and below the chest:
        // the same bands as a screen's letterbox, but the region is not shaped like a screen
        let img = RgbImage::from_fn(300, 400, |x, y| {
            if !(50..250).contains(&x) || y >= 340 { grey(8.0 + grain(x, y)) } else { grey(anatomy(x, y)) }
        });
        assert_eq!(inside(&img), None);
        let turned = RgbImage::from_fn(400, 300, |x, y| *img.get_pixel(y, x));
        assert_eq!(inside(&turned), None);
        // the same radiograph on a 2:1 screen is cut out of it
        let screen = RgbImage::from_fn(300, 600, |x, y| {
            if (100..500).contains(&y) { *img.get_pixel(x, y - 100) } else { grey(6.0 + grain(x, y)) }
        });
        let [_, t, _, b] = inside(&screen).expect("letterbox found");
        assert!((t - 100.0).abs() <= 3.0 && (b - 440.0).abs() <= 3.0, "{t} {b}: rows 100..440 hold the radiograph");
    }

    #[test]
    fn a_thin_dark_strip_is_not_a_surround() {
        // a dark stripe under the run length (a film's edge, a fold) inside the radiograph stays
        let img = RgbImage::from_fn(200, 400, |x, y| {
            if (60..68).contains(&y) { grey(8.0 + grain(x, y)) } else { grey(anatomy(x, y)) }
        });
        assert_eq!(inside(&img), None);
    }
}
