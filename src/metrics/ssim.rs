//! Structural similarity (SSIM) for single-channel images, reproducing
//! scikit-image's `structural_similarity` (0.2x) so that numbers reported here
//! can be compared with Python tooling.
//!
//! What skimage does, and what this module copies step for step:
//! 1. filter `x`, `y`, `x*x`, `y*y`, `x*y` over the whole image with
//!    `scipy.ndimage.uniform_filter` (7x7) or `gaussian_filter`
//!    (sigma 1.5, truncate 3.5 -> 11 taps), both with `mode='reflect'`;
//! 2. build the SSIM map from those local moments;
//! 3. crop `pad = (win_size - 1) / 2` pixels from every border and average.
//!
//! Because the crop removes exactly the pixels whose window reaches past the
//! border, the mean never depends on the boundary mode; [`ssim`] therefore
//! only filters the cropped region. The boundary mode does matter for the full
//! map, which [`ssim_map`] returns (equal to skimage's `full=True` output).
//! Everything is computed in f64 because skimage is run on float64 inputs.

use std::ops::Range;

/// skimage's default stabilising constants (Wang et al. 2004).
const K1: f64 = 0.01;
const K2: f64 = 0.03;
/// Gaussian window parameters skimage uses when `gaussian_weights=True`.
const SIGMA: f64 = 1.5;
const TRUNCATE: f64 = 3.5;

/// Which of the two common SSIM configurations to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SsimKind {
    /// skimage defaults: 7x7 uniform window, sample covariance (N-1).
    Uniform7,
    /// Wang et al. 2004: 11x11 Gaussian window (sigma 1.5), population
    /// covariance; skimage's `gaussian_weights=True, sigma=1.5,
    /// use_sample_covariance=False`.
    Gaussian11,
}

impl SsimKind {
    /// Side length of the sliding window, which is also what skimage uses to
    /// decide the border crop.
    pub fn win_size(self) -> usize {
        2 * self.radius() + 1
    }

    fn radius(self) -> usize {
        match self {
            SsimKind::Uniform7 => 3,
            // int(truncate * sigma + 0.5) as in scipy.ndimage = 5
            SsimKind::Gaussian11 => (TRUNCATE * SIGMA + 0.5) as usize,
        }
    }

    /// Normalised 1-D weights; both filters are separable products of these.
    fn kernel(self) -> Vec<f64> {
        match self {
            SsimKind::Uniform7 => vec![1.0 / 7.0; 7],
            SsimKind::Gaussian11 => gaussian_kernel(SIGMA, self.radius()),
        }
    }

    /// Covariance normalisation: NP/(NP-1) for skimage's sample covariance,
    /// 1 for the population covariance of the Gaussian variant.
    fn cov_norm(self) -> f64 {
        match self {
            SsimKind::Uniform7 => {
                let np = (self.win_size() * self.win_size()) as f64;
                np / (np - 1.0)
            }
            SsimKind::Gaussian11 => 1.0,
        }
    }
}

/// scipy's `_gaussian_kernel1d(sigma, 0, radius)`: exp(-x^2 / 2 sigma^2)
/// sampled at integer offsets and normalised to sum 1 (not the analytic
/// normalisation, which would not sum to 1 after truncation).
fn gaussian_kernel(sigma: f64, radius: usize) -> Vec<f64> {
    let r = radius as i64;
    let s2 = sigma * sigma;
    let w: Vec<f64> = (-r..=r)
        .map(|x| (-0.5 / s2 * (x * x) as f64).exp())
        .collect();
    let sum: f64 = w.iter().sum();
    w.into_iter().map(|v| v / sum).collect()
}

/// scipy.ndimage `mode='reflect'` (half-sample symmetric):
/// `d c b a | a b c d | d c b a`. Periodic with period 2n, so it is correct
/// for any offset, not just one reflection.
fn reflect(i: isize, n: usize) -> usize {
    let n = n as isize;
    let m = i.rem_euclid(2 * n);
    (if m >= n { 2 * n - 1 - m } else { m }) as usize
}

