//! Film: find the radiograph inside a photo (film on a lightbox, window or monitor, background around it),
//! and flatten it with a perspective warp. Bare radiographs pass through untouched, less any flat digital
//! padding around them when the model asks for that (src/border.rs).
//!
//! Method: on a small copy of the photo, grow the background inwards from the image border through
//! pixels whose colour changes smoothly (a room, a desk, a lightbox surround), take the largest remaining
//! blob, fit the largest-area quadrilateral to its convex hull, and accept it only if its four edges are
//! straight, high-contrast boundaries with background outside. The fill is tried from coarse to fine
//! tolerance: the first quad with clean edges wins, else the largest (a fill that leaked into the film leaves
//! part of it). When the region found has a bright, uniform rim (a lightbox or screen), look again inside it
//! for the film, which must then have clean edges. Otherwise, when the region is shaped like a screen, dark
//! textureless bands inside it (a phone or monitor showing the radiograph: letterbox, the app's bars) are cut
//! off it (`surround`). When no fill finds anything (a busy or colourful background), the film is looked
//! for as four straight edges instead (`lines`), or three when its fourth is no edge (a bright end against a
//! bright background), and dark bands are cut off that too. When neither finds it, a fill whose quad has
//! clean edges but which leaked into part of the film (a film held up to a bright window or ceiling: its
//! bright ends meet the light, and fingers cross its edges) is taken after all (`Fill::leaked`). Anything less
//! certain passes through.

use image::{GrayImage, Luma, RgbImage, imageops};
use imageproc::contours::{BorderType, find_contours};
use imageproc::geometry::convex_hull;
use imageproc::point::Point;

use std::borrow::Cow;

use crate::border;
use crate::geometry::{self, Quad};
use crate::manifest::TrimSpec;
use crate::resample;

mod lines;
mod surround;

/// Detection runs on a copy of the photo with this long side.
const DETECT_SIDE: u32 = 256;
/// The flattened film is at most this many pixels on its long side (the model needs far fewer).
pub const FILM_MAX_SIDE: u32 = 1024;

/// The flattened radiograph and where it came from.
pub struct Film {
    pub image: RgbImage,
    /// Corners of the film in input-image pixels (TL, TR, BR, BL of `image`).
    pub corners: Quad,
    /// True when a film boundary was found in the photo (false: passed through or given by the caller).
    pub detected: bool,
    /// Flat padding was cut off the image's edges before the film was looked for.
    pub trimmed: bool,
}

/// Find the film's corners in input pixels; None when the image should be read as it is.
///
/// The first boundary found may be that of a lit lightbox or monitor with the film on it: when the found
/// region's rim is bright and uniform, the film is looked for again inside it. When growing the background
/// finds nothing, the film is looked for as four straight edges (`lines`), and failing that a fill that leaked
/// into the film but whose quad has clean edges is taken.
pub fn detect(input: &RgbImage) -> Option<Quad> {
    let small = Small::of(input);
    let fill = small.fill();
    match fill.chosen {
        // a clean quad, else the largest unclean one (a leak only ever shrinks the film)
        Some((outer, _)) => {
            let outer = small.to_input(outer);
            Some(nested(input, &outer).or_else(|| in_dark_surround(input, &outer)).unwrap_or(outer))
        }
        // the fill found nothing (a textured background, a window): four straight edges, else the leaked fill
        None => lines::find(&small.image)
            .or_else(|| {
                let (q, s) = fill.leaked?;
                debug(format_args!("taken though the fill leaked into it: {q:?} support {s}"));
                Some(q)
            })
            .map(|q| {
                let q = small.to_input(q);
                in_dark_surround(input, &q).unwrap_or(q)
            }),
    }
}

/// The radiograph inside the found region when dark textureless bands surround it (a phone or monitor
/// showing it: letterbox bands, the app's bars), in input pixels.
fn in_dark_surround(input: &RgbImage, outer: &Quad) -> Option<Quad> {
    // most regions are films, not screens: skip the flatten (the test is repeated on the flattened size,
    // whose rounding the slack allows for)
    let (w, h) = geometry::mean_sides(outer);
    if !surround::screen_shaped_within(w, h, 0.97) {
        return None;
    }
    let flat = flatten_within(input, outer, DETECT_SIDE);
    let [l, t, r, b] = surround::inside(&flat)?;
    let (fw, fh) = flat.dimensions();
    let to_input = geometry::film_to_input(outer, fw as f32, fh as f32)?;
    debug(format_args!("radiograph inside a dark surround: {:?} of {fw}x{fh}", [l, t, r, b]));
    Some([[l, t], [r, t], [r, b], [l, b]].map(|[x, y]| geometry::map(&to_input, x, y)))
}

