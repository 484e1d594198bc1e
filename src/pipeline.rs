//! Inference with trained models: reconstruct and score test images, sample
//! and decode latents. Used by the trainer's per-epoch previews and by the
//! `sample`, `eval` and `denoise` commands.

use std::path::Path;

use burn::prelude::*;

use crate::config::ExperimentConfig;
use crate::diffusion::NoiseSchedule;
use crate::diffusion::sampler::{self, SampleError, SampleRequest, to_vec};
use crate::metrics::ImageMetrics;
use crate::model::{Autoencoder, Unet};
use crate::run;
use crate::run::checkpoint::{CheckpointError, RunDir, TrainState};
use crate::train::events::{DecodedFrame, EvalSummary};

pub const SIDE: usize = 28;
pub const PIXELS: usize = SIDE * SIDE;
/// Images per forward pass when evaluating: bounds memory, keeps batches large.
const CHUNK: usize = 500;
/// Decoded denoising frames kept by one generation, at most: the scrubber
/// needs no more, and memory stays bounded whatever T and N are.
pub const MAX_CAPTURE_FRAMES: usize = 1000;
/// Images sampled at once by `generate_many`.
const GENERATE_BATCH: usize = 1000;

pub const MAX_CAPTURE_BYTES: usize = 256 << 20;

/// How many frames of `n` samples fit the capture budget: each keeps x_t and
/// x̂0 as latents and as decoded images, in f32.
pub fn capture_cap(n: usize, latent_dim: usize) -> usize {
    let per_frame = n.max(1) * 2 * (latent_dim + PIXELS) * 4;
    (MAX_CAPTURE_BYTES / per_frame).clamp(2, MAX_CAPTURE_FRAMES)
}

/// Reconstructions, latents and per-image metrics of a set of images.
pub struct Reconstruction {
    pub images: Vec<f32>,
    pub latents: Vec<f32>,
    pub metrics: Vec<ImageMetrics>,
}

impl Reconstruction {
    pub fn summary(&self) -> EvalSummary {
        let n = self.metrics.len().max(1) as f64;
        let mean = |f: fn(&ImageMetrics) -> f64| self.metrics.iter().map(f).sum::<f64>() / n;
        EvalSummary {
            // Identical images have infinite PSNR; cap it so a mean stays finite.
            psnr: self.metrics.iter().map(|m| m.psnr.min(100.0)).sum::<f64>() / n,
            ssim: mean(|m| m.ssim),
            ssim_gaussian: mean(|m| m.ssim_gaussian),
            images: self.metrics.len(),
        }
    }
}

/// Reconstruct the first `count` images of `images` ([N,1,28,28] on the
/// autoencoder's device) and score them against `pixels` (host copy).
pub fn reconstruct(
    ae: &Autoencoder,
    images: &Tensor<4>,
    pixels: &[f32],
    count: usize,
) -> Reconstruction {
    let mut out = Reconstruction {
        images: Vec::with_capacity(count * PIXELS),
        latents: Vec::new(),
        metrics: Vec::with_capacity(count),
    };
    for start in (0..count).step_by(CHUNK) {
        let len = CHUNK.min(count - start);
        let batch = images.clone().narrow(0, start, len);
        let latents = ae.encode(batch);
        out.latents.extend(to_vec(latents.clone()));
        out.images.extend(to_vec(ae.decode(latents)));
    }
    out.metrics = ImageMetrics::compute_batch(&pixels[..count * PIXELS], &out.images, SIDE, SIDE);
    out
}

/// Decode latents given in the diffusion's (scaled) space into images.
pub fn decode_scaled(ae: &Autoencoder, latents: &[f32], scale: f32, device: &Device) -> Vec<f32> {
    let latent_dim = ae.latent_dim();
    let n = latents.len() / latent_dim;
    let mut out = Vec::with_capacity(n * PIXELS);
    for start in (0..n).step_by(CHUNK) {
        let len = CHUNK.min(n - start);
        let chunk = latents[start * latent_dim..(start + len) * latent_dim].to_vec();
        let t = Tensor::<2>::from_data(TensorData::new(chunk, [len, latent_dim]), device)
            .div_scalar(scale);
        out.extend(to_vec(ae.decode(t)));
    }
    out
}

/// Trained models for inference: loaded from a run directory, or lent by a
/// trainer during its diffusion stage.
#[derive(Clone)]
pub struct LatentDiffusion {
    pub cfg: ExperimentConfig,
    pub state: TrainState,
    pub ae: Autoencoder,
    pub unet: Unet,
    pub schedule: NoiseSchedule,
    pub device: Device,
}