/// Reusable buffers, so a batch allocates once instead of per image.
struct Workspace {
    kind: SsimKind,
    kernel: Vec<f64>,
    width: usize,
    height: usize,
    /// x, y, x*x, y*y, x*y as f64 planes.
    planes: [Vec<f64>; 5],
    /// Vertical pass output for the rows being evaluated.
    tmp: Vec<f64>,
    /// Filtered moments for the evaluated region (row-major in that region).
    moments: [Vec<f64>; 5],
}

impl Workspace {
    fn new(width: usize, height: usize, kind: SsimKind) -> Self {
        let n = width * height;
        Workspace {
            kind,
            kernel: kind.kernel(),
            width,
            height,
            planes: std::array::from_fn(|_| vec![0.0; n]),
            tmp: vec![0.0; n],
            moments: std::array::from_fn(|_| vec![0.0; n]),
        }
    }

    /// Computes the SSIM map over `rows x cols` and feeds each value to `sink`
    /// in row-major order.
    fn run(
        &mut self,
        a: &[f32],
        b: &[f32],
        data_range: f64,
        rows: Range<usize>,
        cols: Range<usize>,
        mut sink: impl FnMut(f64),
    ) {
        let [px, py, pxx, pyy, pxy] = &mut self.planes;
        for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
            let (x, y) = (f64::from(x), f64::from(y));
            px[i] = x;
            py[i] = y;
            pxx[i] = x * x;
            pyy[i] = y * y;
            pxy[i] = x * y;
        }
        for p in 0..5 {
            filter_separable(
                &self.planes[p],
                self.width,
                self.height,
                &self.kernel,
                rows.clone(),
                cols.clone(),
                &mut self.tmp,
                &mut self.moments[p],
            );
        }

        let cov_norm = self.kind.cov_norm();
        let c1 = (K1 * data_range).powi(2);
        let c2 = (K2 * data_range).powi(2);
        let n = rows.len() * cols.len();
        let [ux, uy, uxx, uyy, uxy] = &self.moments;
        for k in 0..n {
            let (ux, uy) = (ux[k], uy[k]);
            let vx = cov_norm * (uxx[k] - ux * ux);
            let vy = cov_norm * (uyy[k] - uy * uy);
            let vxy = cov_norm * (uxy[k] - ux * uy);
            // Same grouping as skimage, to stay within rounding of it.
            let a1 = 2.0 * ux * uy + c1;
            let a2 = 2.0 * vxy + c2;
            let b1 = ux * ux + uy * uy + c1;
            let b2 = vx + vy + c2;
            sink((a1 * a2) / (b1 * b2));
        }
    }

    /// Mean SSIM over skimage's cropped region.
    fn mean(&mut self, a: &[f32], b: &[f32], data_range: f64) -> f64 {
        let pad = self.kind.radius();
        let rows = pad..self.height - pad;
        let cols = pad..self.width - pad;
        let count = rows.len() * cols.len();
        let mut sum = 0.0;
        self.run(a, b, data_range, rows, cols, |s| sum += s);
        sum / count as f64
    }
}

