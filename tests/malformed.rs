//! Damaged files of every supported format: each read ends in a report or a typed error, never a panic.

mod common;
use common::*;
use image::{DynamicImage, ImageFormat};
use xray_reader::ReadOptions;

/// Deterministic xorshift, so a failure names a reproducible case.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn encoded() -> Vec<(&'static str, Vec<u8>)> {
    let src = image::load_from_memory(&bytes("kermany-normal.jpeg")).unwrap();
    let mut out = vec![("jpeg", bytes("kermany-normal.jpeg")), ("jpeg-progressive", bytes("progressive-nih-pneumonia.jpg"))];
    let formats = [
        ("png", ImageFormat::Png, DynamicImage::ImageLuma16(src.to_luma16())),
        ("webp", ImageFormat::WebP, DynamicImage::ImageRgb8(src.to_rgb8())),
        ("tiff", ImageFormat::Tiff, DynamicImage::ImageRgb8(src.to_rgb8())),
        ("gif", ImageFormat::Gif, DynamicImage::ImageRgba8(src.to_rgba8())),
        ("bmp", ImageFormat::Bmp, DynamicImage::ImageRgb8(src.to_rgb8())),
    ];
    for (name, fmt, img) in formats {
        let mut buf = std::io::Cursor::new(Vec::new());
        img.write_to(&mut buf, fmt).unwrap();
        out.push((name, buf.into_inner()));
    }
    out
}

#[test]
fn truncated_and_corrupted_files_never_panic() {
    let mut rng = Rng(0x9E3779B97F4A7C15);
    let mut cases = 0;
    let mut errors = std::collections::BTreeMap::<String, usize>::new();
    let mut truncated_read = Vec::new();
    for (name, data) in encoded() {
        let mut variants: Vec<(String, Vec<u8>)> = Vec::new();
        for k in 1..=6 {
            let cut = data.len() * k / 7;
            variants.push((format!("{name} truncated at {cut}"), data[..cut].to_vec()));
        }
        for k in 0..6 {
            let mut d = data.clone();
            // damage the header region and the body alike
            for _ in 0..(1 + k * 3) {
                let i = (rng.next() as usize) % d.len().min(if k % 2 == 0 { 256 } else { usize::MAX });
                d[i] ^= 1 << (rng.next() % 8);
            }
            variants.push((format!("{name} with {} flipped bits (case {k})", 1 + k * 3), d));
        }
        for (what, d) in variants {
            cases += 1;
            let result = std::panic::catch_unwind(|| reader().read(&d, &ReadOptions::default()));
            match result {
                Err(_) => panic!("{what}: the reader panicked"),
                Ok(Err(e)) => {
                    assert!(!e.to_string().is_empty());
                    *errors.entry(e.kind().to_string()).or_default() += 1;
                }
                Ok(Ok(r)) => {
                    assert!(r.report.ok && !r.report.findings.is_empty(), "{what}");
                    if what.contains("truncated") {
                        truncated_read.push(what);
                    }
                }
            }
        }
    }
    assert!(cases >= 40, "{cases} damaged files");
    // a truncated file must be rejected, not read as part of a film
    assert!(truncated_read.is_empty(), "truncated files were read: {truncated_read:?} (errors: {errors:?})");
}