impl LatentDiffusion {
    /// Load the autoencoder and the U-Net (its EMA weights when the run
    /// kept them) from `dir`'s last checkpoint. A trainer may swap in a new
    /// checkpoint while this reads: both models must come from one
    /// checkpoint, so a read during which state.json changed is done again.
    pub fn load(dir: &Path, device: &Device) -> Result<Self, CheckpointError> {
        const ATTEMPTS: u64 = 8;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (run, cfg, state) = RunDir::open(dir)?;
            let loaded = Self::load_from(&run, cfg, state.clone(), device);
            // Same state after both models as before them: no save
            // swapped checkpoints in between.
            let unchanged = run.read_state().ok() == Some(state);
            match loaded {
                Ok(model) if unchanged => return Ok(model),
                Err(e) if unchanged => return Err(e),
                // A read that failed or mixed because a save swapped files
                // under it, every time: say so, not what the swap broke.
                _ if attempt == ATTEMPTS => {
                    return Err(CheckpointError::Invalid {
                        path: dir.to_path_buf(),
                        message: "the checkpoint kept changing while it was read (a trainer \
                                  saving very often?); try again"
                            .into(),
                    });
                }
                _ => std::thread::sleep(std::time::Duration::from_millis(20 * attempt)),
            }
        }
    }

    fn load_from(
        run: &RunDir,
        cfg: ExperimentConfig,
        state: Option<TrainState>,
        device: &Device,
    ) -> Result<Self, CheckpointError> {
        let state = state.ok_or_else(|| CheckpointError::Invalid {
            path: run.root().to_path_buf(),
            message: "has no checkpoint yet; train it first (latentlab train --run-dir DIR)".into(),
        })?;
        let ae = run.load_module(Autoencoder::new(&cfg.autoencoder, device), run::AUTOENCODER)?;
        let in_channels = cfg.autoencoder.latent_shape[0];
        let name = if run.has_module(run::UNET_EMA) {
            run::UNET_EMA
        } else {
            run::UNET
        };
        let unet = run.load_module(Unet::new(&cfg.unet, in_channels, device), name)?;
        Ok(Self {
            schedule: NoiseSchedule::new(&cfg.diffusion),
            cfg,
            state,
            ae,
            unet,
            device: device.clone(),
        })
    }

    /// A sampling request from the run's own sampling settings.
    pub fn default_request(&self, n: usize, seed: u64) -> SampleRequest {
        SampleRequest::from_config(&self.cfg.sampling, n, seed, self.state.latent_bound)
    }

    /// Sample `req.n` images in batches of at most 1,000 (no frames), each
    /// batch with its own seed derived from the request's, so any `n` fits
    /// in memory; `progress(images done)` after every sampler step and
    /// batch, false cancels.
    pub fn generate_many(
        &self,
        req: &SampleRequest,
        progress: &mut dyn FnMut(usize) -> bool,
    ) -> Result<Vec<f32>, SampleError> {
        let mut images = Vec::with_capacity(req.n * PIXELS);
        for (k, start) in (0..req.n).step_by(GENERATE_BATCH).enumerate() {
            let mut part = req.clone();
            part.n = GENERATE_BATCH.min(req.n - start);
            part.seed = req.seed.wrapping_add(k as u64 * 1_000_003);
            part.capture = sampler::Capture::None;
            part.classes = req
                .classes
                .as_ref()
                .map(|c| c[start..start + part.n].to_vec());
            let (imgs, _) = self.generate(&part, &mut |_, _| progress(start))?;
            images.extend(imgs);
            if !progress(start + part.n) {
                return Err(SampleError::Cancelled);
            }
        }
        Ok(images)
    }

    /// Sample and decode: images [n·784] in [0, 1], plus decoded frames.
    pub fn generate(
        &self,
        req: &SampleRequest,
        progress: &mut dyn FnMut(usize, usize) -> bool,
    ) -> Result<(Vec<f32>, Vec<DecodedFrame>), SampleError> {
        generate(
            &self.ae,
            &self.unet,
            &self.schedule,
            self.cfg.autoencoder.latent_shape,
            self.state.latent_scale,
            req,
            &self.device,
            progress,
        )
    }
}

/// Sample latents with `unet`, then decode the result and any captured frames.
#[allow(clippy::too_many_arguments)]
pub fn generate(
    ae: &Autoencoder,
    unet: &Unet,
    schedule: &NoiseSchedule,
    latent_shape: [usize; 3],
    scale: f32,
    req: &SampleRequest,
    device: &Device,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<(Vec<f32>, Vec<DecodedFrame>), SampleError> {
    let out = sampler::sample(unet, schedule, latent_shape, req, device, progress)?;
    let images = decode_scaled(ae, &to_vec(out.latents), scale, device);
    let frames = out
        .frames
        .into_iter()
        .map(|f| DecodedFrame {
            t: f.t,
            x_t: decode_scaled(ae, &f.x_t, scale, device),
            x0_pred: decode_scaled(ae, &f.x0_pred, scale, device),
        })
        .collect();
    Ok((images, frames))
}
