//! The film as four straight edges: a second way to find it, for photos where growing the background finds
//! nothing (a textured desk or wall, a window behind the film, a finger across an edge).
//!
//! On the small detection copy: Canny edges, Hough lines, the near-horizontal and near-vertical ones with
//! the longest unbroken runs of edge pixels paired into quadrilaterals, and a quadrilateral kept only when
//! edge pixels lie along three of its sides right up to the corners and at least faintly along the fourth. Nested outlines are common (lightbox or monitor, its frame, the film, the film's exposed area), so
//! the largest clean outline is taken and then, while a clean outline sits inside it with a uniform band
//! between them (a frame, a lit panel, a film's clear margin), the inner one.

use image::{GrayImage, Luma, RgbImage};
use imageproc::edges::canny;
use imageproc::hough::{LineDetectionOptions, PolarLine, detect_lines};

use crate::geometry::{self, Quad};

/// Canny thresholds on the Sobel gradient magnitude (about 4x the grey step across an edge).
const CANNY_LOW: f32 = 30.0;
const CANNY_HIGH: f32 = 90.0;
/// Strongest lines kept per direction (horizontal-ish, vertical-ish).
const LINES_PER_DIRECTION: usize = 16;
/// Lines within this many degrees of horizontal or vertical count as candidate film edges.
const MAX_SLANT_DEG: u32 = 35;
/// A side counts when this fraction of its points has an edge pixel within a pixel or so.
const MIN_SIDE: f32 = 0.6;
/// ... and each fifth at either end of it at least this.
const MIN_END: f32 = 0.7;
/// The fourth side of three strong ones at least this.
const MIN_FAINT: f32 = 0.3;
/// ... and the three strongest sides together at least this.
const MIN_MEAN: f32 = 0.85;
/// An outline is a film worth reading only when it covers this much of the image.
const MIN_AREA: f32 = 0.15;
/// Largest grey step between neighbouring samples of a uniform band.
const BAND_STEP: i32 = 12;
/// An outline inside another must cover at least this much of it to be taken instead.
const MIN_NESTED: f32 = 0.3;

/// The film's outline in `small`'s pixels, or None.
pub fn find(small: &RgbImage) -> Option<Quad> {
    let maps = Maps::of(small);
    let candidates = outlines(&maps);
    for (q, score) in candidates.iter().take(30) {
        super::debug(format_args!("outline {q:?} area {} score {score}", geometry::area(q)));
    }
    let quad = descend(candidates.first()?.0, &candidates, &maps.grey);
    super::debug(format_args!("straight edges: {quad:?}"));
    Some(quad)
}

/// What the search looks at: the grey copy, its Canny edges and its gradients.
struct Maps {
    grey: GrayImage,
    edges: GrayImage,
    gradient: Gradient,
}

impl Maps {
    fn of(small: &RgbImage) -> Self {
        let grey = GrayImage::from_fn(small.width(), small.height(), |x, y| {
            Luma([(255.0 * crate::preprocess::luma_of(small.get_pixel(x, y))).round() as u8])
        });
        let edges = canny(&grey, CANNY_LOW, CANNY_HIGH);
        let gradient = Gradient::of(&grey);
        Maps { grey, edges, gradient }
    }
}

/// Sobel gradients of the grey image: an edge pixel counts for a side only when the grey changes across
/// the side, not along it.
struct Gradient {
    x: imageproc::definitions::Image<Luma<i16>>,
    y: imageproc::definitions::Image<Luma<i16>>,
}

impl Gradient {
    fn of(grey: &GrayImage) -> Self {
        Gradient { x: imageproc::gradients::horizontal_sobel(grey), y: imageproc::gradients::vertical_sobel(grey) }
    }

    /// |cos| of the angle between the gradient at (x, y) and the unit vector n.
    fn along(&self, x: u32, y: u32, n: [f32; 2]) -> f32 {
        let (gx, gy) = (self.x.get_pixel(x, y)[0] as f32, self.y.get_pixel(x, y)[0] as f32);
        let m = (gx * gx + gy * gy).sqrt();
        if m == 0.0 { 0.0 } else { (gx * n[0] + gy * n[1]).abs() / m }
    }
}

