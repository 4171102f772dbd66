//! Quality gate: decide whether an image may be read, and what the person holding the phone should know.
//! Every check yields either nothing, a warning, or a refusal with a reason and what to do.

use image::RgbImage;

use crate::manifest::OodSpec;
use crate::preprocess::{GreyF32, percentile_selected};
use crate::report::{QualityItem, Severity};

fn item(code: &str, severity: Severity, message: impl Into<String>) -> QualityItem {
    QualityItem { code: code.into(), severity, message: message.into() }
}

/// Out-of-distribution score: Mahalanobis distance in the training embeddings' principal subspace plus
/// the scaled residual outside it, per dimension. About 1 for training-like X-rays.
pub fn ood_score(embedding: &[f32], spec: &OodSpec) -> f32 {
    if embedding.len() != spec.mean.len() {
        return f32::INFINITY;
    }
    let centred: Vec<f32> = embedding.iter().zip(&spec.mean).map(|(e, m)| e - m).collect();
    let total: f32 = centred.iter().map(|c| c * c).sum();
    let mut explained = 0.0;
    let mut maha = 0.0;
    for (comp, var) in spec.components.iter().zip(&spec.variances) {
        let z: f32 = comp.iter().zip(&centred).map(|(a, b)| a * b).sum();
        explained += z * z;
        maha += z * z / var;
    }
    let residual = (total - explained).max(0.0) / spec.residual_scale;
    (maha + residual) / (spec.components.len() as f32 + 1.0)
}

pub fn check_ood(score: f32, orientation_confidence: f32, turns_agree: bool, spec: &OodSpec) -> Option<QualityItem> {
    let reason = if score > spec.threshold {
        format!(
            "its features are far from those of chest films (out-of-distribution score {score:.2} > {:.2})",
            spec.threshold
        )
    } else if orientation_confidence < spec.min_orientation_confidence && !turns_agree {
        format!(
            "the model cannot tell which way up it is (orientation confidence {orientation_confidence:.2} < {:.2})",
            spec.min_orientation_confidence
        )
    } else {
        return None;
    };
    Some(item(
        "not_chest_xray",
        Severity::Refuse,
        format!(
            "This does not look like a frontal chest X-ray: {reason}. Photograph only the chest film, filling the frame."
        ),
    ))
}

/// The warning for a film whose orientation confidence was under the manifest's minimum but whose turned
/// reads each named their turn (the reader's turn check), so it was not refused for it.
pub fn turn_checked(orientation_confidence: f32) -> QualityItem {
    item(
        "turn_checked",
        Severity::Warn,
        format!(
            "The model was unsure which way up this film is (orientation confidence {orientation_confidence:.2}); \
             read turned by 90°, 180° and 270° it named each turn, so it was read as a chest film. Check that it \
             is a frontal chest X-ray."
        ),
    )
}

/// Spread of per-pixel chromaticity over the film. A film seen through a tinted lightbox or camera
/// white balance has one colour cast (low spread); a selfie or a scene has many colours.
pub fn colourfulness(img: &RgbImage) -> f32 {
    let (mut n, mut s1, mut s2, mut t1, mut t2) = (0f64, 0f64, 0f64, 0f64, 0f64);
    for p in img.pixels().step_by(3) {
        let (r, g, b) = (p[0] as f64, p[1] as f64, p[2] as f64);
        let sum = r + g + b;
        if sum < 60.0 {
            continue; // chromaticity of near-black pixels is noise
        }
        let (cr, cb) = (r / sum - 1.0 / 3.0, b / sum - 1.0 / 3.0);
        n += 1.0;
        s1 += cr;
        s2 += cr * cr;
        t1 += cb;
        t2 += cb * cb;
    }
    if n < 16.0 {
        return 0.0;
    }
    let var = (s2 / n - (s1 / n).powi(2)).max(0.0) + (t2 / n - (t1 / n).powi(2)).max(0.0);
    var.sqrt() as f32
}