/// The copy of the photo detection runs on: at most `DETECT_SIDE` on the long side, slightly blurred.
struct Small {
    image: RgbImage,
    /// Input pixels per small pixel.
    scale: f32,
    input_size: (u32, u32),
}

impl Small {
    fn of(input: &RgbImage) -> Self {
        let (w, h) = input.dimensions();
        let s = DETECT_SIDE as f32 / w.max(h) as f32;
        let (sw, sh) = (((w as f32 * s).round() as u32).max(8), ((h as f32 * s).round() as u32).max(8));
        Small { image: imageops::blur(&resample::shrink_to(input, sw, sh), 1.0), scale: 1.0 / s, input_size: (w, h) }
    }

    fn to_input(&self, quad: Quad) -> Quad {
        let (w, h) = self.input_size;
        quad.map(|[x, y]| [(x * self.scale).clamp(0.0, w as f32), (y * self.scale).clamp(0.0, h as f32)])
    }

    /// The background fill's quads (small pixels).
    fn fill(&self) -> Fill {
        let mut leaked: Option<(Quad, f32)> = None;
        let chosen = choose_tolerance(|tol| {
            let found = quad_for_tolerance(&self.image, tol)?;
            if found.passes {
                return Some((found.quad, found.support));
            }
            // the best-supported leaked fill, kept in case nothing else finds the film
            if leaked.is_none_or(|(_, s)| found.support > s) {
                leaked = Some((found.quad, found.support));
            }
            None
        });
        Fill { chosen, leaked }
    }
}

/// What the background fill found, over its tolerances.
struct Fill {
    /// The quad and edge support `choose_tolerance` picked among those passing every gate.
    chosen: Option<(Quad, f32)>,
    /// The best-supported quad that failed only because the fill leaked into the film (the blob fills
    /// 60-85 % of it) while its edges are clean: used only when nothing else finds a film.
    leaked: Option<(Quad, f32)>,
}

/// Long side of the flattened copy the nested look searches (its detection runs at `DETECT_SIDE` anyway).
const NESTED_SIDE: u32 = 2 * DETECT_SIDE;

fn nested(input: &RgbImage, outer: &Quad) -> Option<Quad> {
    let flat = flatten_within(input, outer, NESTED_SIDE);
    if !lit_uniform_rim(&flat) {
        return None;
    }
    // inside a lit rim only a clean boundary counts: a film's own bright margin also makes such a rim, and
    // what a fill finds inside it is then part of the film (one lung, support well under 1)
    let small = Small::of(&flat);
    let (inner, support) = small.fill().chosen?;
    if support < CLEAN_SUPPORT {
        return None;
    }
    let inner = small.to_input(inner);
    let (fw, fh) = flat.dimensions();
    if geometry::area(&inner) < 0.2 * (fw * fh) as f32 {
        return None;
    }
    let to_input = geometry::film_to_input(outer, fw as f32, fh as f32)?;
    debug(format_args!("film inside a lit surround: {inner:?}"));
    Some(inner.map(|[x, y]| geometry::map(&to_input, x, y)))
}