/// Every quadrilateral made of two near-horizontal and two near-vertical strong lines whose four sides
/// lie on edges, with its score, largest first.
fn outlines(maps: &Maps) -> Vec<(Quad, f32)> {
    let (edges, gradient) = (&maps.edges, &maps.gradient);
    let (w, h) = edges.dimensions();
    let votes = (0.12 * w.min(h) as f32) as u32;
    let lines = detect_lines(edges, LineDetectionOptions { vote_threshold: votes.max(8), suppression_radius: 4 });
    let strongest = |keep: &dyn Fn(u32) -> bool| {
        let mut v: Vec<(PolarLine, usize)> =
            lines.iter().filter(|l| keep(l.angle_in_degrees)).map(|l| (*l, on_line(edges, l))).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1));
        v.truncate(LINES_PER_DIRECTION);
        v.into_iter().map(|(l, _)| l).collect::<Vec<_>>()
    };
    // the angle is that of the line's normal: about 90 for a horizontal line, 0 or 180 for a vertical one
    let horizontal = strongest(&|a| a.abs_diff(90) <= MAX_SLANT_DEG);
    let vertical = strongest(&|a| a <= MAX_SLANT_DEG || a >= 180 - MAX_SLANT_DEG);
    super::debug(format_args!("{} lines; horizontal {horizontal:?}; vertical {vertical:?}", lines.len()));
    let image_area = (w * h) as f32;
    let mut found = Vec::new();
    for (i, top) in horizontal.iter().enumerate() {
        for bottom in &horizontal[i + 1..] {
            for (j, left) in vertical.iter().enumerate() {
                for right in &vertical[j + 1..] {
                    let corners = [
                        intersection(top, left),
                        intersection(top, right),
                        intersection(bottom, right),
                        intersection(bottom, left),
                    ];
                    let Some(corners) = corners.into_iter().collect::<Option<Vec<_>>>() else { continue };
                    let inside = corners
                        .iter()
                        .all(|p| (-2.0..w as f32 + 2.0).contains(&p[0]) && (-2.0..h as f32 + 2.0).contains(&p[1]));
                    if !inside {
                        continue;
                    }
                    let q = geometry::order_corners([corners[0], corners[1], corners[2], corners[3]]);
                    if !geometry::is_convex(&q, 45.0) || geometry::area(&q) < MIN_AREA * image_area {
                        continue;
                    }
                    if let Some(score) = side_score(&q, edges, gradient) {
                        found.push((q, score));
                    }
                }
            }
        }
    }
    found.sort_by(|a, b| geometry::area(&b.0).total_cmp(&geometry::area(&a.0)));
    found
}

/// The longest stretch of the line (in half-pixel steps, gaps of up to two pixels bridged) with an edge
/// pixel on or next to it: a film's edge is one long stretch, a texture's alignments are broken up.
fn on_line(edges: &GrayImage, l: &PolarLine) -> usize {
    let (w, h) = edges.dimensions();
    let (s, c) = (l.angle_in_degrees as f32).to_radians().sin_cos();
    let edge = |x: f32, y: f32| {
        x >= 0.0 && y >= 0.0 && x < w as f32 && y < h as f32 && edges.get_pixel(x as u32, y as u32)[0] > 0
    };
    let n = w.max(h) as i32 * 2;
    let (mut best, mut run, mut gap) = (0, 0, 0);
    for t in -n..n {
        let t = t as f32 * 0.5;
        // a point on the line (its normal is (c, s)), then along it
        let (x, y) = (l.r * c - t * s, l.r * s + t * c);
        if (-1..=1).any(|d| edge(x + d as f32 * c, y + d as f32 * s)) {
            run += 1 + gap;
            gap = 0;
            best = best.max(run);
        } else if gap < 4 && run > 0 {
            gap += 1;
        } else {
            (run, gap) = (0, 0);
        }
    }
    best
}

/// Where two lines `x cos a + y sin a = r` cross, or None when they are (nearly) parallel.
fn intersection(a: &PolarLine, b: &PolarLine) -> Option<[f32; 2]> {
    let (sa, ca) = (a.angle_in_degrees as f32).to_radians().sin_cos();
    let (sb, cb) = (b.angle_in_degrees as f32).to_radians().sin_cos();
    let det = ca * sb - sa * cb;
    if det.abs() < 0.2 {
        return None;
    }
    Some([(a.r * sb - b.r * sa) / det, (ca * b.r - cb * a.r) / det])
}

