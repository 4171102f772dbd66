//! Quality gate: decide whether an image may be read, and what the person holding the phone should know.
//! Every check yields either nothing, a warning, or a refusal with a reason and what to do.

use image::RgbImage;

use crate::manifest::OodSpec;
use crate::preprocess::{GreyF32, percentile_sorted};
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

/// Exposure, contrast, resolution and sharpness of the flattened film.
pub fn check_film(
    grey: &GreyF32,
    film_min_side_in_input: f32,
    model_input: &[f32],
    input_side: usize,
) -> Vec<QualityItem> {
    let mut out = Vec::new();
    let mut v: Vec<f32> = grey.as_raw().iter().step_by(2).map(|g| g * 255.0).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    let (p1, p50, p99) = (percentile_sorted(&v, 1.0), percentile_sorted(&v, 50.0), percentile_sorted(&v, 99.0));
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
