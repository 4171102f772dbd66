//! Regions: a finding's class-activation map (times the model's opacity map, when it has one) upsampled
//! over the film, its peak and its hot connected regions, mapped back to input-image pixels through the
//! film's perspective.

use image::{GrayImage, ImageBuffer, Luma};
use imageproc::geometric_transformations::Projection;
use imageproc::region_labelling::{Connectivity, connected_components};

use crate::geometry::{self, Quad};
use crate::manifest::RegionSpec;
use crate::report::Region;

/// Grid (per side) the CAM is upsampled to for peaks and regions.
const GRID: usize = 112;

/// The smallest and largest of `values` (+inf, -inf for none).
fn min_max(values: impl IntoIterator<Item = f32>) -> (f32, f32) {
    values.into_iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)))
}

/// The map a finding's peak, regions and heatmap follow. Without an opacity map, its CAM. With one (model
/// 1.5.0 on), sigmoid(opacity) times the CAM scaled to [0, 1] over the film and raised to `cam_exponent`
/// (the manifest's `regions.cam_exponent`): at 1, where the classifier's evidence and added density
/// coincide; at 0 (1.6.0's manifest since session 31), where density has been added, the opacity map alone.
/// The CAM alone follows the heart shadow, and weighing it in moved the peak off lesions more often than onto
/// them (models/MODEL_CARD.md, localisation). Either way, times the manifest's `regions.lung_prior` when it
/// has one on the CAM's grid (since session 32): the opacity map also fires on normal anatomy outside the
/// lungs. `models/training/opacity_head.py` computes the same map.
pub fn localisation_map(cam: &[f32], opacity: Option<&[f32]>, spec: &RegionSpec) -> Vec<f32> {
    let sigmoid = |o: f32| 1.0 / (1.0 + (-o.clamp(-30.0, 30.0)).exp());
    let exponent = spec.cam_exponent;
    let mut map = match opacity.filter(|o| o.len() == cam.len()) {
        None => cam.to_vec(),
        Some(opacity) if exponent == 0.0 || !exponent.is_finite() => opacity.iter().map(|&o| sigmoid(o)).collect(),
        Some(opacity) => {
            let (lo, hi) = min_max(cam.iter().copied());
            let span = hi - lo;
            cam.iter()
                .zip(opacity)
                .map(|(&c, &o)| {
                    let c = if span > 1e-6 { (c - lo) / span } else { 0.0 };
                    c.powf(exponent) * sigmoid(o)
                })
                .collect()
        }
    };
    if let Some(prior) = &spec.lung_prior {
        if prior.iter().map(Vec::len).sum::<usize>() == map.len() {
            // a CAM (signed) is lifted to its minimum first, so the weights rank it as they rank a sigmoid
            let lo = map.iter().copied().fold(0.0f32, f32::min);
            for (m, &w) in map.iter_mut().zip(prior.iter().flatten()) {
                *m = (*m - lo) * w;
            }
        }
    }
    map
}

/// A `GRID`×`GRID` map's hot connected regions: its values scaled to [0, 1] (`norm`) and the 8-connected
/// components of the cells at least `hot_fraction` (`labels`, 0 for cold cells). None for a flat map. The
/// peak and the regions both read them.
struct HotRegions {
    norm: Vec<f32>,
    labels: ImageBuffer<Luma<u32>, Vec<u32>>,
}

impl HotRegions {
    fn of(g: &[f32], hot_fraction: f32) -> Option<HotRegions> {
        let (lo, hi) = min_max(g.iter().copied());
        if g.len() != GRID * GRID || !(hi - lo > 1e-6) {
            return None;
        }
        let norm: Vec<f32> = g.iter().map(|v| (v - lo) / (hi - lo)).collect();
        let mask = GrayImage::from_fn(GRID as u32, GRID as u32, |x, y| {
            Luma([if norm[y as usize * GRID + x as usize] >= hot_fraction { 255 } else { 0 }])
        });
        let labels = connected_components(&mask, Connectivity::Eight, Luma([0u8]));
        Some(HotRegions { norm, labels })
    }
}

