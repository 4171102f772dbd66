//! Quadrilaterals and the projective map between a flattened film and the input photo.

use imageproc::geometric_transformations::Projection;

use crate::error::{Error, Result};

/// Four corners, in order top-left, top-right, bottom-right, bottom-left of the radiograph as read.
pub type Quad = [[f32; 2]; 4];

pub fn rect_quad(w: f32, h: f32) -> Quad {
    [[0.0, 0.0], [w, 0.0], [w, h], [0.0, h]]
}

/// Shoelace area (positive for either winding).
pub fn area(q: &Quad) -> f32 {
    let mut s = 0.0;
    for i in 0..4 {
        let [x0, y0] = q[i];
        let [x1, y1] = q[(i + 1) % 4];
        s += x0 * y1 - x1 * y0;
    }
    (s / 2.0).abs()
}

pub fn dist(a: [f32; 2], b: [f32; 2]) -> f32 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

/// Angle a-b-c at b, in degrees (180 for a straight line).
pub fn angle_deg(a: [f32; 2], b: [f32; 2], c: [f32; 2]) -> f32 {
    let (ux, uy) = (a[0] - b[0], a[1] - b[1]);
    let (vx, vy) = (c[0] - b[0], c[1] - b[1]);
    let cos = (ux * vx + uy * vy) / ((ux * ux + uy * uy).sqrt() * (vx * vx + vy * vy).sqrt()).max(1e-12);
    cos.clamp(-1.0, 1.0).acos().to_degrees()
}

/// True when the polygon is strictly convex (all turns the same way) and every angle is in [min_deg, 180-min_deg].
pub fn is_convex(q: &Quad, min_deg: f32) -> bool {
    let mut sign = 0.0f32;
    for i in 0..4 {
        let a = q[(i + 3) % 4];
        let b = q[i];
        let c = q[(i + 1) % 4];
        let (ux, uy) = (a[0] - b[0], a[1] - b[1]);
        let (vx, vy) = (c[0] - b[0], c[1] - b[1]);
        let cross = ux * vy - uy * vx;
        if cross == 0.0 || (sign != 0.0 && cross.signum() != sign) {
            return false;
        }
        sign = cross.signum();
        let deg = angle_deg(a, b, c);
        if deg < min_deg || deg > 180.0 - min_deg {
            return false;
        }
    }
    true
}

/// Least ratio of a film's mean short side to its mean long side: radiograph sheets and their exposed areas
/// run from square to about 1:1.5 (more under a steep tilt); one lung is a strip of about 1:2.5.
pub const FILM_MIN_ASPECT: f32 = 0.55;

/// Mean lengths of the quad's top and bottom sides, and of its left and right sides (TL, TR, BR, BL order):
/// the width and height of the rectangle it flattens to.
pub fn mean_sides(q: &Quad) -> (f32, f32) {
    ((dist(q[0], q[1]) + dist(q[3], q[2])) / 2.0, (dist(q[0], q[3]) + dist(q[1], q[2])) / 2.0)
}

/// The quad's opposite sides' mean lengths are in a film's proportions (see `FILM_MIN_ASPECT`).
pub fn film_shaped(q: &Quad) -> bool {
    let (across, down) = mean_sides(q);
    across.min(down) >= FILM_MIN_ASPECT * across.max(down)
}

/// Put four arbitrary points in TL, TR, BR, BL order (clockwise on screen, starting nearest the top-left).
pub fn order_corners(points: [[f32; 2]; 4]) -> Quad {
    let cx = points.iter().map(|p| p[0]).sum::<f32>() / 4.0;
    let cy = points.iter().map(|p| p[1]).sum::<f32>() / 4.0;
    let mut p = points;
    p.sort_by(|a, b| {
        let aa = (a[1] - cy).atan2(a[0] - cx);
        let bb = (b[1] - cy).atan2(b[0] - cx);
        aa.total_cmp(&bb)
    });
    // atan2 with y down sorts clockwise on screen starting from the left; rotate so TL (min x+y) is first
    let start = (0..4).min_by(|&i, &j| (p[i][0] + p[i][1]).total_cmp(&(p[j][0] + p[j][1]))).unwrap_or(0);
    [p[start], p[(start + 1) % 4], p[(start + 2) % 4], p[(start + 3) % 4]]
}

/// Check user-supplied corners against the image they refer to; returns them ordered TL, TR, BR, BL.
pub fn validate_corners(points: [[f32; 2]; 4], width: u32, height: u32) -> Result<Quad> {
    let (w, h) = (width as f32, height as f32);
    let tol = 0.02 * w.max(h);
    for p in &points {
        if !p[0].is_finite() || !p[1].is_finite() {
            return Err(Error::InvalidCorners("corners must be finite numbers".into()));
        }
        if p[0] < -tol || p[1] < -tol || p[0] > w + tol || p[1] > h + tol {
            return Err(Error::InvalidCorners(format!(
                "corner ({}, {}) lies outside the {width}x{height} image",
                p[0], p[1]
            )));
        }
    }
    let q = order_corners(points);
    if !is_convex(&q, 20.0) {
        return Err(Error::InvalidCorners("corners must form a convex quadrilateral".into()));
    }
    if area(&q) < 0.01 * w * h {
        return Err(Error::InvalidCorners("the quadrilateral covers less than 1% of the image".into()));
    }
    Ok(q)
}

/// Projection taking the rectangle [0,w]x[0,h] of the flattened film onto `quad` in the input image.
pub fn film_to_input(quad: &Quad, w: f32, h: f32) -> Option<Projection> {
    let r = rect_quad(w, h);
    let t = |q: &Quad| [(q[0][0], q[0][1]), (q[1][0], q[1][1]), (q[2][0], q[2][1]), (q[3][0], q[3][1])];
    Projection::from_control_points(t(&r), t(quad))
}

/// Apply a projection to a point.
pub fn map(p: &Projection, x: f32, y: f32) -> [f32; 2] {
    let (u, v) = *p * (x, y);
    [u, v]
}

/// The size of a `w` x `h` image scaled so its long side is at most `max_side` (never enlarged; each side
/// at least 1 pixel).
pub fn fit_within(w: u32, h: u32, max_side: u32) -> (u32, u32) {
    let s = (max_side as f32 / w.max(h) as f32).min(1.0);
    if s >= 1.0 {
        return (w, h);
    }
    (((w as f32 * s).round() as u32).max(1), ((h as f32 * s).round() as u32).max(1))
}
