//! Border: the radiograph inside flat digital padding (PACS black bars, scanner frames, images squared up
//! for export). Rows and columns at the edges whose grey levels barely vary carry no anatomy; left in, they
//! change what the model sees once the film is squeezed to its square input, and the film detector takes
//! the padding's edge for a film boundary. Models trained with the same trim (manifest `input.trim_border`,
//! models/training/data.py `flat_border`) have it cut off here, before the film stage looks for a film.

use image::RgbImage;

use crate::manifest::TrimSpec;

/// A pixel rectangle: columns `left..right`, rows `top..bottom`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub left: u32,
    pub top: u32,
    pub right: u32,
    pub bottom: u32,
}

impl Rect {
    pub fn width(&self) -> u32 {
        self.right - self.left
    }
    pub fn height(&self) -> u32 {
        self.bottom - self.top
    }
}

/// Grey level 0..=255 of an RGB pixel, rounded (Rec. 601 weights, as OpenCV's grey conversion); exact for
/// grey pixels, so the training code's grey files and the reader's RGB copies of them agree.
fn grey(p: &[u8]) -> u8 {
    ((299 * p[0] as u32 + 587 * p[1] as u32 + 114 * p[2] as u32 + 500) / 1000) as u8
}

/// The part of `img` inside its flat edge rows and columns, or None when nothing is trimmed.
///
/// A row or column is flat when its grey levels, within the part still kept, span at most
/// `spec.max_range`. Flat rows are peeled from the top and bottom, then flat columns from the left and
/// right, and again until nothing changes. When less than `spec.min_keep` of the height or width would
/// remain, nothing is trimmed: a blank or nearly blank image is left whole for the reader's other checks.
pub fn inner(img: &RgbImage, spec: &TrimSpec) -> Option<Rect> {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return None;
    }
    // grey levels computed where looked at: an image without padding stops at its first row and column
    let raw = img.as_raw();
    let (w_us, max_range) = (w as usize, spec.max_range);
    let g = |x: u32, y: u32| {
        let i = 3 * (y as usize * w_us + x as usize);
        grey(&raw[i..i + 3])
    };
    // true when the values stay within max_range (stops at the first one that does not)
    let flat = |mut values: Box<dyn Iterator<Item = u8> + '_>| {
        let first = values.next().unwrap_or(0);
        let (mut lo, mut hi) = (first, first);
        for v in values {
            lo = lo.min(v);
            hi = hi.max(v);
            if hi - lo > max_range {
                return false;
            }
        }
        true
    };
    let row = |y: u32, l: u32, r: u32| flat(Box::new((l..r).map(|x| g(x, y))));
    let col = |x: u32, t: u32, b: u32| flat(Box::new((t..b).map(|y| g(x, y))));

    let (mut t, mut b, mut l, mut r) = (0, h, 0, w);
    let mut changed = true;
    while changed {
        changed = false;
        while b > t && row(t, l, r) {
            t += 1;
            changed = true;
        }
        while b > t && row(b - 1, l, r) {
            b -= 1;
            changed = true;
        }
        if b <= t {
            break;
        }
        while r > l && col(l, t, b) {
            l += 1;
            changed = true;
        }
        while r > l && col(r - 1, t, b) {
            r -= 1;
            changed = true;
        }
        if r <= l {
            break;
        }
    }
    let kept = |n: u32, of: u32| b > t && r > l && n as f32 >= spec.min_keep * of as f32;
    if !kept(b.saturating_sub(t), h) || !kept(r.saturating_sub(l), w) || (t, b, l, r) == (0, h, 0, w) {
        return None;
    }
    Some(Rect { left: l, top: t, right: r, bottom: b })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    const SPEC: TrimSpec = TrimSpec { max_range: 6, min_keep: 0.5 };

    /// Structured content (never flat along a row or column) at `rect` inside a `w × h` frame of `pad`.
    fn framed(w: u32, h: u32, rect: Rect, pad: impl Fn(u32, u32) -> u8) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let inside = (rect.left..rect.right).contains(&x) && (rect.top..rect.bottom).contains(&y);
            let v = if inside {
                (100.0 + 60.0 * ((x as f32 / 7.0).sin() + (y as f32 / 5.0).cos())) as u8
            } else {
                pad(x, y)
            };
            Rgb([v, v, v])
        })
    }

    #[test]
    fn bars_and_frames_are_cut_to_the_radiograph() {
        let cases = [
            Rect { left: 0, top: 30, right: 300, bottom: 250 }, // letterbox
            Rect { left: 40, top: 0, right: 260, bottom: 280 }, // pillarbox
            Rect { left: 12, top: 9, right: 290, bottom: 271 }, // frame on every side
            Rect { left: 0, top: 0, right: 280, bottom: 280 },  // right and bottom only
        ];
        for rect in cases {
            // black padding with a little noise (JPEG, scanner), within the flat range
            let img = framed(300, 280, rect, |x, y| ((x * 7 + y * 13) % 5) as u8);
            assert_eq!(inner(&img, &SPEC), Some(rect), "{rect:?}");
            // white frames too
            let img = framed(300, 280, rect, |_, _| 250);
            assert_eq!(inner(&img, &SPEC), Some(rect), "white {rect:?}");
        }
    }

    #[test]
    fn colour_padding_is_flat_by_its_grey_level() {
        let rect = Rect { left: 20, top: 0, right: 280, bottom: 200 };
        let mut img = framed(300, 200, rect, |_, _| 0);
        for (x, _, p) in img.enumerate_pixels_mut() {
            if !(20..280).contains(&x) {
                *p = Rgb([30, 60, 200]); // a flat blue bar
            }
        }
        assert_eq!(inner(&img, &SPEC), Some(rect));
    }

    #[test]
    fn a_radiograph_without_padding_is_left_whole() {
        let img = framed(300, 280, Rect { left: 0, top: 0, right: 300, bottom: 280 }, |_, _| 0);
        assert_eq!(inner(&img, &SPEC), None);
        // a dark but noisy edge (air beside the body) is not padding
        let rect = Rect { left: 30, top: 0, right: 300, bottom: 280 };
        let img = framed(300, 280, rect, |x, y| ((x * 31 + y * 17) % 23) as u8);
        assert_eq!(inner(&img, &SPEC), None);
    }

    #[test]
    fn blank_or_mostly_padding_images_are_not_trimmed() {
        assert_eq!(inner(&RgbImage::from_pixel(200, 100, Rgb([128, 128, 128])), &SPEC), None);
        // content in under half the width: left whole
        let img = framed(300, 200, Rect { left: 100, top: 0, right: 240, bottom: 200 }, |_, _| 0);
        assert_eq!(inner(&img, &SPEC), None);
        let loose = TrimSpec { max_range: 6, min_keep: 0.4 };
        assert_eq!(inner(&img, &loose), Some(Rect { left: 100, top: 0, right: 240, bottom: 200 }));
        assert_eq!(inner(&RgbImage::new(1, 1), &SPEC), None);
    }

    #[test]
    fn matches_the_training_code_on_a_fixture() {
        // models/training/make_border_fixture.py: data.flat_border of this 244x245 padded film printed
        // (top, bottom, left, right) = (12, 236, 20, 244)
        let img = image::load_from_memory(include_bytes!("../tests/fixtures/border/padded.png")).unwrap().to_rgb8();
        assert_eq!(inner(&img, &SPEC), Some(Rect { left: 20, top: 12, right: 244, bottom: 236 }));
    }
}
