//! Contrast-limited adaptive histogram equalisation (CLAHE) of an 8-bit grey image, computed as OpenCV's
//! `createCLAHE(clip, tiles).apply` computes it, so a model trained with OpenCV's CLAHE sees the same input
//! here. The preprocessing applies it when the manifest's `input.clahe` asks for it (src/preprocess.rs).
//!
//! Per tile: a 256-bin histogram, clipped at `clip × tile area / 256` with the excess spread evenly (the
//! remainder one count at a time at a regular stride), its cumulative sum scaled to 0..255 as the tile's
//! map; each pixel blends the maps of the four nearest tile centres bilinearly. When the image does not
//! divide into the tiles, the histograms are taken over the image extended with mirrored borders (OpenCV's
//! reflect-101), as OpenCV does.

use image::GrayImage;

const BINS: usize = 256;

/// Index `p` of a row or column of length `len` after mirroring without repeating the edge (reflect-101),
/// repeated until it falls inside.
fn reflect101(mut p: i64, len: i64) -> usize {
    if len <= 1 {
        return 0;
    }
    while p < 0 || p >= len {
        p = if p < 0 { -p } else { 2 * (len - 1) - p };
    }
    p as usize
}

/// One tile's map from grey value to equalised grey value.
fn tile_map(hist: &mut [u32; BINS], clip: u32, area: u32) -> [u8; BINS] {
    let mut clipped = 0u32;
    for h in hist.iter_mut() {
        if *h > clip {
            clipped += *h - clip;
            *h = clip;
        }
    }
    let batch = clipped / BINS as u32;
    let mut residual = clipped - batch * BINS as u32;
    for h in hist.iter_mut() {
        *h += batch;
    }
    if residual > 0 {
        let step = (BINS / residual as usize).max(1);
        let mut i = 0;
        while i < BINS && residual > 0 {
            hist[i] += 1;
            residual -= 1;
            i += step;
        }
    }
    let scale = (BINS - 1) as f32 / area as f32;
    let mut map = [0u8; BINS];
    let mut sum = 0u32;
    for (m, h) in map.iter_mut().zip(hist.iter()) {
        sum += h;
        *m = (sum as f32 * scale).round_ties_even().clamp(0.0, 255.0) as u8;
    }
    map
}