/// A lightbox or screen around the film: a strip 1-4% in from the region's edge (skipping the outermost
/// pixels, which a slightly-off boundary mixes with the room) is bright and mostly uniform.
fn lit_uniform_rim(img: &RgbImage) -> bool {
    let (w, h) = img.dimensions();
    let side = w.min(h) as f32;
    let (a, b) = ((side * 0.01).ceil() as u32, (side * 0.04).ceil().max(2.0) as u32);
    let ring = |x: u32, y: u32| {
        let d = x.min(y).min(w - 1 - x).min(h - 1 - y);
        d >= a && d < b
    };
    let mut v: Vec<f32> = img
        .enumerate_pixels()
        .filter(|(x, y, _)| ring(*x, *y))
        .map(|(_, _, p)| 255.0 * crate::preprocess::luma_of(p))
        .collect();
    if v.is_empty() {
        return false;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let median = v[v.len() / 2];
    let near = v.iter().filter(|x| (**x - median).abs() <= 20.0).count() as f32 / v.len() as f32;
    debug(format_args!("rim median {median:.0}, {:.0}% near it", near * 100.0));
    median > 140.0 && near > 0.7
}

/// The quad one fill tolerance gives: one that passes every gate, or else one that fails only because the blob
/// fills too little of it while its edges are clean (the fill leaked into the film where the film meets a
/// background as bright as itself, or fingers cross its edges).
struct Found {
    quad: Quad,
    support: f32,
    /// It passes every gate (else it is a leaked fill's).
    passes: bool,
}

/// Least edge support of a leaked fill's quad (`Found`).
const LEAKED_SUPPORT: f32 = 0.8;
/// Least share of a leaked fill's quad its blob must fill.
const LEAKED_FILL: f32 = 0.6;

/// The quad found at one fill tolerance, its edge support and whether it passes the gates.
fn quad_for_tolerance(small: &RgbImage, tol: u8) -> Option<Found> {
    let (sw, sh) = small.dimensions();
    let background = grow_background(small, tol);
    let bg_count = background.pixels().filter(|p| p[0] > 0).count();
    let total = (sw * sh) as usize;
    debug(format_args!("tolerance {tol}: background {bg_count} of {total}"));
    if bg_count < total / 20 || bg_count > total * 9 / 10 {
        return None;
    }
    let mut fg = GrayImage::from_fn(sw, sh, |x, y| Luma([if background.get_pixel(x, y)[0] > 0 { 0 } else { 255 }]));
    fg = imageproc::morphology::open(&fg, imageproc::distance_transform::Norm::LInf, 2);
    let contour = find_contours::<i32>(&fg)
        .into_iter()
        .filter(|c| c.border_type == BorderType::Outer && c.points.len() >= 8)
        .max_by(|a, b| {
            imageproc::geometry::contour_area(&a.points).total_cmp(&imageproc::geometry::contour_area(&b.points))
        })?;
    let blob_area = imageproc::geometry::contour_area(&contour.points) as f32;
    // a film worth reading fills a fair part of the photo; smaller blobs on bare radiographs are lungs
    if blob_area < MIN_SMALL_BLOB * total as f32 {
        return None;
    }
    let hull = convex_hull(contour.points.clone());
    let poly = corner_candidates(&hull);
    let quad = max_area_quad(&poly)?;
    let support = edge_support(&quad, &background);
    debug(format_args!(
        "blob {blob_area} poly {} quad {quad:?} area {} support {support}",
        poly.len(),
        geometry::area(&quad)
    ));
    // the blob must fill the quad, and the quad must cover the blob; a small one must be clean and shaped
    // like a film (one lung beside a leak is a narrow strip)
    let quad_area = geometry::area(&quad);
    let small_blob = blob_area < MIN_BLOB * total as f32;
    let shape = geometry::is_convex(&quad, 45.0) && quad_area >= 0.85 * blob_area;
    let passes = shape
        && !(small_blob && (support < CLEAN_SUPPORT || !geometry::film_shaped(&quad)))
        && blob_area >= 0.85 * quad_area
        && support >= 0.7;
    // a large, film-shaped quad with clean edges that the blob fills only in part
    let leaked = shape
        && !passes
        && !small_blob
        && geometry::film_shaped(&quad)
        && support >= LEAKED_SUPPORT
        && blob_area >= LEAKED_FILL * quad_area;
    (passes || leaked).then_some(Found { quad, support, passes })
}

/// Least share of the photo the film's blob covers; below `MIN_BLOB` (a film photographed from a step back,
/// the whole lightbox in the frame) only a clean, film-shaped quad counts: smaller blobs on bare radiographs
/// are lungs, and in photos one lung beside a leak into the film.
const MIN_BLOB: f32 = 0.18;
const MIN_SMALL_BLOB: f32 = 0.08;

/// Fill tolerances, coarse to fine.
const TOLERANCES: [u8; 5] = [7, 5, 4, 3, 2];
/// Edge support of a clean detection: background just outside and film just inside nearly all along three
/// edges.
const CLEAN_SUPPORT: f32 = 0.95;

/// A low-contrast stretch of film edge lets a tolerant fill leak into the film: what is left is part of it,
/// typically one lung cut off along the spine, with one edge that is not a film edge (support well under
/// 1). So: the first clean quad, coarse to fine; failing that, the largest quad any tolerance gives (a leak
/// only ever shrinks the film). Stopping at the first clean one keeps the usual photo at one or two fills,
/// and keeps a finer fill's extra ring of background pixels out of the film.
fn choose_tolerance(mut at: impl FnMut(u8) -> Option<(Quad, f32)>) -> Option<(Quad, f32)> {
    let mut best: Option<(Quad, f32)> = None;
    for tol in TOLERANCES {
        let Some((quad, support)) = at(tol) else { continue };
        if support >= CLEAN_SUPPORT {
            return Some((quad, support));
        }
        if best.is_none_or(|(b, _)| geometry::area(&quad) > geometry::area(&b)) {
            best = Some((quad, support));
        }
    }
    best
}

fn debug(args: std::fmt::Arguments) {
    if std::env::var_os("XRAY_DEBUG_FILM").is_some() {
        eprintln!("film: {args}");
    }
}

/// Background mask (255) grown from every border pixel. A pixel joins when it differs from its grown
/// neighbour by at most `tol` per channel and from the colour the fill carries along its path (a slow
/// moving average, which follows lighting gradients but not the ramp of a blurred edge) by at most 3*tol.
fn grow_background(img: &RgbImage, tol: u8) -> GrayImage {
    let (w, h) = img.dimensions();
    let mut mask = GrayImage::new(w, h);
    let mut carried = vec![[0f32; 3]; (w * h) as usize];
    let mut stack: Vec<(u32, u32)> = Vec::new();
    for x in 0..w {
        stack.push((x, 0));
        stack.push((x, h - 1));
    }
    for y in 0..h {
        stack.push((0, y));
        stack.push((w - 1, y));
    }
    for &(x, y) in &stack {
        mask.put_pixel(x, y, Luma([255]));
        let p = img.get_pixel(x, y);
        carried[(y * w + x) as usize] = [p[0] as f32, p[1] as f32, p[2] as f32];
    }
    let far = 3.0 * tol as f32;
    while let Some((x, y)) = stack.pop() {
        let p = *img.get_pixel(x, y);
        let c = carried[(y * w + x) as usize];
        let neighbours = [(x.wrapping_sub(1), y), (x + 1, y), (x, y.wrapping_sub(1)), (x, y + 1)];
        for (nx, ny) in neighbours {
            if nx >= w || ny >= h || mask.get_pixel(nx, ny)[0] > 0 {
                continue;
            }
            let q = img.get_pixel(nx, ny);
            let near = (0..3).all(|k| p[k].abs_diff(q[k]) <= tol);
            if near && (0..3).all(|k| (q[k] as f32 - c[k]).abs() <= far) {
                mask.put_pixel(nx, ny, Luma([255]));
                carried[(ny * w + nx) as usize] = [0, 1, 2].map(|k| 0.85 * c[k] + 0.15 * q[k] as f32);
                stack.push((nx, ny));
            }
        }
    }
    mask
}

/// Hull vertices where the outline really turns (more than 4 degrees): the candidates for film corners.
/// At most 40 are kept (evenly), so the exhaustive quadrilateral search stays cheap.
fn corner_candidates(hull: &[Point<i32>]) -> Vec<Point<i32>> {
    let n = hull.len();
    let f = |p: Point<i32>| [p.x as f32, p.y as f32];
    let turn = |i: usize| 180.0 - geometry::angle_deg(f(hull[(i + n - 1) % n]), f(hull[i]), f(hull[(i + 1) % n]));
    let mut keep: Vec<Point<i32>> = (0..n).filter(|&i| n <= 4 || turn(i) > 4.0).map(|i| hull[i]).collect();
    if keep.len() > 40 {
        let step = keep.len() as f32 / 40.0;
        keep = (0..40).map(|k| keep[(k as f32 * step) as usize]).collect();
    }
    keep
}

/// Largest-area quadrilateral with vertices among the polygon's (few, after simplification) vertices.
fn max_area_quad(poly: &[Point<i32>]) -> Option<Quad> {
    let n = poly.len();
    if n < 4 || n > 40 {
        return None;
    }
    let p: Vec<[f32; 2]> = poly.iter().map(|p| [p.x as f32, p.y as f32]).collect();
    let mut best = (0.0f32, [0usize; 4]);
    for a in 0..n {
        for b in a + 1..n {
            for c in b + 1..n {
                for d in c + 1..n {
                    let ar = geometry::area(&[p[a], p[b], p[c], p[d]]);
                    if ar > best.0 {
                        best = (ar, [a, b, c, d]);
                    }
                }
            }
        }
    }
    let [a, b, c, d] = best.1;
    Some(geometry::order_corners([p[a], p[b], p[c], p[d]]))
}

/// Mean over the best three edges of the fraction of points along the edge with background just outside
/// and film just inside: straight, clean boundaries score near 1; a body outline or a texture does not.
fn edge_support(q: &Quad, background: &GrayImage) -> f32 {
    let (w, h) = background.dimensions();
    let cx = q.iter().map(|p| p[0]).sum::<f32>() / 4.0;
    let cy = q.iter().map(|p| p[1]).sum::<f32>() / 4.0;
    let is_bg = |x: f32, y: f32| -> Option<bool> {
        if x < 0.0 || y < 0.0 || x >= w as f32 || y >= h as f32 {
            return None;
        }
        Some(background.get_pixel(x as u32, y as u32)[0] > 0)
    };
    let mut scores: Vec<f32> = (0..4)
        .map(|i| {
            let a = q[i];
            let b = q[(i + 1) % 4];
            let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
            let len = (dx * dx + dy * dy).sqrt().max(1e-3);
            let (mut nx, mut ny) = (-dy / len, dx / len);
            let (mx, my) = ((a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0);
            if nx * (mx - cx) + ny * (my - cy) < 0.0 {
                nx = -nx;
                ny = -ny;
            }
            let samples = 32;
            let mut good = 0;
            for k in 1..samples {
                let t = k as f32 / samples as f32;
                let (x, y) = (a[0] + dx * t, a[1] + dy * t);
                let outside = is_bg(x + 3.0 * nx, y + 3.0 * ny);
                let inside = is_bg(x - 3.0 * nx, y - 3.0 * ny);
                if outside == Some(true) && inside == Some(false) {
                    good += 1;
                }
            }
            good as f32 / (samples - 1) as f32
        })
        .collect();
    scores.sort_by(|a, b| b.total_cmp(a));
    scores[..3].iter().sum::<f32>() / 3.0
}

/// Flatten the quad of `input` into an upright rectangle whose size follows the quad's side lengths.
pub fn flatten(input: &RgbImage, corners: &Quad) -> RgbImage {
    flatten_within(input, corners, FILM_MAX_SIDE)
}

/// `flatten` to at most `max_side` pixels on the long side.
fn flatten_within(input: &RgbImage, corners: &Quad, max_side: u32) -> RgbImage {
    let (mut fw, mut fh) = geometry::mean_sides(corners);
    let scale = (max_side as f32 / fw.max(fh)).min(1.0);
    fw = (fw * scale).round().max(8.0);
    fh = (fh * scale).round().max(8.0);
    // Sample from a whole-factor box average of the input with one to two times the film's output
    // resolution, so the warp does not alias detail.
    let f = (0.5 / scale).ceil() as u32;
    let shrunk;
    let (src, k) = if f >= 2 {
        let applied;
        (shrunk, applied) = resample::box_shrink(input, f);
        (&shrunk, 1.0 / applied as f32)
    } else {
        (input, 1.0)
    };
    let q = corners.map(|[x, y]| [x * k, y * k]);
    resample::warp_quad(src, &q, fw as u32, fh as u32)
        .unwrap_or_else(|| resample::shrink_to(input, fw as u32, fh as u32))
}

/// Photos larger than this on the long side are searched and flattened from one copy of at most this
/// size (a whole-factor box average, so between half and all of it): the flattened film is at most
/// `FILM_MAX_SIDE` and sampled from about twice that anyway, so a 12 MP photo costs one cheap downscale
/// instead of several passes over every pixel.
const WORK_SIDE: u32 = 2 * FILM_MAX_SIDE;

/// The read's film: the caller's corners, else a detected film, else the whole image. Without caller
/// corners, flat padding is first cut off the edges when `trim` is given. Corners are in `input` pixels.
pub fn find(input: &RgbImage, corners: Option<Quad>, trim: Option<&TrimSpec>) -> Film {
    let (w, h) = input.dimensions();
    if w.max(h) <= WORK_SIDE {
        return find_at(input, corners, trim);
    }
    // the box average maps coordinates by exactly 1/f on both axes
    let (small, f) = resample::box_shrink(input, w.max(h).div_ceil(WORK_SIDE));
    let f = f as f32;
    let film = find_at(&small, corners.map(|c| c.map(|[x, y]| [x / f, y / f])), trim);
    if !film.detected && !film.trimmed && corners.is_none() {
        // read whole: the whole photo, including the few edge pixels the box average dropped
        return Film { corners: geometry::rect_quad(w as f32, h as f32), ..film };
    }
    Film { corners: film.corners.map(|[x, y]| [x * f, y * f]), ..film }
}

fn find_at(input: &RgbImage, corners: Option<Quad>, trim: Option<&TrimSpec>) -> Film {
    if let Some(c) = corners {
        return Film { image: flatten(input, &c), corners: c, detected: false, trimmed: false };
    }
    let inner = trim.and_then(|spec| border::inner(input, spec));
    let (image, [ox, oy]) = match inner {
        Some(r) => (
            Cow::Owned(imageops::crop_imm(input, r.left, r.top, r.width(), r.height()).to_image()),
            [r.left as f32, r.top as f32],
        ),
        None => (Cow::Borrowed(input), [0.0, 0.0]),
    };
    let trimmed = inner.is_some();
    let to_input = |q: Quad| q.map(|[x, y]| [x + ox, y + oy]);
    let (w, h) = image.dimensions();
    match detect(&image) {
        Some(c) => Film { image: flatten(&image, &c), corners: to_input(c), detected: true, trimmed },
        None => {
            let corners = to_input(geometry::rect_quad(w as f32, h as f32));
            let image = if w.max(h) > FILM_MAX_SIDE {
                let (tw, th) = geometry::fit_within(w, h, FILM_MAX_SIDE);
                resample::shrink_to(&image, tw, th)
            } else {
                image.into_owned()
            };
            Film { image, corners, detected: false, trimmed }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    const TRIM: TrimSpec = TrimSpec { max_range: 6, min_keep: 0.5 };

    /// A grey "film" with structure, projected onto a coloured gradient background at `quad`.
    fn photo(quad: Quad) -> RgbImage {
        let (w, h) = (600u32, 800u32);
        let film = RgbImage::from_fn(300, 400, |x, y| {
            // structure at several scales, like ribs and lungs, plus grain
            let grain = ((x.wrapping_mul(2654435761) ^ y.wrapping_mul(40503)) % 31) as f32 - 15.0;
            let v = 120.0
                + 50.0 * (x as f32 / 9.0).sin() * (y as f32 / 11.0).cos()
                + 30.0 * (y as f32 / 60.0).sin()
                + grain;
            let v = v.clamp(0.0, 255.0) as u8;
            Rgb([v, v, v])
        });
        let mut out = RgbImage::from_fn(w, h, |x, y| Rgb([(60 + x / 10) as u8, (90 + y / 20) as u8, 150]));
        let p = geometry::film_to_input(&quad, 300.0, 400.0).unwrap();
        let inv = p.invert();
        for y in 0..h {
            for x in 0..w {
                let [u, v] = geometry::map(&inv, x as f32 + 0.5, y as f32 + 0.5);
                if (0.0..300.0).contains(&u) && (0.0..400.0).contains(&v) {
                    out.put_pixel(x, y, *film.get_pixel(u as u32, v as u32));
                }
            }
        }
        out
    }

    #[test]
    fn the_first_clean_quad_wins_else_the_largest_of_any_tolerance() {
        let quad = |side: f32| geometry::rect_quad(side, side);
        // coarse to fine: a leaked fill (small, unclean) then the whole film (clean), then a finer fill's
        // slightly larger quad with a ring of background: the first clean one is taken
        let found = [(7, (quad(50.0), 0.8)), (5, (quad(100.0), 1.0)), (4, (quad(101.0), 1.0))];
        let at = |tol: u8| found.iter().find(|(t, _)| *t == tol).map(|(_, q)| *q);
        assert_eq!(choose_tolerance(at), Some((quad(100.0), 1.0)));
        let mut asked = Vec::new();
        choose_tolerance(|tol| {
            asked.push(tol);
            at(tol)
        });
        assert_eq!(asked, [7, 5], "stops at the first clean quad");
        // nothing clean: the largest, wherever it comes in the order
        let unclean = [(7, (quad(50.0), 0.8)), (4, (quad(90.0), 0.9)), (2, (quad(70.0), 0.94))];
        let at = |tol: u8| unclean.iter().find(|(t, _)| *t == tol).map(|(_, q)| *q);
        assert_eq!(choose_tolerance(at), Some((quad(90.0), 0.9)));
        assert_eq!(choose_tolerance(|_| None), None);
    }

    #[test]
    fn extreme_aspect_ratios_are_read_whole_without_panicking() {
        // wider than the work size with a side shorter than the shrink factor: nothing to average
        for (w, h) in [(5000, 2), (2, 5000), (4100, 3)] {
            let film = find(&RgbImage::new(w, h), None, Some(&TRIM));
            assert!(!film.detected);
            assert_eq!(film.corners, geometry::rect_quad(w as f32, h as f32));
        }
    }

    #[test]
    fn finds_a_tilted_film_on_a_background() {
        let truth = [[130.0, 110.0], [470.0, 150.0], [440.0, 690.0], [100.0, 640.0]];
        let found = detect(&photo(truth)).expect("film detected");
        for (a, b) in found.iter().zip(truth.iter()) {
            let d = geometry::dist(*a, *b);
            assert!(d < 12.0, "corner {a:?} vs {b:?}");
        }
        let film = find(&photo(truth), None, Some(&TRIM));
        assert!(film.detected);
        let (fw, fh) = film.image.dimensions();
        assert!(fh > fw, "portrait film stays portrait ({fw}x{fh})");
    }

    #[test]
    fn a_film_photographed_from_a_step_back_is_found_but_a_strip_the_same_size_is_not() {
        // about an eighth of the photo: under the size a rough blob needs, so it must be clean and film-shaped
        let truth = [[200.0, 250.0], [400.0, 262.0], [392.0, 552.0], [194.0, 540.0]];
        let found = detect(&photo(truth)).expect("small film detected");
        for (a, b) in found.iter().zip(truth.iter()) {
            assert!(geometry::dist(*a, *b) < 12.0, "corner {a:?} vs {b:?}");
        }
        // the same area as a narrow strip (one lung's shape): not a film
        let strip = [[250.0, 140.0], [360.0, 146.0], [356.0, 666.0], [246.0, 660.0]];
        assert!(!geometry::film_shaped(&strip));
        assert!(detect(&photo(strip)).is_none(), "a strip is not taken for a film");
    }

    #[test]
    fn a_large_photo_is_searched_at_working_size_and_answered_in_its_own_pixels() {
        let truth = [[130.0, 110.0], [470.0, 150.0], [440.0, 690.0], [100.0, 640.0]];
        let big = imageops::resize(&photo(truth), 2400, 3200, imageops::FilterType::Triangle);
        let film = find(&big, None, Some(&TRIM));
        assert!(film.detected);
        for (a, b) in film.corners.iter().zip(truth.iter()) {
            let d = geometry::dist(*a, [b[0] * 4.0, b[1] * 4.0]);
            assert!(d < 48.0, "corner {a:?} vs {:?}", [b[0] * 4.0, b[1] * 4.0]);
        }
        assert!(film.image.width().max(film.image.height()) <= FILM_MAX_SIDE);
        // caller corners in the big photo's pixels come back unchanged
        let given = truth.map(|[x, y]| [x * 4.0, y * 4.0]);
        let film = find(&big, Some(given), Some(&TRIM));
        for (a, b) in film.corners.iter().zip(given.iter()) {
            assert!(geometry::dist(*a, *b) < 0.5, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn finds_the_film_on_a_lightbox_not_the_lightbox() {
        let (w, h) = (600u32, 800u32);
        let panel = [[40.0, 50.0], [570.0, 30.0], [580.0, 770.0], [20.0, 760.0]];
        let truth = [[130.0, 140.0], [470.0, 150.0], [460.0, 660.0], [120.0, 640.0]];
        let to_panel = geometry::film_to_input(&panel, 1.0, 1.0).unwrap().invert();
        let to_film = geometry::film_to_input(&truth, 300.0, 400.0).unwrap().invert();
        let img = RgbImage::from_fn(w, h, |x, y| {
            let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
            let [u, v] = geometry::map(&to_panel, px, py);
            if !(0.0..1.0).contains(&u) || !(0.0..1.0).contains(&v) {
                return Rgb([25, 22, 30]); // dark room
            }
            let [fx, fy] = geometry::map(&to_film, px, py);
            if (0.0..300.0).contains(&fx) && (0.0..400.0).contains(&fy) {
                let t = 0.35 + 0.3 * (fx / 9.0).sin() * (fy / 11.0).cos() + 0.15 * (fy / 60.0).sin();
                let v = (240.0 * t.clamp(0.05, 0.95)) as u8; // the film transmits the panel's light
                return Rgb([v, v, v]);
            }
            Rgb([238, 240, 246]) // lit panel
        });
        let found = detect(&img).expect("film detected");
        for (a, b) in found.iter().zip(truth.iter()) {
            let d = geometry::dist(*a, *b);
            assert!(d < 12.0, "corner {a:?} vs film {b:?}: the lightbox was taken for the film");
        }
    }

    #[test]
    fn finds_the_radiograph_on_a_phone_screen_not_the_phone() {
        // a phone lying on a table shows a forwarded radiograph: dark bezel, status bar with icons, black
        // letterbox above and below the radiograph (which spans the screen's width), navigation bar
        let (w, h) = (600u32, 800u32);
        // (a 19.5:9 phone: 240 x 520 in its own pixels)
        let phone = [[150.0, 100.0], [420.0, 130.0], [390.0, 715.0], [110.0, 685.0]];
        let (pw, ph) = (240.0, 520.0);
        let to_phone = geometry::film_to_input(&phone, pw, ph).unwrap().invert();
        let img = RgbImage::from_fn(w, h, |x, y| {
            let [u, v] = geometry::map(&to_phone, x as f32 + 0.5, y as f32 + 0.5);
            if !(0.0..pw).contains(&u) || !(0.0..ph).contains(&v) {
                return Rgb([(60 + x / 10) as u8, (90 + y / 20) as u8, 150]); // the table
            }
            let (u, v) = (u as u32, v as u32);
            let grain = ((u.wrapping_mul(2654435761) ^ v.wrapping_mul(40503)) % 5) as u8;
            let dark = |g: u8| Rgb([g + grain; 3]);
            match (u, v) {
                (0..6 | 234.., _) | (_, 0..6 | 514..) => dark(28), // a thin bezel
                (_, 14..20) if u % 40 < 10 => Rgb([210; 3]),       // status icons
                (_, 10..24) => dark(14),
                (_, 130..350) => {
                    let (x, y) = (u as f32, v as f32);
                    let t = 120.0 + 50.0 * (x / 9.0).sin() * (y / 11.0).cos() + 30.0 * (y / 60.0).sin();
                    Rgb([(t + 3.0 * grain as f32) as u8; 3])
                }
                (100..140, 485..490) => Rgb([170; 3]), // navigation handle
                (_, 470..) => dark(20),
                _ => dark(6), // letterbox
            }
        });
        let to_input = geometry::film_to_input(&phone, pw, ph).unwrap();
        let truth =
            [[6.0, 130.0], [234.0, 130.0], [234.0, 350.0], [6.0, 350.0]].map(|[u, v]| geometry::map(&to_input, u, v));
        let found = detect(&img).expect("found");
        for (a, b) in found.iter().zip(truth.iter()) {
            assert!(
                geometry::dist(*a, *b) < 12.0,
                "corner {a:?} vs radiograph {b:?}: the phone was taken for the film"
            );
        }
        // when the whole phone is the region found, the letterbox and bars are cut off it
        let inner = in_dark_surround(&img, &phone).expect("radiograph inside the phone");
        for (a, b) in inner.iter().zip(truth.iter()) {
            assert!(geometry::dist(*a, *b) < 12.0, "corner {a:?} vs radiograph {b:?}");
        }
    }

    #[test]
    fn a_bare_radiograph_passes_through() {
        let img = RgbImage::from_fn(400, 500, |x, y| {
            // (no row or column of constant grey: that would be flat padding)
            let v = (100.0 + 90.0 * (((x + 5) as f32 / 13.0).sin() * (y as f32 / 29.0).cos())) as u8;
            Rgb([v, v, v])
        });
        assert!(detect(&img).is_none());
        let film = find(&img, None, Some(&TRIM));
        assert!(!film.detected);
        assert_eq!(film.corners, geometry::rect_quad(400.0, 500.0));
        assert_eq!(film.image.dimensions(), (400, 500));
    }

    /// A bare radiograph-like image inside near-black bars: `pad` pixels of padding on the left and top.
    fn padded(w: u32, h: u32, left: u32, top: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            if x < left || y < top {
                return Rgb([((x + y) % 3) as u8; 3]);
            }
            let v = (100.0 + 90.0 * ((x as f32 / 13.0).sin() * (y as f32 / 29.0).cos())) as u8;
            Rgb([v, v, v])
        })
    }

    #[test]
    fn flat_padding_is_cut_off_when_the_model_asks_and_not_taken_for_a_film() {
        let img = padded(400, 500, 60, 25);
        let film = find(&img, None, Some(&TRIM));
        assert!(film.trimmed && !film.detected);
        assert_eq!(film.corners, [[60.0, 25.0], [400.0, 25.0], [400.0, 500.0], [60.0, 500.0]]);
        assert_eq!(film.image.dimensions(), (340, 475));
        assert_eq!(film.image.get_pixel(0, 0), img.get_pixel(60, 25));
        // a model trained without the trim reads the image as it is
        let film = find(&img, None, None);
        assert!(!film.trimmed);
        assert_eq!(film.image.dimensions(), (400, 500));
        // caller corners win: nothing is trimmed
        let given = [[0.0, 0.0], [400.0, 0.0], [400.0, 500.0], [0.0, 500.0]];
        assert!(!find(&img, Some(given), Some(&TRIM)).trimmed);
    }

    #[test]
    fn padding_on_a_large_image_is_answered_in_its_own_pixels() {
        // 4000 px: searched on a copy shrunk by 2; the corners come back in the input's pixels
        let img = padded(3200, 4000, 400, 200);
        let film = find(&img, None, Some(&TRIM));
        assert!(film.trimmed && !film.detected);
        for (a, b) in film.corners.iter().zip([[400.0, 200.0], [3200.0, 200.0], [3200.0, 4000.0], [400.0, 4000.0]]) {
            assert!(geometry::dist(*a, b) < 2.5, "{a:?} vs {b:?}");
        }
        assert!(film.image.width().max(film.image.height()) <= FILM_MAX_SIDE);
    }
}