/// Natural colour photographs measured 0.04-0.38 (a portrait 0.18); simulated photos of films up to ~0.07.
/// The OOD check catches the rest; this one only has to catch the clearly colourful.
pub const COLOUR_REFUSE: f32 = 0.10;

pub fn check_colour(colourfulness: f32) -> Option<QualityItem> {
    (colourfulness > COLOUR_REFUSE).then(|| {
        item(
            "colour_photo",
            Severity::Refuse,
            format!(
                "The image has many colours (colour spread {colourfulness:.3}); an X-ray film is grey. \
                 Photograph only the film on a plain light, or load the original X-ray image."
            ),
        )
    })
}

/// The side (long side, pixels) at which `page_likeness` looks at an image.
const PAGE_SIDE: u32 = 512;
/// `page_likeness`'s erosion radius at `PAGE_SIDE` (a 7 × 7 square): wider than a stroke of text or a ruled line.
const PAGE_ERODE: u8 = 3;
/// A background is plain when the median lies within this share of the 1st-99th percentile range from one end
/// (chosen on the films and photos measured in models/MODEL_CARD.md, where no film with a median that close to
/// an end had thin marks).
pub const PAGE_BACKGROUND: f32 = 0.08;
/// ... and the marks on it are thin when a `PAGE_ERODE` erosion keeps less than this share of them.
pub const PAGE_THIN_MARKS: f32 = 0.3;

/// How much an image looks like a page or a screen rather than a film: `Some(share)` when more than half of it
/// sits near its brightest (or darkest) level, a plain background as of paper or a screenshot, with `share` the
/// part of the marks on it (the pixels across the mid grey from the background) that a 7 × 7 erosion at 512 px
/// keeps; `None` when the background is not plain. Strokes of text and ruled lines vanish (share near 0); a chest
/// film's lungs and bones are broad areas, even in a photo whose glare clips half of the film (`PAGE_THIN_MARKS`).
pub fn page_likeness(grey: &GreyF32) -> Option<f32> {
    let (w, h) = grey.dimensions();
    if w < 8 || h < 8 {
        return None;
    }
    let (sw, sh) = crate::geometry::fit_within(w, h, PAGE_SIDE);
    let resized;
    let small = if (sw, sh) == (w, h) {
        grey
    } else {
        resized = crate::preprocess::area_resize(grey, sw, sh);
        &resized
    };
    let mut v = small.as_raw().clone();
    let (p1, p50, p99) =
        (percentile_selected(&mut v, 1.0), percentile_selected(&mut v, 50.0), percentile_selected(&mut v, 99.0));
    let range = p99 - p1;
    if range < 12.0 / 255.0 {
        return None; // flat: low_contrast's refusal
    }
    let mid = (p1 + p99) / 2.0;
    // a light background with dark marks (paper, a light screen) or a dark one with light marks (a dark screen)
    let dark_marks = if (p99 - p50) / range < PAGE_BACKGROUND {
        true
    } else if (p50 - p1) / range < PAGE_BACKGROUND {
        false
    } else {
        return None;
    };
    let marks = image::GrayImage::from_fn(sw, sh, |x, y| {
        let g = small.get_pixel(x, y)[0];
        image::Luma([if (g < mid) == dark_marks { 255 } else { 0 }])
    });
    let n = marks.as_raw().iter().filter(|&&m| m > 0).count();
    if n == 0 {
        return None;
    }
    let kept = imageproc::morphology::erode(&marks, imageproc::distance_transform::Norm::LInf, PAGE_ERODE);
    Some(kept.as_raw().iter().filter(|&&m| m > 0).count() as f32 / n as f32)
}

pub fn check_page(grey: &GreyF32) -> Option<QualityItem> {
    let share = page_likeness(grey)?;
    (share < PAGE_THIN_MARKS).then(|| {
        item(
            "page_or_screen",
            Severity::Refuse,
            format!(
                "This looks like a page or a screenshot, not an X-ray film: a plain background with thin marks on \
                 it ({:.0} % of the marks are broader than a stroke). Photograph the chest film itself, or load \
                 the original X-ray image.",
                share * 100.0
            ),
        )
    })
}