/// CLAHE with clip limit `clip` (OpenCV's `clipLimit`, e.g. 2.0; ≤ 0 disables clipping) over a
/// `tiles_x × tiles_y` grid (each at least 1). An empty image is returned as it is.
pub fn clahe(src: &GrayImage, clip: f32, tiles_x: u32, tiles_y: u32) -> GrayImage {
    let (w, h) = src.dimensions();
    if w == 0 || h == 0 {
        return src.clone();
    }
    let (tx, ty) = (tiles_x.max(1) as usize, tiles_y.max(1) as usize);
    let (w, h) = (w as usize, h as usize);
    // OpenCV extends both sides whenever either does not divide (by a whole tile count if that one does)
    let (ew, eh) = if w % tx == 0 && h % ty == 0 { (w, h) } else { (w + tx - w % tx, h + ty - h % ty) };
    let (tw, th) = (ew / tx, eh / ty);
    let area = (tw * th) as u32;
    let clip_count = if clip > 0.0 { ((clip as f64 * area as f64 / BINS as f64) as u32).max(1) } else { u32::MAX };
    let px = src.as_raw();
    let mut maps = vec![[0u8; BINS]; tx * ty];
    for (k, map) in maps.iter_mut().enumerate() {
        let (x0, y0) = ((k % tx) * tw, (k / tx) * th);
        let mut hist = [0u32; BINS];
        for y in y0..y0 + th {
            let row = reflect101(y as i64, h as i64) * w;
            for x in x0..x0 + tw {
                hist[px[row + reflect101(x as i64, w as i64)] as usize] += 1;
            }
        }
        *map = tile_map(&mut hist, clip_count, area);
    }
    // position of a pixel between tile centres: (neighbour tile, neighbour tile + 1, weight of the second)
    let blend = |i: usize, size: usize, n: usize| {
        let f = i as f32 * (1.0 / size as f32) - 0.5;
        let lo = f.floor();
        let a = f - lo;
        let lo = lo as i64;
        (lo.max(0) as usize, ((lo + 1) as usize).min(n - 1), a)
    };
    let xs: Vec<_> = (0..w).map(|x| blend(x, tw, tx)).collect();
    let mut out = vec![0u8; w * h];
    for (y, row) in out.chunks_exact_mut(w).enumerate() {
        let (ty1, ty2, ya) = blend(y, th, ty);
        let (upper, lower) = (&maps[ty1 * tx..ty1 * tx + tx], &maps[ty2 * tx..ty2 * tx + tx]);
        for (x, o) in row.iter_mut().enumerate() {
            let v = px[y * w + x] as usize;
            let (tx1, tx2, xa) = xs[x];
            let top = upper[tx1][v] as f32 * (1.0 - xa) + upper[tx2][v] as f32 * xa;
            let bottom = lower[tx1][v] as f32 * (1.0 - xa) + lower[tx2][v] as f32 * xa;
            *o = (top * (1.0 - ya) + bottom * ya).round_ties_even().clamp(0.0, 255.0) as u8;
        }
    }
    GrayImage::from_raw(w as u32, h as u32, out).expect("buffer has w*h values")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(bytes: &[u8]) -> GrayImage {
        image::load_from_memory(bytes).expect("fixture decodes").to_luma8()
    }

    /// Compare with OpenCV's output (models/training/make_clahe_fixtures.py): at most one grey level apart
    /// anywhere (float rounding order), and the same value almost everywhere.
    fn matches_opencv(input: &[u8], expected: &[u8]) {
        let (input, expected) = (png(input), png(expected));
        let ours = clahe(&input, 2.0, 8, 8);
        assert_eq!(ours.dimensions(), expected.dimensions());
        let diffs: Vec<i32> =
            ours.as_raw().iter().zip(expected.as_raw()).map(|(&a, &b)| (a as i32 - b as i32).abs()).collect();
        let max = diffs.iter().copied().max().unwrap_or(0);
        let exact = diffs.iter().filter(|&&d| d == 0).count() as f64 / diffs.len() as f64;
        assert!(max <= 1, "largest difference from OpenCV {max}");
        assert!(exact > 0.99, "only {:.2} % of pixels equal OpenCV's", exact * 100.0);
        // and it is not the identity: CLAHE changes the film
        assert!(ours.as_raw() != input.as_raw());
    }

    #[test]
    fn matches_opencv_on_the_readers_224_px_input() {
        matches_opencv(
            include_bytes!("../tests/fixtures/clahe/square-input.png"),
            include_bytes!("../tests/fixtures/clahe/square-opencv.png"),
        );
    }

    #[test]
    fn matches_opencv_when_the_tiles_do_not_divide_the_image() {
        matches_opencv(
            include_bytes!("../tests/fixtures/clahe/crop-input.png"),
            include_bytes!("../tests/fixtures/clahe/crop-opencv.png"),
        );
    }

    #[test]
    fn tiny_flat_and_empty_images_do_not_panic() {
        let flat = GrayImage::from_pixel(3, 2, image::Luma([77]));
        let out = clahe(&flat, 2.0, 8, 8);
        assert_eq!(out.dimensions(), (3, 2));
        let first = out.as_raw()[0];
        assert!(out.as_raw().iter().all(|&v| v == first), "a flat image stays flat");
        assert_eq!(clahe(&GrayImage::new(0, 0), 2.0, 8, 8).dimensions(), (0, 0));
        assert_eq!(clahe(&GrayImage::from_pixel(1, 1, image::Luma([5])), 0.0, 0, 0).dimensions(), (1, 1));
    }

    #[test]
    fn reflect101_mirrors_without_repeating_the_edge() {
        assert_eq!(reflect101(-1, 5), 1);
        assert_eq!(reflect101(5, 5), 3);
        assert_eq!(reflect101(6, 5), 2);
        assert_eq!(reflect101(9, 3), 1);
        assert_eq!(reflect101(4, 1), 0);
    }
}
