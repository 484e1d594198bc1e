//! The Fréchet distance between two Gaussians fitted to feature sets:
//! |μ₁−μ₂|² + Tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^½), in f64, with Tr((Σ₁Σ₂)^½) computed
//! as Σ√λ of the symmetric matrix Σ₁^½ Σ₂ Σ₁^½ (same spectrum, and
//! symmetric, so a Jacobi eigen-solver is exact enough and dependency-free).

/// Mean and (unbiased) covariance of `n` rows of `dim` features.
pub fn moments(rows: &[f32], dim: usize) -> (Vec<f64>, Vec<f64>) {
    let n = rows.len() / dim;
    assert!(n >= 2, "need at least two feature rows");
    let mut mean = vec![0.0; dim];
    for r in rows.chunks(dim) {
        for (m, &v) in mean.iter_mut().zip(r) {
            *m += v as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let mut cov = vec![0.0; dim * dim];
    let mut centred = vec![0.0; dim];
    for r in rows.chunks(dim) {
        for (c, (&v, m)) in centred.iter_mut().zip(r.iter().zip(&mean)) {
            *c = v as f64 - m;
        }
        for i in 0..dim {
            let ci = centred[i];
            if ci == 0.0 {
                continue;
            }
            for j in i..dim {
                cov[i * dim + j] += ci * centred[j];
            }
        }
    }
    for i in 0..dim {
        for j in i..dim {
            let v = cov[i * dim + j] / (n as f64 - 1.0);
            cov[i * dim + j] = v;
            cov[j * dim + i] = v;
        }
    }
    (mean, cov)
}

/// Eigenvalues and eigenvectors (columns) of a symmetric matrix, by cyclic
/// Jacobi rotations.
pub fn symmetric_eigen(a: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = a.to_vec();
    let mut v = vec![0.0; n * n];
    (0..n).for_each(|i| v[i * n + i] = 1.0);
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j] * a[i * n + j])
            .sum();
        let scale: f64 = (0..n)
            .map(|i| a[i * n + i] * a[i * n + i])
            .sum::<f64>()
            .max(1e-300);
        if off <= 1e-24 * scale {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| a[i * n + i]).collect(), v)
}

fn matmul(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * n];
    for i in 0..n {
        for k in 0..n {
            let aik = a[i * n + k];
            if aik == 0.0 {
                continue;
            }
            for j in 0..n {
                out[i * n + j] += aik * b[k * n + j];
            }
        }
    }
    out
}

/// Square root of a symmetric positive semi-definite matrix.
fn sqrt_psd(a: &[f64], n: usize) -> Vec<f64> {
    let (vals, vecs) = symmetric_eigen(a, n);
    let mut out = vec![0.0; n * n];
    for (k, &l) in vals.iter().enumerate() {
        let s = l.max(0.0).sqrt();
        for i in 0..n {
            let vik = vecs[i * n + k] * s;
            for j in 0..n {
                out[i * n + j] += vik * vecs[j * n + k];
            }
        }
    }
    out
}

pub fn frechet_distance(m1: &[f64], c1: &[f64], m2: &[f64], c2: &[f64]) -> f64 {
    let n = m1.len();
    let mean_term: f64 = m1.iter().zip(m2).map(|(a, b)| (a - b).powi(2)).sum();
    let s1 = sqrt_psd(c1, n);
    let mid = matmul(&matmul(&s1, c2, n), &s1, n);
    // Symmetrise against rounding before the eigen-solve.
    let mid: Vec<f64> = (0..n * n)
        .map(|k| 0.5 * (mid[k] + mid[(k % n) * n + k / n]))
        .collect();
    let (vals, _) = symmetric_eigen(&mid, n);
    let tr_sqrt: f64 = vals.iter().map(|l| l.max(0.0).sqrt()).sum();
    let trace = |c: &[f64]| (0..n).map(|i| c[i * n + i]).sum::<f64>();
    (mean_term + trace(c1) + trace(c2) - 2.0 * tr_sqrt).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eigen_recovers_a_known_spectrum() {
        // [[2,1],[1,2]] has eigenvalues 1 and 3.
        let (mut vals, _) = symmetric_eigen(&[2.0, 1.0, 1.0, 2.0], 2);
        vals.sort_by(f64::total_cmp);
        assert!((vals[0] - 1.0).abs() < 1e-12 && (vals[1] - 3.0).abs() < 1e-12);
    }

    #[test]
    fn frechet_of_known_gaussians() {
        // Identical: 0. Shifted means only: squared distance of the means.
        let c = [1.0, 0.3, 0.3, 2.0];
        assert!(frechet_distance(&[0.0, 0.0], &c, &[0.0, 0.0], &c).abs() < 1e-10);
        assert!((frechet_distance(&[0.0, 0.0], &c, &[3.0, 4.0], &c) - 25.0).abs() < 1e-9);
        // Diagonal covariances: Σ (σ₁ − σ₂)² per axis.
        let d = frechet_distance(
            &[0.0, 0.0],
            &[4.0, 0.0, 0.0, 1.0],
            &[0.0, 0.0],
            &[1.0, 0.0, 0.0, 9.0],
        );
        assert!(
            (d - ((2.0f64 - 1.0).powi(2) + (1.0f64 - 3.0).powi(2))).abs() < 1e-9,
            "{d}"
        );
    }

    #[test]
    fn moments_are_unbiased() {
        let rows = [1.0f32, 2.0, 3.0, 4.0, 5.0, 9.0];
        let (m, c) = moments(&rows, 2);
        assert_eq!(m, vec![3.0, 5.0]);
        assert!((c[0] - 4.0).abs() < 1e-12); // var of 1,3,5
        assert!((c[3] - 13.0).abs() < 1e-12); // var of 2,4,9
        assert!((c[1] - 7.0).abs() < 1e-12 && c[1] == c[2]);
    }
}
