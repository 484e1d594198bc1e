//! 2-D projections of latent vectors: PCA (instant) and Barnes-Hut t-SNE
//! (bhtsne), seeded, with intermediate embeddings streamed to a callback that
//! can also cancel the run.

use crate::rng::Rng;

/// Raised when the snapshot callback asks t-SNE to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the projection was cancelled")]
pub struct Cancelled;

#[derive(Debug, Clone, PartialEq)]
pub struct TsneOptions {
    pub perplexity: f32,
    pub epochs: usize,
    pub theta: f32,
    pub seed: u64,
    /// Call the snapshot callback every this many epochs.
    pub snapshot_every: usize,
}

impl Default for TsneOptions {
    fn default() -> Self {
        Self {
            perplexity: 30.0,
            epochs: 750,
            theta: 0.5,
            seed: 0,
            snapshot_every: 10,
        }
    }
}

/// Project `data` (`n` rows of `dim` values) onto its first two principal
/// axes. Deterministic: power iteration from a fixed start vector.
pub fn pca(data: &[f32], dim: usize) -> Vec<[f32; 2]> {
    let n = data.len().checked_div(dim).unwrap_or(0);
    if n == 0 {
        return Vec::new();
    }
    let mut mean = vec![0f64; dim];
    for row in data.chunks_exact(dim) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += v as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let mut cov = vec![0f64; dim * dim];
    for row in data.chunks_exact(dim) {
        let c: Vec<f64> = row.iter().zip(&mean).map(|(&v, m)| v as f64 - m).collect();
        for i in 0..dim {
            for j in i..dim {
                cov[i * dim + j] += c[i] * c[j];
            }
        }
    }
    for i in 0..dim {
        for j in 0..i {
            cov[i * dim + j] = cov[j * dim + i];
        }
    }
    let first = top_eigenvector(&cov, dim, None);
    let second = top_eigenvector(&cov, dim, Some(&first));
    data.chunks_exact(dim)
        .map(|row| {
            let mut p = [0f32; 2];
            for (k, axis) in [&first, &second].into_iter().enumerate() {
                p[k] = row
                    .iter()
                    .zip(&mean)
                    .zip(axis.iter())
                    .map(|((&v, m), a)| (v as f64 - m) * a)
                    .sum::<f64>() as f32;
            }
            p
        })
        .collect()
}

