//! Batched reverse diffusion: ancestral DDPM and DDIM, with optional capture
//! of x_t and the predicted x̂0 at chosen timesteps (for the scrubber and the
//! denoising animation).

use std::collections::BTreeSet;

use burn::prelude::*;

use super::schedule::NoiseSchedule;
use crate::config::{SamplerKind, SamplingConfig, VarianceKind};
use crate::model::Unet;
use crate::rng::Rng;

#[derive(Debug, Clone, PartialEq)]
pub enum Capture {
    None,
    /// Every timestep the sampler visits.
    All,
    /// Only these timesteps (those the sampler does not visit are skipped).
    At(BTreeSet<usize>),
}

#[derive(Debug, Clone)]
pub struct SampleRequest {
    pub n: usize,
    pub sampler: SamplerKind,
    /// DDIM steps; DDPM always walks all T.
    pub steps: usize,
    pub eta: f64,
    pub variance: VarianceKind,
    pub seed: u64,
    /// Clip x̂0 to [−b, b] (in the diffusion's latent space) at every step.
    pub clip_x0: Option<f32>,
    pub capture: Capture,
    /// Start from this x_T ([n·latent_dim], standardised space) instead of
    /// fresh noise — used for interpolation.
    pub initial: Option<Vec<f32>>,
}

impl SampleRequest {
    /// The one place a request is built: a config's sampling settings for
    /// `n` samples from `seed`, nothing captured, fresh noise. The CLI, the
    /// window and the trainer's preview start here and change what they need.
    pub fn from_config(s: &SamplingConfig, n: usize, seed: u64, clip_x0: Option<f32>) -> Self {
        Self {
            n,
            sampler: s.sampler,
            steps: s.steps,
            eta: s.eta,
            variance: s.variance,
            seed,
            clip_x0,
            capture: Capture::None,
            initial: None,
        }
    }
}

/// One captured reverse step: the state entering timestep `t` and the
/// model's estimate of the clean latent from it. Both [n·latent_dim].
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub t: usize,
    pub x_t: Vec<f32>,
    pub x0_pred: Vec<f32>,
}

#[derive(Debug)]
pub struct SampleOutput {
    /// Final latents [n, latent_dim] in the diffusion's (standardised) space.
    pub latents: Tensor<2>,
    pub frames: Vec<Frame>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SampleError {
    #[error("sampling was cancelled")]
    Cancelled,
    #[error(
        "sampling diverged: the final latents hold NaN or infinite values; turn on \
         diffusion.clip_x0, or use a schedule whose √ᾱ_T is not near 0"
    )]
    NonFinite,
    #[error("the starting noise holds {got} values; n × latent_dim is {want}")]
    InitialLength { got: usize, want: usize },
}

/// The timesteps DDIM visits, from T−1 down to 0, evenly spaced.
pub fn ddim_timesteps(total: usize, steps: usize) -> Vec<usize> {
    let steps = steps.clamp(1, total);
    if steps == 1 {
        return vec![total - 1];
    }
    let mut ts: Vec<usize> = (0..steps)
        .map(|i| ((i as f64) * (total - 1) as f64 / (steps - 1) as f64).round() as usize)
        .collect();
    ts.dedup();
    ts.reverse();
    ts
}

/// The timesteps `req` visits on a schedule of `total` steps, high t first.
pub fn visited_timesteps(total: usize, req: &SampleRequest) -> Vec<usize> {
    match req.sampler {
        SamplerKind::Ddpm => (0..total).rev().collect(),
        SamplerKind::Ddim => ddim_timesteps(total, req.steps),
    }
}

impl Capture {
    /// At most `max` of `visits`, evenly spread, always keeping the first
    /// (pure noise) and the last (t = 0): a long DDPM chain with many
    /// samples would otherwise capture tens of GB.
    pub fn spread(visits: &[usize], max: usize) -> Self {
        let max = max.max(2);
        if visits.len() <= max {
            return Capture::At(visits.iter().copied().collect());
        }
        let last = visits.len() - 1;
        Capture::At(
            (0..max)
                .map(|k| visits[(k * last).div_ceil(max - 1).min(last)])
                .collect(),
        )
    }
}