/// Exposure, contrast, resolution and sharpness of the flattened film.
pub fn check_film(
    grey: &GreyF32,
    film_min_side_in_input: f32,
    model_input: &[f32],
    input_side: usize,
) -> Vec<QualityItem> {
    let mut out = Vec::new();
    let mut v: Vec<f32> = grey.as_raw().iter().step_by(2).map(|g| g * 255.0).collect();
    let (p1, p50, p99) =
        (percentile_selected(&mut v, 1.0), percentile_selected(&mut v, 50.0), percentile_selected(&mut v, 99.0));
    if p99 - p1 < 12.0 {
        out.push(item(
            "low_contrast",
            Severity::Refuse,
            format!(
                "The image is almost flat (grey range {:.0} of 255): nothing to read. Retake the photo \
                     with the film lit from behind.",
                p99 - p1
            ),
        ));
    } else if p99 - p1 < 40.0 {
        out.push(item(
            "low_contrast",
            Severity::Warn,
            format!("Low contrast (grey range {:.0} of 255). Turn the lightbox on, avoid glare, and retake.", p99 - p1),
        ));
    }
    if p50 < 25.0 {
        out.push(item(
            "too_dark",
            Severity::Warn,
            "The film is very dark. Light it from behind (lightbox or \
            bright window) and retake.",
        ));
    } else if p50 > 235.0 {
        out.push(item(
            "too_bright",
            Severity::Warn,
            "The film is very bright or washed out. Reduce the light \
            or exposure and avoid glare.",
        ));
    }
    if film_min_side_in_input < 224.0 {
        out.push(item(
            "low_resolution",
            Severity::Warn,
            format!(
                "The film is only {film_min_side_in_input:.0} pixels across; fine detail is lost. Move closer \
                     so the film fills the frame."
            ),
        ));
    }
    let sharp = sharpness(model_input, input_side);
    if sharp < BLUR_WARN {
        out.push(item(
            "blurred",
            Severity::Warn,
            format!("The image looks blurred (sharpness {sharp:.3}). Hold the phone still, tap to focus, retake."),
        ));
    }
    out
}

/// Mean absolute Laplacian of the normalised model input.
pub fn sharpness(x: &[f32], side: usize) -> f32 {
    if side < 3 || x.len() < side * side {
        return 0.0;
    }
    let mut s = 0.0;
    for y in 1..side - 1 {
        for xx in 1..side - 1 {
            let c = x[y * side + xx];
            let l =
                x[(y - 1) * side + xx] + x[(y + 1) * side + xx] + x[y * side + xx - 1] + x[y * side + xx + 1] - 4.0 * c;
            s += l.abs();
        }
    }
    s / ((side - 2) * (side - 2)) as f32
}