/// Separable correlation of `src` (width x height, row-major) with `kernel`
/// along axis 0 then axis 1, as scipy does, evaluated only at `rows x cols`
/// with reflect boundaries. The result is written row-major into `out`
/// (`rows.len() * cols.len()` values).
#[allow(clippy::too_many_arguments)]
fn filter_separable(
    src: &[f64],
    width: usize,
    height: usize,
    kernel: &[f64],
    rows: Range<usize>,
    cols: Range<usize>,
    tmp: &mut [f64],
    out: &mut [f64],
) {
    let r = kernel.len() / 2;
    // Vertical pass: whole rows at a time so the inner loop is a contiguous
    // axpy the compiler can vectorise. Every column is kept because the
    // horizontal pass reads up to `r` columns outside `cols`.
    for (ti, i) in rows.clone().enumerate() {
        let dst = &mut tmp[ti * width..(ti + 1) * width];
        dst.fill(0.0);
        for (k, &w) in kernel.iter().enumerate() {
            let si = reflect(i as isize + k as isize - r as isize, height);
            let srow = &src[si * width..(si + 1) * width];
            for (d, &s) in dst.iter_mut().zip(srow) {
                *d += w * s;
            }
        }
    }
    // Horizontal pass: a plain dot product where the window is inside the
    // row, reflected indices only near the borders.
    let ncols = cols.len();
    for ti in 0..rows.len() {
        let trow = &tmp[ti * width..(ti + 1) * width];
        for (oj, j) in cols.clone().enumerate() {
            let v = if j >= r && j + r < width {
                trow[j - r..=j + r]
                    .iter()
                    .zip(kernel)
                    .map(|(&t, &w)| t * w)
                    .sum()
            } else {
                kernel
                    .iter()
                    .enumerate()
                    .map(|(k, &w)| w * trow[reflect(j as isize + k as isize - r as isize, width)])
                    .sum()
            };
            out[ti * ncols + oj] = v;
        }
    }
}

fn check_shape(a: &[f32], b: &[f32], width: usize, height: usize, kind: SsimKind, what: &str) {
    assert_eq!(
        a.len(),
        b.len(),
        "{what}: images differ in length ({} vs {} pixels)",
        a.len(),
        b.len()
    );
    // skimage raises ValueError here; an image smaller than the window has no
    // cropped region to average, so it is a caller error too.
    let win = kind.win_size();
    assert!(
        width >= win && height >= win,
        "{what}: {width}x{height} image is smaller than the {win}x{win} {kind:?} window"
    );
}

/// Mean SSIM between two `width x height` grayscale images (row-major), as
/// `skimage.metrics.structural_similarity(a, b, data_range=data_range, ...)`
/// with the parameters chosen by `kind`. 1.0 for identical images.
///
/// Panics if `a.len() != b.len()`, `a.len() != width * height`, or the image
/// is smaller than the window (7 or 11 pixels per side).
pub fn ssim(
    a: &[f32],
    b: &[f32],
    width: usize,
    height: usize,
    data_range: f64,
    kind: SsimKind,
) -> f64 {
    check_shape(a, b, width, height, kind, "ssim");
    assert_eq!(
        a.len(),
        width * height,
        "ssim: image has {} pixels, expected {width}x{height}",
        a.len()
    );
    Workspace::new(width, height, kind).mean(a, b, data_range)
}

/// Per-image mean SSIM over a batch of concatenated `width x height` images
/// (`n = a.len() / (width * height)`); buffers are shared across the batch.
///
/// Panics on mismatched lengths, a length that is not a multiple of
/// `width * height`, or images smaller than the window.
pub fn ssim_batch(
    a: &[f32],
    b: &[f32],
    width: usize,
    height: usize,
    data_range: f64,
    kind: SsimKind,
) -> Vec<f64> {
    check_shape(a, b, width, height, kind, "ssim_batch");
    let pixels = width * height;
    assert_eq!(
        a.len() % pixels,
        0,
        "ssim_batch: length {} is not a multiple of {width}x{height}",
        a.len()
    );
    let mut ws = Workspace::new(width, height, kind);
    a.chunks_exact(pixels)
        .zip(b.chunks_exact(pixels))
        .map(|(x, y)| ws.mean(x, y, data_range))
        .collect()
}