/// How well the quad's sides lie on edges: per side, the fraction of points with an edge pixel within a
/// pixel across the side whose gradient runs across it (within about 30 degrees). At least three sides
/// must be strong (`MIN_SIDE` overall and `MIN_END` at both ends, with a mean of `MIN_MEAN`); the fourth
/// may be faint (a film's bright top against a bright window) but not absent (`MIN_FAINT`). Returns the
/// mean over all four, or None.
fn side_score(q: &Quad, edges: &GrayImage, gradient: &Gradient) -> Option<f32> {
    let (w, h) = edges.dimensions();
    let mut sides: Vec<(f32, bool)> = (0..4)
        .map(|i| {
            let (a, b) = (q[i], q[(i + 1) % 4]);
            let len = geometry::dist(a, b).max(1e-3);
            let n = [-(b[1] - a[1]) / len, (b[0] - a[0]) / len];
            let samples = 40;
            let hit: Vec<bool> = (2..samples - 1)
                .map(|k| {
                    let t = k as f32 / samples as f32;
                    let (x, y) = (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t);
                    (-1..=1).any(|d| {
                        let (px, py) = ((x + d as f32 * n[0]).round(), (y + d as f32 * n[1]).round());
                        if px < 0.0 || py < 0.0 || px >= w as f32 || py >= h as f32 {
                            return false;
                        }
                        let (px, py) = (px as u32, py as u32);
                        edges.get_pixel(px, py)[0] > 0 && gradient.along(px, py, n) > 0.85
                    })
                })
                .collect();
            let frac = |s: &[bool]| s.iter().filter(|h| **h).count() as f32 / s.len() as f32;
            let f = frac(&hit);
            // a real outline's edges run into its corners; lines of two different outlines crossing do not
            let end = hit.len() / 5;
            (f, f >= MIN_SIDE && frac(&hit[..end]) >= MIN_END && frac(&hit[hit.len() - end..]) >= MIN_END)
        })
        .collect();
    sides.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.total_cmp(&a.0)));
    let strong = sides.iter().filter(|s| s.1).count();
    let best3 = sides[..3].iter().map(|s| s.0).sum::<f32>() / 3.0;
    (strong >= 3 && best3 >= MIN_MEAN && sides[3].0 >= MIN_FAINT).then(|| sides.iter().map(|s| s.0).sum::<f32>() / 4.0)
}

/// From `start`, inner outlines while the band between is uniform (see the module's doc).
fn descend(start: Quad, candidates: &[(Quad, f32)], grey: &GrayImage) -> Quad {
    let mut current = start;
    loop {
        let outer_area = geometry::area(&current);
        let inner = candidates.iter().find(|(q, _)| {
            let a = geometry::area(q);
            a < 0.97 * outer_area
                && a >= MIN_NESTED * outer_area
                && contains(&current, q)
                && uniform_band(&current, q, grey)
        });
        match inner {
            Some((next, _)) => current = *next,
            None => return current,
        }
    }
}

/// Every corner of `inner` lies inside `outer` (convex).
fn contains(outer: &Quad, inner: &Quad) -> bool {
    inner.iter().all(|p| {
        (0..4).all(|i| {
            let (a, b) = (outer[i], outer[(i + 1) % 4]);
            // corners run clockwise on screen (y down): inside is to the right of each side
            (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]) >= -1.0
        })
    })
}

