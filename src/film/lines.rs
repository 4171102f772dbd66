//! The film as four straight edges: a second way to find it, for photos where growing the background finds
//! nothing (a textured desk or wall, a window behind the film, a finger across an edge).
//!
//! On the small detection copy: Canny edges, Hough lines refitted to their edge pixels (Hough's one-degree
//! steps leave a long side pixels off at its ends), the near-horizontal and near-vertical ones with the
//! longest unbroken runs of edge pixels paired into quadrilaterals, and a quadrilateral kept only when edge
//! pixels lie along three of its sides right up to the corners and at least faintly along the fourth, whose
//! neighbours must then end at its corners. Nested outlines are common (lightbox or monitor, its frame, the
//! film, the film's exposed area), so the largest clean outline is taken and then, while a clean outline
//! sits inside it with a uniform band between them (a frame, a lit panel, a film's clear margin), the inner
//! one. Where no quadrilateral passes, a film with one side that is no edge at all (its bright end against a
//! bright background) is looked for as three strong sides whose two parallel ones end about equally far on.

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
/// An outline is a film worth reading only when it covers this much of the image, or `MIN_SMALL_AREA` when it
/// is shaped like a film (`geometry::film_shaped`: a film photographed from a step back; one lung of a film is
/// a narrow strip).
const MIN_AREA: f32 = 0.15;
const MIN_SMALL_AREA: f32 = 0.08;
/// Largest grey step between neighbouring samples of a uniform band.
const BAND_STEP: i32 = 12;
/// An outline inside another must cover at least this much of it to be taken instead.
const MIN_NESTED: f32 = 0.3;
/// An edge pixel belongs to a side or line when its gradient is within about 30 degrees of the normal.
const CROSSING_COS: f32 = 0.85;
/// Hough's lines come in one-degree steps, a few pixels off at the ends of a long side; each is refitted
/// to the edge pixels within these distances of it (pixels), the second pass around the first fit.
const FIT_BANDS: [f32; 2] = [2.5, 1.5];
/// ... when at least this many are there, and the fit turns the line by at most this (degrees).
const FIT_MIN_POINTS: usize = 12;
const FIT_MAX_TURN_DEG: f32 = 1.5;
/// An open outline's two side edges must run on about equally far (the shorter at least this fraction of
/// the longer), at least this fraction of the image's short side, bridging gaps of up to this many pixels.
const OPEN_MIN_RATIO: f32 = 0.8;
const OPEN_MIN_RUN: f32 = 0.3;
const OPEN_MAX_GAP: f32 = 3.0;
/// ... and none of its closed sides along the image's border (within this many pixels).
const BORDER_PX: f32 = 4.0;
/// Sides that end at a corner (theirs, or one on a faint or open side): no more than this fraction of the
/// next stretch beyond it (this fraction of the image's short side, or up to the image's border) lies on an
/// edge along the same line.
const CLEAR: f32 = 0.2;
const MAX_BEYOND: f32 = 0.25;
/// Two refitted lines this close (degrees, pixels) are the same edge: the weaker one is dropped.
const SAME_LINE_DEG: f32 = 1.0;
const SAME_LINE_PX: f32 = 2.0;

/// The film's outline in `small`'s pixels, or None.
pub fn find(small: &RgbImage) -> Option<Quad> {
    let maps = Maps::of(small);
    let (horizontal, vertical) = strongest_lines(&maps);
    let mut candidates = outlines(&maps, &horizontal, &vertical);
    if candidates.is_empty() {
        candidates = open_outlines(&maps, &horizontal, &vertical);
    }
    for (q, score) in candidates.iter().take(30) {
        super::debug(format_args!("outline {q:?} area {} score {score}", geometry::area(q)));
    }
    let quad = descend(candidates.first()?.0, &candidates, &maps.grey);
    super::debug(format_args!("straight edges: {quad:?}"));
    Some(quad)
}

/// What the search looks at: the grey copy, its Canny edges and their positions, and its gradients.
struct Maps {
    grey: GrayImage,
    edges: GrayImage,
    points: Vec<[u32; 2]>,
    gradient: Gradient,
}

impl Maps {
    fn of(small: &RgbImage) -> Self {
        let grey = GrayImage::from_fn(small.width(), small.height(), |x, y| {
            Luma([(255.0 * crate::preprocess::luma_of(small.get_pixel(x, y))).round() as u8])
        });
        let edges = canny(&grey, CANNY_LOW, CANNY_HIGH);
        let gradient = Gradient::of(&grey);
        let points = edges.enumerate_pixels().filter(|(_, _, v)| v[0] > 0).map(|(x, y, _)| [x, y]).collect();
        Maps { grey, edges, points, gradient }
    }
}