/// Run the reverse process. `progress(done, total)` is called after every
/// step; returning false cancels.
pub fn sample(
    unet: &Unet,
    schedule: &NoiseSchedule,
    latent_shape: [usize; 3],
    req: &SampleRequest,
    device: &Device,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<SampleOutput, SampleError> {
    let [c, h, w] = latent_shape;
    let dim = c * h * w;
    let n = req.n;
    let mut rng = Rng::derive(req.seed, "sampling");
    let noise = |rng: &mut Rng| {
        Tensor::<4>::from_data(TensorData::new(rng.normals(n * dim), [n, c, h, w]), device)
    };
    let mut x = match &req.initial {
        Some(v) => {
            if v.len() != n * dim {
                return Err(SampleError::InitialLength {
                    got: v.len(),
                    want: n * dim,
                });
            }
            Tensor::<4>::from_data(TensorData::new(v.clone(), [n, c, h, w]), device)
        }
        None => noise(&mut rng),
    };
    let visits = visited_timesteps(schedule.len(), req);
    let wants = |t: usize| match &req.capture {
        Capture::None => false,
        Capture::All => true,
        Capture::At(set) => set.contains(&t),
    };
    let mut frames = Vec::new();
    for (i, &t) in visits.iter().enumerate() {
        let mut eps = unet.forward(x.clone(), &vec![t; n]);
        let ab = schedule.alpha_bars[t];
        let mut x0_pred =
            (x.clone() - eps.clone().mul_scalar((1.0 - ab).sqrt())).div_scalar(ab.sqrt());
        if let Some(bound) = req.clip_x0 {
            // Keep ε consistent with the clipped x̂0, so both samplers'
            // updates (written in ε) move towards the clipped estimate.
            x0_pred = x0_pred.clamp(-bound, bound);
            eps = (x.clone() - x0_pred.clone().mul_scalar(ab.sqrt())).div_scalar((1.0 - ab).sqrt());
        }
        if wants(t) {
            frames.push(Frame {
                t,
                x_t: to_vec(x.clone()),
                x0_pred: to_vec(x0_pred.clone()),
            });
        }
        x = match req.sampler {
            SamplerKind::Ddpm => {
                let beta = schedule.betas[t];
                let mean = (x - eps.mul_scalar(beta / (1.0 - ab).sqrt()))
                    .div_scalar(schedule.alphas[t].sqrt());
                // No noise on the last step: x_0 is the mean (the seed added it).
                if t == 0 {
                    mean
                } else {
                    let var = match req.variance {
                        VarianceKind::Beta => beta,
                        VarianceKind::Posterior => schedule.posterior_variance(t),
                    };
                    mean + noise(&mut rng).mul_scalar(var.sqrt())
                }
            }
            SamplerKind::Ddim => {
                let ab_prev = schedule.alpha_bar(visits.get(i + 1).copied());
                let sigma = req.eta
                    * ((1.0 - ab_prev) / (1.0 - ab)).sqrt()
                    * (1.0 - ab / ab_prev).max(0.0).sqrt();
                let dir = (1.0 - ab_prev - sigma * sigma).max(0.0).sqrt();
                let next = x0_pred.mul_scalar(ab_prev.sqrt()) + eps.mul_scalar(dir);
                if sigma > 0.0 {
                    next + noise(&mut rng).mul_scalar(sigma)
                } else {
                    next
                }
            }
        };
        if !progress(i + 1, visits.len()) {
            return Err(SampleError::Cancelled);
        }
    }
    // One host read of the result: a diverged chain is an error, never
    // silently written NaN images.
    if to_vec(x.clone()).iter().any(|v| !v.is_finite()) {
        return Err(SampleError::NonFinite);
    }
    Ok(SampleOutput {
        latents: x.reshape([n, dim]),
        frames,
    })
}

pub fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("float tensor converts to f32")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddim_visits_evenly_from_the_top() {
        assert_eq!(ddim_timesteps(1000, 1), vec![999]);
        let ts = ddim_timesteps(1000, 50);
        assert_eq!(ts.len(), 50);
        assert_eq!(ts[0], 999);
        assert_eq!(*ts.last().unwrap(), 0);
        assert!(ts.windows(2).all(|w| w[0] > w[1]));
        assert_eq!(ddim_timesteps(10, 10), (0..10).rev().collect::<Vec<_>>());
    }
}