pub const BLUR_WARN: f32 = 0.012;

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn grey_and_tinted_films_are_not_colourful_but_a_rainbow_is() {
        let grey = RgbImage::from_fn(64, 64, |x, y| {
            let v = (x * 3 + y) as u8;
            Rgb([v, v, v])
        });
        let tinted = RgbImage::from_fn(64, 64, |x, y| {
            let v = (x * 3 + y + 40) as f32;
            Rgb([(v * 0.9) as u8, (v * 0.95) as u8, v as u8])
        });
        let rainbow = RgbImage::from_fn(64, 64, |x, y| Rgb([(x * 4) as u8, (y * 4) as u8, 255 - (x * 4) as u8]));
        assert!(colourfulness(&grey) < 0.005);
        assert!(colourfulness(&tinted) < COLOUR_REFUSE / 2.0);
        assert!(colourfulness(&rainbow) > COLOUR_REFUSE);
    }

    /// A page of "text": rows of short dark dashes, 2 px thick, on light paper with a faint shading.
    fn page(w: u32, h: u32) -> GreyF32 {
        GreyF32::from_fn(w, h, |x, y| {
            let paper = 0.93 + 0.03 * x as f32 / w as f32;
            let in_line = y % 24 < 2 && y > 20 && y < h - 20;
            let in_word = (x / 7) % 9 != 0 && x > 30 && x < w - 30; // words with gaps between them
            image::Luma([if in_line && in_word { 0.15 } else { paper }])
        })
    }

    /// A film-like image: a bright field (three quarters clipped to white, as glare or metering for the surround
    /// does to a photographed film) with two broad dark lungs and a smooth rib-like ripple across them.
    fn clipped_film(w: u32, h: u32) -> GreyF32 {
        GreyF32::from_fn(w, h, |x, y| {
            let (u, v) = (x as f32 / w as f32, y as f32 / h as f32);
            let lung = |cx: f32| ((u - cx) / 0.16).powi(2) + ((v - 0.5) / 0.3).powi(2) < 1.0;
            let g = if lung(0.3) || lung(0.7) { 0.25 + 0.05 * (v * 40.0).sin() } else { 1.0 };
            image::Luma([g])
        })
    }

    #[test]
    fn pages_and_screens_are_refused_but_a_half_clipped_film_is_not() {
        let text = page(600, 800);
        let share = page_likeness(&text).expect("a plain light background");
        assert!(share < PAGE_THIN_MARKS, "strokes of text are thin: {share}");
        assert_eq!(check_page(&text).map(|q| (q.code, q.severity)), Some(("page_or_screen".into(), Severity::Refuse)));
        // a dark-mode screen: light text on a dark background
        let dark = GreyF32::from_fn(600, 800, |x, y| image::Luma([1.0 - text.get_pixel(x, y)[0]]));
        assert!(check_page(&dark).is_some(), "{:?}", page_likeness(&dark));
        // the same page on a 4000 px scan: it is looked at at 512 px, so the strokes are as thin there
        let big = crate::preprocess::area_resize(&page(1500, 2000), 3000, 4000);
        assert!(check_page(&big).is_some(), "{:?}", page_likeness(&big));

        let film = clipped_film(600, 800);
        let share = page_likeness(&film).expect("more than half of it is at the brightest level");
        assert!(share > 0.8, "lungs are broad: {share}");
        assert!(check_page(&film).is_none());
        // a blank page: nothing to read, refused as low contrast elsewhere, not here
        assert!(page_likeness(&GreyF32::from_pixel(100, 100, image::Luma([0.9]))).is_none());
        assert!(page_likeness(&GreyF32::from_pixel(4, 4, image::Luma([0.9]))).is_none());
    }

    #[test]
    fn ood_score_is_one_per_dimension_scale() {
        let spec = OodSpec {
            mean: vec![0.0, 0.0, 0.0],
            components: vec![vec![1.0, 0.0, 0.0]],
            variances: vec![4.0],
            residual_scale: 2.0,
            threshold: 3.0,
            min_orientation_confidence: 0.9,
            second_look_threshold: None,
            turn_check_min_confidence: None,
        };
        assert_eq!(ood_score(&[0.0, 0.0, 0.0], &spec), 0.0);
        // z = 2 along the component (2^2/4 = 1), residual 1+1 = 2 (2/2 = 1): (1 + 1) / 2 = 1
        assert!((ood_score(&[2.0, 1.0, 1.0], &spec) - 1.0).abs() < 1e-6);
        assert!(check_ood(ood_score(&[20.0, 0.0, 0.0], &spec), 0.99, false, &spec).is_some());
        assert!(check_ood(1.0, 0.99, false, &spec).is_none());
        assert!(check_ood(1.0, 0.5, false, &spec).is_some(), "no clear up: not a chest film");
        assert!(check_ood(1.0, 0.5, true, &spec).is_none(), "turned reads agree: it has an up");
        assert!(check_ood(ood_score(&[20.0, 0.0, 0.0], &spec), 0.99, true, &spec).is_some(), "still far");
        assert!(ood_score(&[1.0], &spec).is_infinite());
    }
}