/// The full `width x height` SSIM map (row-major), equal to skimage's
/// `structural_similarity(..., full=True)[1]`, borders included (those use
/// reflect padding and are excluded from [`ssim`]'s mean).
///
/// Panics under the same conditions as [`ssim`].
pub fn ssim_map(
    a: &[f32],
    b: &[f32],
    width: usize,
    height: usize,
    data_range: f64,
    kind: SsimKind,
) -> Vec<f64> {
    check_shape(a, b, width, height, kind, "ssim_map");
    assert_eq!(
        a.len(),
        width * height,
        "ssim_map: image has {} pixels, expected {width}x{height}",
        a.len()
    );
    let mut map = Vec::with_capacity(width * height);
    Workspace::new(width, height, kind).run(a, b, data_range, 0..height, 0..width, |s| map.push(s));
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    const KINDS: [SsimKind; 2] = [SsimKind::Uniform7, SsimKind::Gaussian11];

    /// Deterministic pseudo-random image in [0,1) (xorshift), no rand crate.
    fn noise(n: usize, mut seed: u64) -> Vec<f32> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed >> 40) as f32 / (1u64 << 24) as f32
            })
            .collect()
    }

    /// Direct 2-D (non-separable) filter with explicit reflect padding, as an
    /// independent reference for the separable, region-restricted one.
    fn reference_map(a: &[f32], b: &[f32], w: usize, h: usize, kind: SsimKind) -> Vec<f64> {
        let k = kind.kernel();
        let r = kind.radius() as isize;
        let filt = |f: &dyn Fn(usize) -> f64, i: usize, j: usize| {
            let mut s = 0.0;
            for di in -r..=r {
                for dj in -r..=r {
                    let ii = reflect(i as isize + di, h);
                    let jj = reflect(j as isize + dj, w);
                    s += k[(di + r) as usize] * k[(dj + r) as usize] * f(ii * w + jj);
                }
            }
            s
        };
        let x = |p: usize| f64::from(a[p]);
        let y = |p: usize| f64::from(b[p]);
        let (c1, c2, cn) = (K1 * K1, K2 * K2, kind.cov_norm());
        let mut out = vec![];
        for i in 0..h {
            for j in 0..w {
                let ux = filt(&x, i, j);
                let uy = filt(&y, i, j);
                let vx = cn * (filt(&|p| x(p) * x(p), i, j) - ux * ux);
                let vy = cn * (filt(&|p| y(p) * y(p), i, j) - uy * uy);
                let vxy = cn * (filt(&|p| x(p) * y(p), i, j) - ux * uy);
                out.push(
                    (2.0 * ux * uy + c1) * (2.0 * vxy + c2)
                        / ((ux * ux + uy * uy + c1) * (vx + vy + c2)),
                );
            }
        }
        out
    }

    #[test]
    fn reflect_is_half_sample_symmetric() {
        let got: Vec<usize> = (-4..8).map(|i| reflect(i, 4)).collect();
        assert_eq!(got, [3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0]);
        assert_eq!(reflect(-9, 4), 0); // beyond one period: -5..-8 -> 3,2,1,0
        assert_eq!(reflect(-6, 4), 2);
        assert_eq!(reflect(5, 1), 0);
    }

    #[test]
    fn gaussian_kernel_matches_scipy() {
        // scipy.ndimage._filters._gaussian_kernel1d(1.5, 0, 5)
        let scipy = [
            0.00102838008447911,
            0.007598758135239185,
            0.03600077212843083,
            0.10936068950970002,
            0.2130055377112537,
            0.26601172486179436,
        ];
        let k = SsimKind::Gaussian11.kernel();
        assert_eq!(k.len(), 11);
        for (i, &s) in scipy.iter().enumerate() {
            assert!((k[i] - s).abs() < 1e-15 && (k[10 - i] - s).abs() < 1e-15);
        }
    }

    #[test]
    fn uniform_filter_matches_scipy_reflect() {
        // scipy.ndimage.uniform_filter([1..8], size=7, mode='reflect')
        let src: Vec<f64> = (1..=8).map(f64::from).collect();
        let expected = [
            2.2857142857142856,
            2.5714285714285716,
            3.142857142857143,
            4.0,
            5.0,
            5.857142857142857,
            6.428571428571429,
            6.714285714285714,
        ];
        // As a 1-row image the vertical pass reflects onto the same row.
        let mut tmp = vec![0.0; 8];
        let mut out = vec![0.0; 8];
        let k = SsimKind::Uniform7.kernel();
        filter_separable(&src, 8, 1, &k, 0..1, 0..8, &mut tmp, &mut out);
        for (o, e) in out.iter().zip(expected) {
            assert!((o - e).abs() < 1e-12, "{out:?}");
        }
    }

    #[test]
    fn identical_images_give_one() {
        let a = noise(28 * 28, 1);
        for kind in KINDS {
            let s = ssim(&a, &a, 28, 28, 1.0, kind);
            assert!((s - 1.0).abs() < 1e-12, "{kind:?}: {s}");
        }
    }

    #[test]
    fn constant_images_hand_checked() {
        // Zero variance everywhere, so the contrast/structure term is
        // C2/C2 = 1 and SSIM = (2 m1 m2 + C1) / (m1^2 + m2^2 + C1).
        let (m1, m2) = (0.25f32, 0.75f32);
        let a = vec![m1; 12 * 12];
        let b = vec![m2; 12 * 12];
        let (m1, m2, c1) = (f64::from(m1), f64::from(m2), K1 * K1);
        let expected = (2.0 * m1 * m2 + c1) / (m1 * m1 + m2 * m2 + c1);
        for kind in KINDS {
            let s = ssim(&a, &b, 12, 12, 1.0, kind);
            assert!((s - expected).abs() < 1e-9, "{kind:?}: {s} vs {expected}");
        }
        // data_range scales the constants: range 2 -> C1 = (0.02)^2.
        let c1 = (K1 * 2.0).powi(2);
        let expected = (2.0 * m1 * m2 + c1) / (m1 * m1 + m2 * m2 + c1);
        let s = ssim(&a, &b, 12, 12, 2.0, SsimKind::Uniform7);
        assert!((s - expected).abs() < 1e-9);
    }

    #[test]
    fn separable_matches_direct_reference() {
        let (w, h) = (13, 11);
        let a = noise(w * h, 7);
        let b = noise(w * h, 8);
        for kind in KINDS {
            let map = ssim_map(&a, &b, w, h, 1.0, kind);
            let reference = reference_map(&a, &b, w, h, kind);
            for (m, r) in map.iter().zip(&reference) {
                assert!((m - r).abs() < 1e-12, "{kind:?}: {m} vs {r}");
            }
            // The mean over skimage's crop equals ssim().
            let pad = kind.radius();
            let mut sum = 0.0;
            for i in pad..h - pad {
                for j in pad..w - pad {
                    sum += map[i * w + j];
                }
            }
            let mean = sum / ((h - 2 * pad) * (w - 2 * pad)) as f64;
            let s = ssim(&a, &b, w, h, 1.0, kind);
            assert!((mean - s).abs() < 1e-12, "{kind:?}: {mean} vs {s}");
        }
    }

    #[test]
    fn batch_matches_single_and_is_symmetric() {
        let (w, h, n) = (16, 16, 3);
        let a = noise(w * h * n, 3);
        let b = noise(w * h * n, 4);
        for kind in KINDS {
            let batch = ssim_batch(&a, &b, w, h, 1.0, kind);
            assert_eq!(batch.len(), n);
            for (i, &s) in batch.iter().enumerate() {
                let r = i * w * h..(i + 1) * w * h;
                assert_eq!(s, ssim(&a[r.clone()], &b[r.clone()], w, h, 1.0, kind));
                let swapped = ssim(&b[r.clone()], &a[r], w, h, 1.0, kind);
                assert!((s - swapped).abs() < 1e-12);
                assert!(s < 1.0 && s > -1.0);
            }
        }
    }

    #[test]
    #[should_panic(expected = "differ in length")]
    fn mismatched_lengths_panic() {
        ssim(&[0.0; 49], &[0.0; 48], 7, 7, 1.0, SsimKind::Uniform7);
    }

    #[test]
    #[should_panic(expected = "smaller than the 11x11")]
    fn too_small_for_window_panics() {
        ssim(&[0.0; 100], &[0.0; 100], 10, 10, 1.0, SsimKind::Gaussian11);
    }
}