/// The peak of a `GRID`×`GRID` map, in grid cells (x, y; cell centres at whole numbers): the heat-weighted
/// centre of the hot region (`HotRegions`, the cut `regions` uses) that holds the maximum, or the maximum
/// itself when that centre falls outside the region (a crescent, say). The maximum of a map bilinearly
/// upsampled from 14×14 sits wherever the coarse cells happen to tip it, often at a region's rim; the
/// region's centre lies on the lesion more often (`models/training/peak_rule.py`: synthetic opacities,
/// simulated photos of the boxed NIH films; models/MODEL_CARD.md, localisation).
/// Also the label of that region (0 for none).
fn hot_centre(g: &[f32], hot: Option<&HotRegions>) -> ([f32; 2], u32) {
    let top = (0..g.len()).max_by(|&a, &b| g[a].total_cmp(&g[b])).unwrap_or(0);
    let at_top = [(top % GRID) as f32, (top / GRID) as f32];
    let Some(hot) = hot else {
        return (at_top, 0);
    };
    let label_of = |i: usize| hot.labels.as_raw()[i];
    let label = label_of(top);
    if label == 0 {
        return (at_top, 0); // a NaN at the maximum
    }
    let (mut sum, mut sx, mut sy) = (0.0f64, 0.0f64, 0.0f64);
    for (i, &w) in hot.norm.iter().enumerate().filter(|&(i, _)| label_of(i) == label) {
        let w = f64::from(w);
        sum += w;
        sx += w * (i % GRID) as f64;
        sy += w * (i / GRID) as f64;
    }
    let (cx, cy) = ((sx / sum) as f32, (sy / sum) as f32);
    let cell = cy.round() as usize * GRID + cx.round() as usize;
    (if cell < g.len() && label_of(cell) == label { [cx, cy] } else { at_top }, label)
}

/// A CAM laid over the flattened film, with the map back to the input image.
#[derive(Clone)]
pub struct CamField {
    cam: Vec<f32>,
    h: usize,
    w: usize,
    film_w: f32,
    film_h: f32,
    to_input: Projection,
}

impl CamField {
    pub fn new(cam: &[f32], h: usize, w: usize, corners: &Quad, film_w: f32, film_h: f32) -> Option<CamField> {
        let to_input = geometry::film_to_input(corners, film_w, film_h)?;
        Some(CamField { cam: cam.to_vec(), h, w, film_w, film_h, to_input })
    }

    /// Bilinear CAM value at normalised film coordinates (u, v) in [0, 1]; cell centres at (i + 0.5) / n.
    pub fn sample(&self, u: f32, v: f32) -> f32 {
        let fx = (u * self.w as f32 - 0.5).clamp(0.0, (self.w - 1) as f32);
        let fy = (v * self.h as f32 - 0.5).clamp(0.0, (self.h - 1) as f32);
        let (x0, y0) = (fx.floor() as usize, fy.floor() as usize);
        let (x1, y1) = ((x0 + 1).min(self.w - 1), (y0 + 1).min(self.h - 1));
        let (tx, ty) = (fx - x0 as f32, fy - y0 as f32);
        let at = |x: usize, y: usize| self.cam[y * self.w + x];
        let top = at(x0, y0) * (1.0 - tx) + at(x1, y0) * tx;
        let bot = at(x0, y1) * (1.0 - tx) + at(x1, y1) * tx;
        top * (1.0 - ty) + bot * ty
    }

    pub fn range(&self) -> (f32, f32) {
        min_max(self.cam.iter().copied())
    }

    /// Film coordinates (normalised) -> input pixels.
    pub fn to_input(&self, u: f32, v: f32) -> [f32; 2] {
        geometry::map(&self.to_input, u * self.film_w, v * self.film_h)
    }

    /// Input pixels -> normalised film coordinates (may fall outside [0, 1]).
    pub fn from_input(&self, x: f32, y: f32) -> [f32; 2] {
        let [u, v] = geometry::map(&self.to_input.invert(), x, y);
        [u / self.film_w, v / self.film_h]
    }

    /// The projection from input pixels to film pixels, for mapping many points.
    pub fn input_to_film(&self) -> (Projection, f32, f32) {
        (self.to_input.invert(), self.film_w, self.film_h)
    }

    fn upsampled(&self) -> Vec<f32> {
        let mut g = vec![0.0; GRID * GRID];
        for y in 0..GRID {
            for x in 0..GRID {
                g[y * GRID + x] = self.sample((x as f32 + 0.5) / GRID as f32, (y as f32 + 0.5) / GRID as f32);
            }
        }
        g
    }

