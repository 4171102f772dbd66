//! Decode: bytes -> RGB pixels, upright per EXIF, within declared limits checked before allocation.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageReader, Limits, RgbImage};

use crate::error::{Error, Result};

/// Bounds that are checked against the image's declared header before any pixel buffer is allocated.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    pub max_width: u32,
    pub max_height: u32,
    pub max_pixels: u64,
    pub max_alloc_bytes: u64,
    pub min_side: u32,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        // 50 MP covers every phone camera in use; 16-bit RGBA of that is 400 MB, so allow 512 MiB.
        DecodeLimits {
            max_width: 16384,
            max_height: 16384,
            max_pixels: 50_000_000,
            max_alloc_bytes: 512 << 20,
            min_side: 32,
        }
    }
}

/// Decode any supported format (JPEG, PNG, WebP, BMP, TIFF, GIF first frame), apply EXIF orientation.
pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<RgbImage> {
    if bytes.is_empty() {
        return Err(Error::Empty);
    }
    let reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| Error::Io(e.to_string()))?;
    // a format the `image` crate recognises but this build has no decoder for (AVIF, ICO, …) is refused here,
    // with what the file is, rather than as a decoder error
    let guessed = reader.format();
    let Some(format) = guessed.filter(|f| f.reading_enabled()) else {
        return Err(Error::UnsupportedFormat(sniff_hint(bytes, guessed)));
    };
    if format == image::ImageFormat::Jpeg && !jpeg_has_end(bytes) {
        // the JPEG decoder pads a truncated scan with grey; a half-grey film must not be read
        return Err(Error::Corrupt("JPEG: the file ends before its end-of-image marker (truncated)".into()));
    }
    let mut decoder = reader.into_decoder().map_err(|e| map_image_error(e, format))?;
    let (w, h) = decoder.dimensions();
    check_dimensions(w, h, limits)?;
    let mut l = Limits::default();
    l.max_image_width = Some(limits.max_width);
    l.max_image_height = Some(limits.max_height);
    l.max_alloc = Some(limits.max_alloc_bytes);
    decoder.set_limits(l).map_err(|e| map_image_error(e, format))?;
    let orientation = decoder.orientation().ok();
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| map_image_error(e, format))?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    Ok(to_rgb8(img))
}

/// The size an image declares in its header (before any EXIF turn), without decoding its pixels; `None`
/// when this build cannot read its format or its header. The browser worker uses it to leave small images
/// to `decode` alone and to hand formats only the browser decodes (AVIF, HEIC) to the browser.
pub fn declared_size(bytes: &[u8]) -> Option<(u32, u32)> {
    ImageReader::new(Cursor::new(bytes)).with_guessed_format().ok()?.into_dimensions().ok()
}

/// True when an end-of-image marker (FF D9) follows the first start-of-scan (FF DA). Entropy-coded data
/// byte-stuffs FF, so the marker cannot occur inside a scan; an EXIF thumbnail's own marker comes before
/// the main scan and does not count. Data after the marker (some phones append metadata) is allowed.
fn jpeg_has_end(bytes: &[u8]) -> bool {
    let Some(sos) = bytes.windows(2).position(|w| w == [0xFF, 0xDA]) else {
        return false;
    };
    bytes[sos..].windows(2).any(|w| w == [0xFF, 0xD9])
}

fn check_dimensions(w: u32, h: u32, limits: &DecodeLimits) -> Result<()> {
    if w == 0 || h == 0 {
        return Err(Error::Corrupt(format!("declared size {w}x{h}")));
    }
    if w > limits.max_width || h > limits.max_height || (w as u64) * (h as u64) > limits.max_pixels {
        return Err(Error::TooLarge(format!(
            "declared {w}x{h} pixels; the limit is {}x{} and {} megapixels",
            limits.max_width,
            limits.max_height,
            limits.max_pixels / 1_000_000
        )));
    }
    if w.min(h) < limits.min_side {
        return Err(Error::TooSmall { width: w, height: h, min: limits.min_side });
    }
    Ok(())
}

/// Flatten alpha onto white (a transparent PNG export of a film should not read as black) and keep RGB.
fn to_rgb8(img: DynamicImage) -> RgbImage {
    if !img.color().has_alpha() {
        return img.into_rgb8();
    }
    let rgba = img.into_rgba8();
    let (w, h) = rgba.dimensions();
    let mut out = RgbImage::new(w, h);
    for (o, p) in out.pixels_mut().zip(rgba.pixels()) {
        let a = p[3] as u32;
        for c in 0..3 {
            o[c] = ((p[c] as u32 * a + 255 * (255 - a) + 127) / 255) as u8;
        }
    }
    out
}

fn map_image_error(e: image::ImageError, format: image::ImageFormat) -> Error {
    use image::ImageError as E;
    match e {
        E::Limits(l) => Error::TooLarge(format!("{format:?}: {l}")),
        E::Unsupported(u) => Error::UnsupportedFormat(format!(": {format:?} variant not supported ({u})")),
        E::Decoding(d) => Error::Corrupt(format!("{format:?}: {d}")),
        E::IoError(io) => Error::Corrupt(format!("{format:?}: {io}")),
        other => Error::Corrupt(format!("{format:?}: {other}")),
    }
}

/// Name a few non-image formats people hand to an image reader, so the error says what the file is; failing
/// that, the image format `guessed` from the file's signature that this build does not decode.
fn sniff_hint(bytes: &[u8], guessed: Option<image::ImageFormat>) -> String {
    let head = &bytes[..bytes.len().min(512)];
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    let what = if head.starts_with(b"%PDF") {
        Some("a PDF document")
    } else if bytes.len() > 132 && &bytes[128..132] == b"DICM" {
        Some("a DICOM file (export the image as PNG or JPEG first)")
    } else if text.contains("<svg") {
        Some("an SVG drawing")
    } else if text.contains("<html") || text.contains("<!doctype") {
        Some("an HTML page")
    } else if head.starts_with(b"\x1f\x8b") || head.starts_with(b"PK\x03\x04") {
        Some("a compressed archive")
    } else if let Some(brand) = head.get(4..12).filter(|b| b.starts_with(b"ftyp")).map(|b| &b[4..]) {
        // ISO base media files: the major brand says what is inside
        match brand {
            b"avif" | b"avis" => {
                Some("an AVIF image (save it as JPEG or PNG, or read it in the web app, where the browser decodes it)")
            }
            b"heic" | b"heix" | b"hevc" | b"hevx" | b"heim" | b"heis" | b"mif1" | b"msf1" => {
                Some("an HEIC/HEIF photo (save it as JPEG, e.g. the phone's \"most compatible\" camera format)")
            }
            _ => Some("a video or other media file (take a still photo of the film)"),
        }
    } else {
        None
    };
    match (what, guessed) {
        (Some(w), _) => format!(": this looks like {w}"),
        (None, Some(f)) => format!(": {f:?} images are not read here (save it as JPEG or PNG)"),
        (None, None) => String::new(),
    }
}
