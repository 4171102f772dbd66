//! Film detection on arbitrary small pictures (the fuzzer's bytes are the pixels), with the padding trim at
//! an arbitrary flatness, and arbitrary corners: a film always comes back, with finite corners (inside the
//! picture when padding was trimmed and no film found), and flattening never panics.
#![no_main]
use image::RgbImage;
use libfuzzer_sys::fuzz_target;
use xray_reader::manifest::TrimSpec;
use xray_reader::{film, geometry};

fuzz_target!(|data: &[u8]| {
    if data.len() < 5 {
        return;
    }
    let w = 16 + (data[0] as u32 % 200);
    let h = 16 + (data[1] as u32 % 200);
    let trim = TrimSpec { max_range: data[2] % 32, min_keep: 0.5 };
    let body = &data[3..];
    let img = RgbImage::from_fn(w, h, |x, y| {
        let i = ((y * w + x) as usize * 3) % body.len().max(1);
        let v = |k: usize| body.get((i + k) % body.len()).copied().unwrap_or(0);
        image::Rgb([v(0), v(1), v(2)])
    });
    let f = film::find(&img, None, Some(&trim));
    assert!(f.corners.iter().flatten().all(|v| v.is_finite()));
    assert!(f.image.width() > 0 && f.image.height() > 0);
    if f.trimmed && !f.detected {
        let inside = |[x, y]: [f32; 2]| (0.0..=w as f32).contains(&x) && (0.0..=h as f32).contains(&y);
        assert!(f.corners.iter().all(|c| inside(*c)), "{:?} outside {w}x{h}", f.corners);
    }
    // caller corners from the same bytes: either validated and used, or refused with a typed error
    if body.len() >= 8 {
        let c = |k: usize| body[k] as f32 / 255.0;
        let corners = [
            [c(0) * w as f32, c(1) * h as f32],
            [c(2) * w as f32, c(3) * h as f32],
            [c(4) * w as f32, c(5) * h as f32],
            [c(6) * w as f32, c(7) * h as f32],
        ];
        if let Ok(q) = geometry::validate_corners(corners, w, h) {
            let f = film::find(&img, Some(q), Some(&trim));
            assert!(f.image.width() > 0 && f.image.height() > 0);
        }
    }
});