    /// Peak of the map in input pixels (`hot_centre`), and (when `with_regions`) its hot connected regions,
    /// the one holding the peak first, then the others strongest first, at most `max_regions`.
    pub fn analyse(
        &self,
        spec: &RegionSpec,
        image_w: u32,
        image_h: u32,
        max_regions: usize,
        with_regions: bool,
    ) -> ([f32; 2], Vec<Region>) {
        let g = self.upsampled();
        let hot = HotRegions::of(&g, spec.hot_fraction);
        let ([x, y], peak_label) = hot_centre(&g, hot.as_ref());
        let peak = self.to_input((x + 0.5) / GRID as f32, (y + 0.5) / GRID as f32);
        let regions = match hot.filter(|_| with_regions) {
            Some(hot) => self.regions(&hot, peak_label, spec, image_w, image_h, max_regions),
            None => Vec::new(),
        };
        (peak, regions)
    }

    /// The hot regions of at least `spec.min_area_fraction` of the film, and always the one holding the peak
    /// (`peak_label`), however small: a positive read highlights at least the place its peak marks.
    fn regions(
        &self,
        hot: &HotRegions,
        peak_label: u32,
        spec: &RegionSpec,
        image_w: u32,
        image_h: u32,
        max_regions: usize,
    ) -> Vec<Region> {
        let HotRegions { norm, labels } = hot;
        let n = labels.pixels().map(|p| p[0]).max().unwrap_or(0) as usize;
        // per label: min x, min y, max x, max y, count, sum of heat
        let mut acc = vec![(usize::MAX, usize::MAX, 0usize, 0usize, 0usize, 0.0f32); n + 1];
        for (x, y, l) in labels.enumerate_pixels() {
            let l = l[0] as usize;
            if l == 0 {
                continue;
            }
            let (x, y) = (x as usize, y as usize);
            let a = &mut acc[l];
            a.0 = a.0.min(x);
            a.1 = a.1.min(y);
            a.2 = a.2.max(x);
            a.3 = a.3.max(y);
            a.4 += 1;
            a.5 += norm[y * GRID + x];
        }
        let min_count = (spec.min_area_fraction * (GRID * GRID) as f32).ceil() as usize;
        let mut out: Vec<(bool, Region)> = acc
            .iter()
            .enumerate()
            .skip(1)
            .map(|(l, a)| (l == peak_label as usize, a))
            .filter(|&(holds_peak, a)| a.4 > 0 && (a.4 >= min_count || holds_peak))
            .map(|(holds_peak, &(x0, y0, x1, y1, count, sum))| {
                let s = GRID as f32;
                let film = [
                    [x0 as f32 / s, y0 as f32 / s],
                    [(x1 + 1) as f32 / s, y0 as f32 / s],
                    [(x1 + 1) as f32 / s, (y1 + 1) as f32 / s],
                    [x0 as f32 / s, (y1 + 1) as f32 / s],
                ];
                let polygon = film.map(|[u, v]| {
                    let [x, y] = self.to_input(u, v);
                    [x.clamp(0.0, image_w as f32), y.clamp(0.0, image_h as f32)]
                });
                let xs = polygon.map(|p| p[0]);
                let ys = polygon.map(|p| p[1]);
                let (minx, maxx) = min_max(xs);
                let (miny, maxy) = min_max(ys);
                let region =
                    Region { x: minx, y: miny, w: maxx - minx, h: maxy - miny, score: sum / count as f32, polygon };
                (holds_peak, region)
            })
            .collect();
        // the peak's region first, then the others strongest first
        out.sort_by(|(pa, a), (pb, b)| pb.cmp(pa).then(b.score.total_cmp(&a.score)));
        out.truncate(max_regions);
        out.into_iter().map(|(_, r)| r).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(cam_exponent: f32) -> RegionSpec {
        RegionSpec { cam_exponent, ..RegionSpec::default() }
    }

    #[test]
    fn the_opacity_map_moves_the_peak_to_where_evidence_and_density_coincide() {
        // the CAM's strongest cell (the heart, say) has no added density; its second has
        let cam = [0.0, 4.0, 3.0, -1.0];
        let opacity = [-6.0, -6.0, 4.0, 4.0];
        let map = localisation_map(&cam, Some(&opacity), &spec(1.0));
        let peak = (0..4).max_by(|&a, &b| map[a].total_cmp(&map[b])).unwrap();
        assert_eq!(peak, 2, "{map:?}");
        assert!(map.iter().all(|v| (0.0..=1.0).contains(v)));
        // the CAM's weakest cell stays at zero, however dense
        assert_eq!(map[3], 0.0);
        // without an opacity map (or with one of another size) the CAM is the map
        assert_eq!(localisation_map(&cam, None, &spec(1.0)), cam);
        assert_eq!(localisation_map(&cam, Some(&opacity[..2]), &spec(0.0)), cam);
    }

    #[test]
    fn at_cam_exponent_zero_the_opacity_map_alone_places_the_peak() {
        // the densest cell (3) is where the CAM is weakest: the full CAM zeroes it, exponent 0 keeps it
        let cam = [0.0, 4.0, 3.0, -1.0];
        let opacity = [-6.0, -6.0, 2.0, 4.0];
        let argmax = |m: &[f32]| (0..m.len()).max_by(|&a, &b| m[a].total_cmp(&m[b])).unwrap();
        assert_eq!(argmax(&localisation_map(&cam, Some(&opacity), &spec(1.0))), 2);
        let alone = localisation_map(&cam, Some(&opacity), &spec(0.0));
        assert_eq!(argmax(&alone), 3);
        assert!((alone[3] - 1.0 / (1.0 + (-4.0f32).exp())).abs() < 1e-6);
        // a half power keeps both in play, the CAM's ranking softened
        let half = localisation_map(&cam, Some(&opacity), &spec(0.5));
        assert!(half[3] == 0.0 && half[2] > half[0] && half[2] < alone[2]);
    }

    #[test]
    fn the_lung_prior_weighs_the_map_cell_by_cell() {
        // the densest cell (1, under the diaphragm say) lies where the prior says lungs seldom are: cell 2 wins
        let cam = [0.0, 4.0, 3.0, -1.0];
        let opacity = [-6.0, 3.0, 2.0, -6.0];
        let argmax = |m: &[f32]| (0..m.len()).max_by(|&a, &b| m[a].total_cmp(&m[b])).unwrap();
        let alone = localisation_map(&cam, Some(&opacity), &spec(0.0));
        assert_eq!(argmax(&alone), 1);
        let lungs = RegionSpec { lung_prior: Some(vec![vec![1.0, 0.2], vec![1.0, 1.0]]), ..spec(0.0) };
        let weighed = localisation_map(&cam, Some(&opacity), &lungs);
        assert_eq!(argmax(&weighed), 2, "{weighed:?}");
        assert!((weighed[1] - 0.2 * alone[1]).abs() < 1e-6 && weighed[2] == alone[2]);
        // a CAM alone (signed) is lifted to its minimum before it is weighed: its order is kept where the
        // weights are equal, and its negative cells do not turn into maxima
        let even = RegionSpec { lung_prior: Some(vec![vec![0.5, 0.5], vec![0.5, 0.5]]), ..spec(1.0) };
        let cam_only = localisation_map(&cam, None, &even);
        assert_eq!(argmax(&cam_only), 1);
        assert!(cam_only.iter().all(|v| *v >= 0.0) && cam_only[3] == 0.0, "{cam_only:?}");
        // a prior on another grid is left out rather than misread
        let other = RegionSpec { lung_prior: Some(vec![vec![1.0, 0.2, 1.0]]), ..spec(0.0) };
        assert_eq!(localisation_map(&cam, Some(&opacity), &other), alone);
    }

    /// The reader's peak for a 7×7 map over a 700×700 film that fills the image, in cells (x, y).
    fn peak_cell(cam: &[f32]) -> [f32; 2] {
        let corners = [[0.0, 0.0], [700.0, 0.0], [700.0, 700.0], [0.0, 700.0]];
        let f = CamField::new(cam, 7, 7, &corners, 700.0, 700.0).unwrap();
        let ([x, y], _) = f.analyse(&RegionSpec::default(), 700, 700, 3, false);
        [x / 100.0 - 0.5, y / 100.0 - 0.5]
    }

    #[test]
    fn the_peak_is_the_centre_of_the_hot_region_not_its_hottest_rim() {
        // a hot streak along row 3, columns 1-5, a shade hotter at its left end: the peak is near its middle
        let mut cam = vec![0.0; 49];
        for c in 1..=5 {
            cam[3 * 7 + c] = if c == 1 { 5.0 } else { 4.6 };
        }
        let [x, y] = peak_cell(&cam);
        assert!((x - 3.0).abs() < 0.6 && (y - 3.0).abs() < 0.3, "peak at cell {x},{y}");
        // a weaker, larger region elsewhere does not pull the peak off the region holding the maximum
        for (r, c) in [(0, 4), (0, 5), (0, 6), (1, 4), (1, 5), (1, 6)] {
            cam[r * 7 + c] = 4.4;
        }
        let [x2, y2] = peak_cell(&cam);
        assert!((x2 - x).abs() < 0.1 && (y2 - y).abs() < 0.1, "peak moved to {x2},{y2}");
    }

    #[test]
    fn a_ring_keeps_its_peak_on_the_ring() {
        // hot cells all round the centre cell, hottest at the top-left corner: the ring's centre is cold, so
        // the peak stays at the maximum
        let mut cam = vec![0.0; 49];
        for r in 1..=5 {
            for c in 1..=5 {
                if r == 1 || r == 5 || c == 1 || c == 5 {
                    cam[r * 7 + c] = if (r, c) == (1, 1) { 6.0 } else { 5.0 };
                }
            }
        }
        let [x, y] = peak_cell(&cam);
        assert!(x < 1.5 && y < 1.5, "peak at cell {x},{y}");
        // a NaN in the map gives a finite peak, never a NaN one
        cam[24] = f32::NAN;
        let [x, y] = peak_cell(&cam);
        assert!(x.is_finite() && y.is_finite(), "peak at cell {x},{y}");
    }

    #[test]
    fn peak_and_region_follow_the_hot_cell_through_the_film_map() {
        // 7x7 map, hot over columns 1-2, rows 4-5; film fills the right half of a 200x100 image
        let mut cam = vec![0.0; 49];
        for (r, c) in [(4, 1), (4, 2), (5, 1), (5, 2)] {
            cam[r * 7 + c] = 5.0;
        }
        let corners = [[100.0, 0.0], [200.0, 0.0], [200.0, 100.0], [100.0, 100.0]];
        let f = CamField::new(&cam, 7, 7, &corners, 50.0, 50.0).unwrap();
        let ([px, py], r) = f.analyse(&RegionSpec::default(), 200, 100, 3, true);
        // the peak lies on the plateau between the four hot cell centres
        let (x0, x1) = (100.0 + 1.5 / 7.0 * 100.0, 100.0 + 2.5 / 7.0 * 100.0);
        let (y0, y1) = (4.5 / 7.0 * 100.0, 5.5 / 7.0 * 100.0);
        assert!(px >= x0 - 1.0 && px <= x1 + 1.0 && py >= y0 - 1.0 && py <= y1 + 1.0, "peak {px},{py}");
        let (ex, ey) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
        assert_eq!(r.len(), 1);
        assert!(f.analyse(&RegionSpec::default(), 200, 100, 3, false).1.is_empty());
        let r = &r[0];
        assert!(r.x <= ex && ex <= r.x + r.w && r.y <= ey && ey <= r.y + r.h);
        assert!(r.x >= 100.0 && r.w < 40.0);
    }

    #[test]
    fn the_peaks_region_is_kept_however_small_and_comes_first() {
        // 14x14 map: one hot cell (the maximum, far below min_area_fraction on its own) and a larger, a
        // shade cooler but still hot block elsewhere
        let mut cam = vec![0.0; 196];
        cam[3 * 14 + 3] = 12.0;
        for (r, c) in (8..12).flat_map(|r| (7..12).map(move |c| (r, c))) {
            cam[r * 14 + c] = 9.5;
        }
        let corners = [[0.0, 0.0], [700.0, 0.0], [700.0, 700.0], [0.0, 700.0]];
        let f = CamField::new(&cam, 14, 14, &corners, 700.0, 700.0).unwrap();
        let spec = RegionSpec { min_area_fraction: 0.05, ..RegionSpec::default() };
        let ([px, py], r) = f.analyse(&spec, 700, 700, 3, true);
        assert!((px - 175.0).abs() < 30.0 && (py - 175.0).abs() < 30.0, "peak {px},{py}");
        assert_eq!(r.len(), 2, "{r:?}");
        let holds = |g: &Region, x: f32, y: f32| g.x <= x && x <= g.x + g.w && g.y <= y && y <= g.y + g.h;
        assert!(holds(&r[0], px, py) && r[0].w * r[0].h < 0.05 * 700.0 * 700.0, "{:?}", r[0]);
        assert!(holds(&r[1], 475.0, 500.0), "{:?}", r[1]);
        // a small region that does not hold the peak is still dropped
        let mut speck = cam.clone();
        speck[12 * 14 + 1] = 9.8;
        let g = CamField::new(&speck, 14, 14, &corners, 700.0, 700.0).unwrap();
        assert_eq!(g.analyse(&spec, 700, 700, 3, true).1.len(), 2);
    }
}