/// The line `x n[0] + y n[1] = r` (`n` a unit normal).
#[derive(Clone, Copy, Debug)]
struct Line {
    n: [f32; 2],
    r: f32,
}

impl Line {
    fn of(l: &PolarLine) -> Line {
        let (s, c) = (l.angle_in_degrees as f32).to_radians().sin_cos();
        Line { n: [c, s], r: l.r }
    }

    /// Signed distance of `p` from the line.
    fn offset(&self, p: [f32; 2]) -> f32 {
        p[0] * self.n[0] + p[1] * self.n[1] - self.r
    }

    /// The same line with its normal turned towards `n`'s side.
    fn facing(self, n: [f32; 2]) -> Line {
        if self.n[0] * n[0] + self.n[1] * n[1] < 0.0 { Line { n: [-self.n[0], -self.n[1]], r: -self.r } } else { self }
    }

    fn same_as(&self, other: &Line) -> bool {
        let o = other.facing(self.n);
        let cos = self.n[0] * o.n[0] + self.n[1] * o.n[1];
        cos >= SAME_LINE_DEG.to_radians().cos() && (self.r - o.r).abs() <= SAME_LINE_PX
    }

    /// The line refitted (total least squares) to the edge pixels near it whose gradient runs across it;
    /// unchanged where too few are near or the fit would turn it much.
    fn refined(self, maps: &Maps) -> Line {
        let mut fit = self;
        for band in FIT_BANDS {
            let near: Vec<[f32; 2]> = maps
                .points
                .iter()
                .filter(|&&[x, y]| {
                    fit.offset([x as f32, y as f32]).abs() <= band && maps.gradient.along(x, y, fit.n) > CROSSING_COS
                })
                .map(|&[x, y]| [x as f32, y as f32])
                .collect();
            if near.len() < FIT_MIN_POINTS {
                return fit;
            }
            let k = near.len() as f32;
            let (mx, my) = (near.iter().map(|p| p[0]).sum::<f32>() / k, near.iter().map(|p| p[1]).sum::<f32>() / k);
            let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
            for p in &near {
                let (dx, dy) = (p[0] - mx, p[1] - my);
                sxx += dx * dx;
                sxy += dx * dy;
                syy += dy * dy;
            }
            // the points' main direction; the normal is square to it
            let (s, c) = (0.5 * (2.0 * sxy).atan2(sxx - syy)).sin_cos();
            let n = [-s, c];
            let next = Line { n, r: mx * n[0] + my * n[1] }.facing(self.n);
            if next.n[0] * self.n[0] + next.n[1] * self.n[1] < FIT_MAX_TURN_DEG.to_radians().cos() {
                return fit;
            }
            fit = next;
        }
        fit
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

/// The near-horizontal and the near-vertical lines with the longest runs of edge pixels, refitted.
fn strongest_lines(maps: &Maps) -> (Vec<Line>, Vec<Line>) {
    let edges = &maps.edges;
    let (w, h) = edges.dimensions();
    let votes = (0.12 * w.min(h) as f32) as u32;
    let lines = detect_lines(edges, LineDetectionOptions { vote_threshold: votes.max(8), suppression_radius: 4 });
    let strongest = |keep: &dyn Fn(u32) -> bool| {
        let mut v: Vec<(Line, usize)> = lines
            .iter()
            .filter(|l| keep(l.angle_in_degrees))
            .map(|l| {
                let line = Line::of(l).refined(maps);
                (line, on_line(edges, &line))
            })
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1));
        let mut kept: Vec<Line> = Vec::new();
        for (l, _) in v {
            if kept.len() < LINES_PER_DIRECTION && !kept.iter().any(|k| k.same_as(&l)) {
                kept.push(l);
            }
        }
        kept
    };
    // the angle is that of the line's normal: about 90 for a horizontal line, 0 or 180 for a vertical one
    let horizontal = strongest(&|a| a.abs_diff(90) <= MAX_SLANT_DEG);
    let vertical = strongest(&|a| a <= MAX_SLANT_DEG || a >= 180 - MAX_SLANT_DEG);
    super::debug(format_args!("{} lines; horizontal {horizontal:?}; vertical {vertical:?}", lines.len()));
    (horizontal, vertical)
}