/// Power iteration on a symmetric matrix, orthogonal to `exclude` if given.
fn top_eigenvector(m: &[f64], dim: usize, exclude: Option<&[f64]>) -> Vec<f64> {
    let mut v: Vec<f64> = (0..dim).map(|i| 1.0 + (i as f64 * 0.37).sin()).collect();
    for _ in 0..300 {
        if let Some(e) = exclude {
            let d: f64 = v.iter().zip(e).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(e).for_each(|(a, b)| *a -= d * b);
        }
        let mut next = vec![0f64; dim];
        for i in 0..dim {
            next[i] = (0..dim).map(|j| m[i * dim + j] * v[j]).sum();
        }
        let norm = next.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm < 1e-12 {
            break;
        }
        next.iter_mut().for_each(|x| *x /= norm);
        v = next;
    }
    if let Some(e) = exclude {
        let d: f64 = v.iter().zip(e).map(|(a, b)| a * b).sum();
        v.iter_mut().zip(e).for_each(|(a, b)| *a -= d * b);
    }
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

/// Barnes-Hut t-SNE of `data` (`n` rows of `dim`). `snapshot(epoch, points)`
/// sees the embedding every `snapshot_every` epochs; returning false cancels.
/// Fewer than 8 points fall back to PCA (t-SNE needs neighbours to work with).
pub fn tsne(
    data: &[f32],
    dim: usize,
    opts: &TsneOptions,
    snapshot: &mut (dyn FnMut(usize, &[[f32; 2]]) -> bool + Send),
) -> Result<Vec<[f32; 2]>, Cancelled> {
    let n = data.len().checked_div(dim).unwrap_or(0);
    if n < 8 {
        return Ok(pca(data, dim));
    }
    let rows: Vec<&[f32]> = data.chunks_exact(dim).collect();
    // bhtsne needs n - 1 >= 3 * perplexity.
    let perplexity = opts.perplexity.clamp(1.0, ((n - 1) / 3).max(1) as f32);
    // bhtsne's own random init is unseeded: seed it here instead.
    let init: Vec<f32> = Rng::derive(opts.seed, "tsne")
        .normals(n * 2)
        .into_iter()
        .map(|v| v * 1e-4)
        .collect();
    let every = opts.snapshot_every.max(1);
    let theta = opts.theta.max(1e-3);
    let fit = move || {
        let mut tsne: bhtsne::tSNE<f32, &[f32]> = bhtsne::tSNE::new(&rows);
        tsne.perplexity(perplexity)
            .epochs(opts.epochs.max(1))
            .initial_embedding(init);
        tsne.epoch_callback(|epoch, y| {
            if (epoch + 1) % every == 0 && !snapshot(epoch + 1, pairs(y).as_slice()) {
                // resume_unwind skips the panic hook: a quiet, catchable stop.
                std::panic::resume_unwind(Box::new(Cancelled));
            }
        });
        tsne.barnes_hut(theta, |a, b| euclidean(a, b));
        tsne.embedding()
    };
    // One thread of its own: training keeps the shared rayon pool, and
    // bhtsne's rayon sums split where threads steal work, so with more
    // threads the same seed gave another map on a busy machine.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .thread_name(|_| "latentlab-tsne".into())
        .build();
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match &pool {
        Ok(pool) => pool.install(fit),
        Err(_) => fit(),
    }));
    match run {
        Ok(y) => Ok(pairs(&y)),
        Err(payload) if payload.is::<Cancelled>() => Err(Cancelled),
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

fn euclidean(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f32>()
        .sqrt()
}

fn pairs(y: &[f32]) -> Vec<[f32; 2]> {
    y.chunks_exact(2).map(|p| [p[0], p[1]]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two well-separated clusters in 5-D.
    fn clusters(per: usize) -> Vec<f32> {
        let mut rng = Rng::new(7);
        let mut v = Vec::new();
        for c in 0..2 {
            for _ in 0..per {
                for d in 0..5 {
                    let centre = if c == 0 { 0.0 } else { 10.0 + d as f32 };
                    v.push(centre + rng.normals(1)[0] * 0.3);
                }
            }
        }
        v
    }

    fn separated(points: &[[f32; 2]], per: usize) -> bool {
        let mean = |s: &[[f32; 2]]| {
            let n = s.len() as f32;
            [
                s.iter().map(|p| p[0]).sum::<f32>() / n,
                s.iter().map(|p| p[1]).sum::<f32>() / n,
            ]
        };
        let (a, b) = (mean(&points[..per]), mean(&points[per..]));
        let spread = points[..per]
            .iter()
            .map(|p| ((p[0] - a[0]).powi(2) + (p[1] - a[1]).powi(2)).sqrt())
            .fold(0f32, f32::max);
        ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt() > 2.0 * spread
    }

    #[test]
    fn pca_separates_clusters_and_finds_the_main_axis() {
        let data = clusters(30);
        let p = pca(&data, 5);
        assert_eq!(p.len(), 60);
        assert!(separated(&p, 30));
        // Points on a line project onto the first axis only.
        let line: Vec<f32> = (0..10).flat_map(|i| [i as f32, 2.0 * i as f32]).collect();
        let q = pca(&line, 2);
        assert!(q.iter().all(|p| p[1].abs() < 1e-3), "{q:?}");
    }

    #[test]
    fn tsne_is_seeded_streams_snapshots_and_cancels() {
        let data = clusters(30);
        let opts = TsneOptions {
            perplexity: 10.0,
            epochs: 300,
            snapshot_every: 50,
            ..Default::default()
        };
        let mut seen = Vec::new();
        let a = tsne(&data, 5, &opts, &mut |e, p| {
            seen.push((e, p.len()));
            true
        })
        .unwrap();
        assert_eq!(seen.first(), Some(&(50, 60)));
        assert_eq!(seen.len(), 6);
        assert!(separated(&a, 30));
        let b = tsne(&data, 5, &opts, &mut |_, _| true).unwrap();
        assert_eq!(a, b, "same seed, same embedding");
        let mut calls = 0;
        let stopped = tsne(&data, 5, &opts, &mut |_, _| {
            calls += 1;
            calls < 2
        });
        assert_eq!(stopped, Err(Cancelled));
        assert_eq!(calls, 2);
    }
}