/// The band between two nested outlines is a frame, a lit panel or a clear margin, not part of a picture:
/// along each side, the grey halfway between the two outlines changes smoothly (unevenly lit is fine, a
/// finger across it is two steps): at least three in four steps between neighbouring samples are small.
fn uniform_band(outer: &Quad, inner: &Quad, grey: &GrayImage) -> bool {
    let (w, h) = grey.dimensions();
    let samples = 24;
    (0..4).all(|i| {
        let j = (i + 1) % 4;
        let v: Vec<i32> = (1..samples)
            .map(|k| {
                let t = k as f32 / samples as f32;
                let along = |q: &Quad, c: usize| q[i][c] + (q[j][c] - q[i][c]) * t;
                let x = ((along(outer, 0) + along(inner, 0)) / 2.0).clamp(0.0, w as f32 - 1.0);
                let y = ((along(outer, 1) + along(inner, 1)) / 2.0).clamp(0.0, h as f32 - 1.0);
                grey.get_pixel(x as u32, y as u32)[0] as i32
            })
            .collect();
        let smooth = v.windows(2).filter(|p| (p[1] - p[0]).abs() <= BAND_STEP).count();
        super::debug(format_args!("band side {i}: {smooth} of {} smooth", v.len() - 1));
        smooth * 4 >= (v.len() - 1) * 3
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    /// A `w` x `h` picture: `background(x, y)` with flat-coloured quads painted over it in order, the last
    /// one (the film) filled with structure like a radiograph's.
    fn scene(w: u32, h: u32, background: impl Fn(u32, u32) -> u8, flat: &[(Quad, u8)], film: Quad) -> RgbImage {
        let inside = |q: &Quad, x: f32, y: f32| contains(q, &[[x, y]; 4]);
        RgbImage::from_fn(w, h, |x, y| {
            let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
            let mut v = background(x, y);
            for (q, level) in flat {
                if inside(q, fx, fy) {
                    v = *level;
                }
            }
            if inside(&film, fx, fy) {
                let grain = ((x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) % 9) as f32 - 4.0;
                v = (160.0 + 35.0 * (fx / 23.0).sin() * (fy / 31.0).cos() + 15.0 * (fy / 60.0).sin() + grain) as u8;
            }
            Rgb([v, v, v])
        })
    }

    /// A busy texture darker than the lit film: random blobs (value noise on a 7-pixel grid) and grain, so no
    /// fill grows through it.
    fn gravel(x: u32, y: u32) -> u8 {
        let hash = |i: u32, j: u32| {
            ((i.wrapping_mul(73_856_093) ^ j.wrapping_mul(19_349_663)).wrapping_mul(2_654_435_761) >> 24) as f32
        };
        let (gx, gy) = (x as f32 / 7.0, y as f32 / 7.0);
        let (i, j, u, v) = (gx as u32, gy as u32, gx.fract(), gy.fract());
        let blob = hash(i, j) * (1.0 - u) * (1.0 - v)
            + hash(i + 1, j) * u * (1.0 - v)
            + hash(i, j + 1) * (1.0 - u) * v
            + hash(i + 1, j + 1) * u * v;
        let grain = ((x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) % 21) as f32 - 10.0;
        (25.0 + 0.3 * blob + grain) as u8
    }

    fn assert_near(found: Option<Quad>, truth: Quad, what: &str) {
        let found = found.unwrap_or_else(|| panic!("{what}: no outline found"));
        for (a, b) in found.iter().zip(truth.iter()) {
            assert!(geometry::dist(*a, *b) < 4.0, "{what}: corner {a:?} vs {b:?} (found {found:?})");
        }
    }

    const FILM: Quad = [[52.0, 48.0], [196.0, 60.0], [186.0, 262.0], [40.0, 250.0]];

    #[test]
    fn a_tilted_film_on_a_textured_background_is_found_by_its_four_edges() {
        let img = scene(240, 320, gravel, &[], FILM);
        assert_near(find(&img), FILM, "film on gravel");
    }

    const FRAME: Quad = [[12.0, 10.0], [230.0, 22.0], [224.0, 306.0], [6.0, 296.0]];
    const PANEL: Quad = [[22.0, 20.0], [220.0, 31.0], [214.0, 296.0], [16.0, 286.0]];

    /// Gravel room, a dark frame, a lit panel (unevenly: tubes), the film on the panel.
    fn lightbox() -> RgbImage {
        let img = scene(240, 320, gravel, &[(FRAME, 30), (PANEL, 225)], FILM);
        RgbImage::from_fn(240, 320, |x, y| {
            let p = img.get_pixel(x, y)[0];
            let v = if p == 225 { (225.0 - 12.0 * (1.0 + (x as f32 / 38.0).cos())) as u8 } else { p };
            Rgb([v, v, v])
        })
    }

    #[test]
    fn the_film_is_found_inside_a_framed_lightbox_not_the_lightbox() {
        assert_near(find(&lightbox()), FILM, "film on a framed lightbox");
    }

    #[test]
    fn outlines_must_run_along_real_edges_into_their_corners() {
        let m = Maps::of(&scene(240, 320, gravel, &[], FILM));
        assert!(!outlines(&m).is_empty());
        assert!(side_score(&FILM, &m.edges, &m.gradient).is_some(), "the film's own outline");
        // the bottom side moved a fifth of the way up: its side runs through the film, and the two long
        // sides stop short of their edges' ends
        let short = [FILM[0], FILM[1], [188.0, 222.0], [42.0, 210.0]];
        assert!(side_score(&short, &m.edges, &m.gradient).is_none(), "an outline cutting through the film");
        // the panel's top edge with the film's other three: the film's side edges stop short of the panel's
        // top, so both side lines lack edges at their top ends
        let m = Maps::of(&lightbox());
        assert!(side_score(&FILM, &m.edges, &m.gradient).is_some(), "the film on the lightbox");
        let mixed = [[53.6, 21.8], [197.5, 29.7], FILM[2], FILM[3]];
        assert!(side_score(&mixed, &m.edges, &m.gradient).is_none(), "the panel's top edge taken for the film's");
        // nothing in a texture alone
        let bare = scene(240, 320, gravel, &[], [[0.0; 2]; 4]);
        assert!(find(&bare).is_none(), "gravel alone has no film");
    }
}