/// Every quadrilateral made of two near-horizontal and two near-vertical strong lines whose four sides
/// lie on edges, with its score, largest first.
fn outlines(maps: &Maps, horizontal: &[Line], vertical: &[Line]) -> Vec<(Quad, f32)> {
    let (edges, gradient) = (&maps.edges, &maps.gradient);
    let (w, h) = edges.dimensions();
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
                    if !corners.iter().all(|p| within(p, w, h)) {
                        continue;
                    }
                    let q = geometry::order_corners([corners[0], corners[1], corners[2], corners[3]]);
                    if !geometry::is_convex(&q, 45.0) || !big_enough(&q, image_area) {
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

/// Outlines of a film with one side that is no edge (its bright end against a bright background, or out of
/// the picture): a strong side and, running from its ends the same way, two strong edges that end about
/// equally far on; the open side joins their ends. Largest first, scored by the closed sides' mean.
fn open_outlines(maps: &Maps, horizontal: &[Line], vertical: &[Line]) -> Vec<(Quad, f32)> {
    let (w, h) = maps.edges.dimensions();
    let image_area = (w * h) as f32;
    let mut found = Vec::new();
    for (across, along) in [(horizontal, vertical), (vertical, horizontal)] {
        for closed in across {
            if on_border(closed, w, h) {
                continue;
            }
            // per line of the other direction: where it meets the closed side, and where its edge ends each
            // way off it (walked once, used for every pair)
            let ends: Vec<Option<([f32; 2], [Option<[f32; 2]>; 2])>> = along
                .iter()
                .map(|a| {
                    let c = intersection(closed, a).filter(|c| within(c, w, h) && !on_border(a, w, h))?;
                    Some((c, [edge_end(maps, a, c, closed, 1.0), edge_end(maps, a, c, closed, -1.0)]))
                })
                .collect();
            for (j, a_end) in ends.iter().enumerate() {
                for b_end in &ends[j + 1..] {
                    let (Some((ca, a_ends)), Some((cb, b_ends))) = (a_end, b_end) else { continue };
                    let (ca, cb) = (*ca, *cb);
                    // each way off the closed side: along a and b, away from it
                    for way in 0..2 {
                        let (Some(ea), Some(eb)) = (a_ends[way], b_ends[way]) else { continue };
                        let (la, lb) = (geometry::dist(ca, ea), geometry::dist(cb, eb));
                        if la.min(lb) < OPEN_MIN_RATIO * la.max(lb) {
                            continue;
                        }
                        let q = geometry::order_corners([ca, cb, eb, ea]);
                        if !geometry::is_convex(&q, 45.0) || !big_enough(&q, image_area) {
                            continue;
                        }
                        // in the cycle ca, cb, eb, ea the open side is the third (eb to ea); the side test is
                        // the same either way round a side
                        let [s0, s1, _, s3] = side_fractions(&[ca, cb, eb, ea], &maps.edges, &maps.gradient);
                        let mean = (s0.0 + s1.0 + s3.0) / 3.0;
                        if s0.1 && s1.1 && s3.1 && mean >= MIN_MEAN {
                            found.push((q, mean));
                        }
                    }
                }
            }
        }
    }
    found.sort_by(|a, b| geometry::area(&b.0).total_cmp(&geometry::area(&a.0)));
    found
}

/// Covers `MIN_AREA` of the image, or `MIN_SMALL_AREA` when shaped like a film.
fn big_enough(q: &Quad, image_area: f32) -> bool {
    let a = geometry::area(q);
    a >= MIN_AREA * image_area || (a >= MIN_SMALL_AREA * image_area && geometry::film_shaped(q))
}

/// A line along the image's border (within `BORDER_PX` where it crosses the image): the edge of a scan or a
/// rotated radiograph's black corner, not a film's side that the open-side search can rest on.
fn on_border(l: &Line, w: u32, h: u32) -> bool {
    let (w, h) = (w as f32, h as f32);
    let near = |v: f32, edge: f32| (v - edge).abs() <= BORDER_PX;
    if l.n[0].abs() > l.n[1].abs() {
        // near-vertical: x where it crosses the top and the bottom row
        let x = |y: f32| (l.r - l.n[1] * y) / l.n[0];
        (near(x(0.0), 0.0) && near(x(h), 0.0)) || (near(x(0.0), w) && near(x(h), w))
    } else {
        let y = |x: f32| (l.r - l.n[0] * x) / l.n[1];
        (near(y(0.0), 0.0) && near(y(w), 0.0)) || (near(y(0.0), h) && near(y(w), h))
    }
}

/// A corner at most a couple of pixels outside the image.
fn within(p: &[f32; 2], w: u32, h: u32) -> bool {
    (-2.0..w as f32 + 2.0).contains(&p[0]) && (-2.0..h as f32 + 2.0).contains(&p[1])
}

/// Walking along `line` from `start` (on `closed`), to the side of `closed` that `away` says: where the edge
/// under it ends (gaps of up to `OPEN_MAX_GAP` pixels bridged), or None when it ends within a few pixels.
fn edge_end(maps: &Maps, line: &Line, start: [f32; 2], closed: &Line, away: f32) -> Option<[f32; 2]> {
    let (w, h) = maps.edges.dimensions();
    let mut d = [-line.n[1], line.n[0]];
    if (d[0] * closed.n[0] + d[1] * closed.n[1]) * away < 0.0 {
        d = [-d[0], -d[1]];
    }
    let (mut last, mut t) = (0.0f32, 0.0f32);
    while t - last <= OPEN_MAX_GAP {
        let p = [start[0] + d[0] * t, start[1] + d[1] * t];
        if p[0] < 0.0 || p[1] < 0.0 || p[0] >= w as f32 || p[1] >= h as f32 {
            break;
        }
        if crossing_edge(&maps.edges, &maps.gradient, p, line.n) {
            last = t;
        }
        t += 0.5;
    }
    if last < OPEN_MIN_RUN * w.min(h) as f32 {
        return None;
    }
    let end = [start[0] + d[0] * last, start[1] + d[1] * last];
    ends_at(&maps.edges, &maps.gradient, [end[0] - d[0] * OPEN_MAX_GAP, end[1] - d[1] * OPEN_MAX_GAP], end)
        .then_some(end)
}

/// A side running from `from` to `corner` ends there: its edge does not pick up again beyond the corner (no
/// more than `MAX_BEYOND` of the next stretch, `CLEAR` of the image's short side or up to the border, lies
/// on an edge along the same line). An edge that does was only broken (by a change in the background, an
/// occluder, a structure of the film) and that corner is none.
fn ends_at(edges: &GrayImage, gradient: &Gradient, from: [f32; 2], corner: [f32; 2]) -> bool {
    let (w, h) = edges.dimensions();
    let len = geometry::dist(from, corner).max(1e-3);
    let d = [(corner[0] - from[0]) / len, (corner[1] - from[1]) / len];
    let n = [-d[1], d[0]];
    let (mut seen, mut hits) = (0, 0);
    let mut t = OPEN_MAX_GAP;
    while t < OPEN_MAX_GAP + CLEAR * w.min(h) as f32 {
        let p = [corner[0] + d[0] * t, corner[1] + d[1] * t];
        if p[0] < 0.0 || p[1] < 0.0 || p[0] >= w as f32 || p[1] >= h as f32 {
            break;
        }
        seen += 1;
        hits += crossing_edge(edges, gradient, p, n) as usize;
        t += 0.5;
    }
    hits as f32 <= MAX_BEYOND * seen as f32
}

/// An edge pixel within a pixel of `p` across a side with normal `n`, whose gradient runs across the side.
fn crossing_edge(edges: &GrayImage, gradient: &Gradient, p: [f32; 2], n: [f32; 2]) -> bool {
    let (w, h) = edges.dimensions();
    (-1..=1).any(|d| {
        let (px, py) = ((p[0] + d as f32 * n[0]).round(), (p[1] + d as f32 * n[1]).round());
        if px < 0.0 || py < 0.0 || px >= w as f32 || py >= h as f32 {
            return false;
        }
        let (px, py) = (px as u32, py as u32);
        edges.get_pixel(px, py)[0] > 0 && gradient.along(px, py, n) > CROSSING_COS
    })
}

/// The longest stretch of the line (in half-pixel steps, gaps of up to two pixels bridged) with an edge
/// pixel on or next to it: a film's edge is one long stretch, a texture's alignments are broken up.
fn on_line(edges: &GrayImage, l: &Line) -> usize {
    let (w, h) = edges.dimensions();
    let [c, s] = l.n;
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

/// Where two lines cross, or None when they are (nearly) parallel.
fn intersection(a: &Line, b: &Line) -> Option<[f32; 2]> {
    let ([ca, sa], [cb, sb]) = (a.n, b.n);
    let det = ca * sb - sa * cb;
    if det.abs() < 0.2 {
        return None;
    }
    Some([(a.r * sb - b.r * sa) / det, (ca * b.r - cb * a.r) / det])
}

/// How well the quad's sides lie on edges: per side, the fraction of points with an edge pixel within a
/// pixel across the side whose gradient runs across it (within about 30 degrees). At least three sides
/// must be strong (`MIN_SIDE` overall and `MIN_END` at both ends, with a mean of `MIN_MEAN`); the fourth
/// may be faint (a film's bright top against a bright window) but not absent (`MIN_FAINT`), and the sides
/// next to a faint one must end at its corners (`ends_at`). Returns the mean over all four, or None.
fn side_score(q: &Quad, edges: &GrayImage, gradient: &Gradient) -> Option<f32> {
    let mut sides = side_fractions(q, edges, gradient);
    // a faint side's neighbours must end at its corners, or the outline may be part of a film cut across
    let k = (0..4).min_by(|&a, &b| sides[a].0.total_cmp(&sides[b].0)).expect("four sides");
    let (a, b) = (q[k], q[(k + 1) % 4]);
    if !sides[k].1 && !(ends_at(edges, gradient, q[(k + 3) % 4], a) && ends_at(edges, gradient, q[(k + 2) % 4], b)) {
        return None;
    }
    sides.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.total_cmp(&a.0)));
    let strong = sides.iter().filter(|s| s.1).count();
    let best3 = sides[..3].iter().map(|s| s.0).sum::<f32>() / 3.0;
    (strong >= 3 && best3 >= MIN_MEAN && sides[3].0 >= MIN_FAINT).then(|| sides.iter().map(|s| s.0).sum::<f32>() / 4.0)
}

/// Per side of `q` (side i runs from corner i to i + 1): the fraction of its points with a crossing edge
/// pixel, and whether it is strong (`MIN_SIDE` overall and `MIN_END` in each fifth at its ends).
fn side_fractions(q: &Quad, edges: &GrayImage, gradient: &Gradient) -> [(f32, bool); 4] {
    std::array::from_fn(|i| {
        let (a, b) = (q[i], q[(i + 1) % 4]);
        let len = geometry::dist(a, b).max(1e-3);
        let n = [-(b[1] - a[1]) / len, (b[0] - a[0]) / len];
        let samples = 40;
        let hit: Vec<bool> = (2..samples - 1)
            .map(|k| {
                let t = k as f32 / samples as f32;
                crossing_edge(edges, gradient, [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t], n)
            })
            .collect();
        let frac = |s: &[bool]| s.iter().filter(|h| **h).count() as f32 / s.len() as f32;
        let f = frac(&hit);
        // a real outline's edges run into its corners; lines of two different outlines crossing do not
        let end = hit.len() / 5;
        (f, f >= MIN_SIDE && frac(&hit[..end]) >= MIN_END && frac(&hit[hit.len() - end..]) >= MIN_END)
    })
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

    /// A point of FILM at film coordinates (u, v) in [0, 1] (bilinear between its corners).
    fn on_film(u: f32, v: f32) -> [f32; 2] {
        let [a, b, c, d] = FILM;
        std::array::from_fn(|k| (a[k] * (1.0 - u) + b[k] * u) * (1.0 - v) + (d[k] * (1.0 - u) + c[k] * u) * v)
    }

    #[test]
    fn a_film_whose_bright_end_meets_a_bright_background_is_found_by_its_other_three_edges() {
        // a dark film on a bright texture, its bottom (the abdomen below the domed diaphragm) as bright as
        // the background there across all but the film's dark outer strips: the bottom is no edge
        let background = |x: u32, y: u32| 130 + gravel(x, y);
        let below = [on_film(0.08, 0.6), on_film(0.92, 0.6), on_film(0.92, 1.1), on_film(0.08, 1.1)];
        let [l, r] = [on_film(0.0, 0.85), on_film(1.0, 0.85)];
        let dome = |x: f32| l[1] + (x - l[0]) * (r[1] - l[1]) / (r[0] - l[0]) - 30.0 + 0.006 * (x - 115.0).powi(2);
        let inside = |q: &Quad, x: f32, y: f32| contains(q, &[[x, y]; 4]);
        let img = RgbImage::from_fn(240, 320, |x, y| {
            let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
            let abdomen = inside(&below, fx, fy) && fy > dome(fx);
            let v = if inside(&FILM, fx, fy) && !abdomen {
                (70.0 + 30.0 * (fx / 23.0).sin() * (fy / 31.0).cos() + ((x * 7 + y * 13) % 9) as f32) as u8
            } else {
                background(x, y)
            };
            Rgb([v, v, v])
        });
        let m = Maps::of(&img);
        assert!(side_score(&FILM, &m.edges, &m.gradient).is_none(), "the bottom must not pass as a faint side");
        assert_near(find(&img), FILM, "film with a bright end on a bright background");
    }

    #[test]
    fn outlines_must_run_along_real_edges_into_their_corners() {
        let m = Maps::of(&scene(240, 320, gravel, &[], FILM));
        let (horizontal, vertical) = strongest_lines(&m);
        assert!(!outlines(&m, &horizontal, &vertical).is_empty());
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
