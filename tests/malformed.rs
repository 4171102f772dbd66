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
    let mut out =
        vec![("jpeg", bytes("kermany-normal.jpeg")), ("jpeg-progressive", bytes("progressive-nih-pneumonia.jpg"))];
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

/// A JPEG whose EXIF block is a chain of IFDs pointing at each other (a loop) and an orientation tag
/// buried in a sub-IFD: the reader must neither hang nor fail, and must read the film.
fn jpeg_with_looping_exif(jpeg: &[u8]) -> Vec<u8> {
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"MM\0\x2a\0\0\0\x08"); // big-endian TIFF header, IFD0 at 8
    // IFD0: 2 entries: ExifIFD pointer (0x8769) -> 8 (itself), Orientation (0x0112) = 1
    tiff.extend_from_slice(&2u16.to_be_bytes());
    tiff.extend_from_slice(&[0x87, 0x69, 0, 4, 0, 0, 0, 1, 0, 0, 0, 8]);
    tiff.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 1, 0, 0]);
    tiff.extend_from_slice(&8u32.to_be_bytes()); // next IFD = itself: a loop
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]); // the original segments after SOI
    out
}

#[test]
fn odd_but_valid_files_are_read() {
    let opts = ReadOptions::default();
    let base = abnormal(&read("kermany-normal.jpeg")).probability;
    let src = image::load_from_memory(&bytes("kermany-normal.jpeg")).unwrap().to_luma8();

    let looping = jpeg_with_looping_exif(&bytes("kermany-normal.jpeg"));
    let r = reader().read(&looping, &opts).expect("looping EXIF");
    assert!((abnormal(&r).probability - base).abs() < 0.02);

    // animated GIF: the first frame is the film, the second is blank
    let mut gif = Vec::new();
    {
        let mut enc = image::codecs::gif::GifEncoder::new(&mut gif);
        let rgba = DynamicImage::ImageLuma8(src.clone()).to_rgba8();
        let blank = image::RgbaImage::from_pixel(rgba.width(), rgba.height(), image::Rgba([0, 0, 0, 255]));
        enc.encode_frames([image::Frame::new(rgba), image::Frame::new(blank)]).unwrap();
    }
    let r = reader().read(&gif, &opts).expect("animated GIF");
    assert!((abnormal(&r).probability - base).abs() < 0.05, "first frame read");

    // palette (indexed) PNG, as some PACS viewers export
    let mut png = Vec::new();
    {
        let (w, h) = src.dimensions();
        let mut enc = png::Encoder::new(&mut png, w, h);
        enc.set_color(png::ColorType::Indexed);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_palette((0..=255u8).flat_map(|v| [v, v, v]).collect::<Vec<u8>>());
        let mut wr = enc.write_header().unwrap();
        wr.write_image_data(src.as_raw()).unwrap();
    }
    let r = reader().read(&png, &opts).expect("palette PNG");
    assert!((abnormal(&r).probability - base).abs() < 0.02);
}

/// The browser worker asks `declared_size` (header only) whether to leave an image to Rust's decoder: it
/// must give each format's real size, the size before any EXIF turn, `None` for what this build cannot
/// decode, and never panic on damaged headers.
#[test]
fn declared_size_reads_headers_only_and_never_panics() {
    use xray_reader::decode::{declared_size, decode};
    for (name, data) in encoded() {
        let image = decode(&data, &Default::default()).unwrap();
        assert_eq!(declared_size(&data), Some(image.dimensions()), "{name}");
        let mut rng = Rng(0xD1B54A32D192ED03);
        for k in 0..40 {
            let mut d = data[..data.len().min(64 + k * 16)].to_vec();
            let i = (rng.next() as usize) % d.len();
            d[i] ^= 1 << (rng.next() % 8);
            assert!(std::panic::catch_unwind(|| declared_size(&d)).is_ok(), "{name}: damaged header {k} panicked");
        }
    }
    // EXIF orientation 6 (a quarter turn): the header's size is the stored one, the decoded image is turned
    let turned = bytes("exif-orientation-6-kermany-pneumonia.jpg");
    let (w, h) = declared_size(&turned).unwrap();
    assert_eq!(decode(&turned, &Default::default()).unwrap().dimensions(), (h, w));
    // formats only a browser may decode (an AVIF / HEIC header), and no image at all
    let heif = |brand: &[u8]| [&[0, 0, 0, 0x18][..], b"ftyp", brand, &[0, 0, 0, 0], b"mif1", brand].concat();
    for not_ours in [heif(b"avif"), heif(b"heic"), b"not an image".to_vec(), Vec::new()] {
        assert_eq!(declared_size(&not_ours), None);
    }
}

/// Phone formats this build does not decode (and a video, an icon) are refused with a reason that says what to do.
#[test]
fn avif_and_heic_are_refused_with_what_to_do() {
    let avif = bytes("avif-nih-pneumonia.avif");
    let heic = [&[0, 0, 0, 0x18][..], b"ftypheic", &[0, 0, 0, 0], b"mif1heic", &[0; 64]].concat();
    let mp4 = [&[0, 0, 0, 0x18][..], b"ftypisom", &[0, 0, 2, 0], b"isomiso2", &[0; 64]].concat();
    // an icon file: a format the image crate recognises that this build does not decode
    let ico = [&[0, 0, 1, 0, 1, 0, 16, 16, 0, 0, 1, 0, 32, 0][..], &[0; 64]].concat();
    for (data, says) in [(avif, "an AVIF image"), (heic, "an HEIC/HEIF photo"), (mp4, "a video"), (ico, "Ico images")] {
        match reader().read(&data, &ReadOptions::default()) {
            Err(e) => {
                assert_eq!(e.kind(), "unsupported_format");
                let m = e.to_string();
                assert!(m.contains(says) && (m.contains("JPEG") || m.contains("still photo")), "{m}");
            }
            Ok(_) => panic!("{says} was read"),
        }
    }
}
