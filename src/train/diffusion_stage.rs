//! Stage 2: train the U-Net to predict the noise added to latents of the
//! frozen encoder (ε-prediction, MSE).

use crate::run::rows::EpochRow;
use crate::run::{UNET, UNET_EMA};
use burn::prelude::*;

use super::events::{Event, Stage};
use super::optim::{FusedAdam, flatten, unflatten};
use super::trainer::{
    Ctx, EpochEnd, Outcome, StageLoop, TrainError, ensure_finite, index_tensor, lr_at, mse,
};
use crate::config::SamplerKind;
use crate::diffusion::NoiseSchedule;
use crate::diffusion::sampler::{Capture, SampleRequest, to_vec};
use crate::model::params::seeded;
use crate::model::{Autoencoder, Unet};
use crate::pipeline;
use crate::rng::Rng;
use crate::run::checkpoint::CheckpointParts;

/// Samples generated after each epoch to show progress.
const PREVIEW_SAMPLES: usize = 16;
/// The preview uses DDIM with at most this many steps, whatever the run's sampler.
const PREVIEW_STEPS: usize = 50;
/// Samples of each class in a class-conditional run's preview (a row each).
const PREVIEW_PER_CLASS: usize = 4;
/// The seed of every preview's noise, whatever the run's seed.
pub const PREVIEW_SEED: u64 = 0;

pub fn run(ctx: &mut Ctx, ae: &Autoencoder) -> Result<Outcome, TrainError> {
    let cfg = ctx.cfg.clone();
    let [c, h, w] = cfg.autoencoder.latent_shape;
    let dim = c * h * w;
    let latents = encode_all(ae, &ctx.data.train);
    if ctx.state.diffusion_step == 0 && !ctx.state.diffusion_done {
        let host = to_vec(latents.clone());
        let scale = if cfg.diffusion.standardize_latents {
            unit_variance_scale(&host)
        } else {
            1.0
        };
        ctx.state.latent_scale = scale;
        ctx.state.latent_bound = cfg
            .diffusion
            .clip_x0
            .then(|| host.iter().fold(0f32, |m, v| m.max(v.abs())) * scale);
    }
    let latents = latents.mul_scalar(ctx.state.latent_scale);
    let schedule = NoiseSchedule::new(&cfg.diffusion);

    let ad = ctx.device.clone().autodiff();
    let mut unet = seeded(&ad, cfg.seed.wrapping_add(1), || {
        Unet::new(&cfg.unet, c, &ad)
    });
    let mut optim = FusedAdam::new(cfg.diffusion_training.grad_clip);
    let resuming = ctx.state.diffusion_step > 0 || ctx.state.diffusion_done;
    if resuming {
        unet = ctx.run.load_module(unet, UNET)?;
        if !ctx.state.diffusion_done {
            ctx.run
                .load_optim(&mut optim, UNET, unet.num_params(), &ctx.device)?;
        }
    }
    // The EMA lives as one flat vector (two ops per update) and becomes a
    // module only to sample or to be saved.
    let decay = cfg.diffusion.ema_decay;
    let mut ema: Option<Tensor<1>> = (decay > 0.0).then(|| flatten(&unet));
    if resuming && decay > 0.0 {
        ema = Some(flatten(&ctx.run.load_module(unet.valid(), UNET_EMA)?));
    }
    let ema_module = |ema: &Option<Tensor<1>>, unet: &Unet| {
        ema.as_ref()
            .map(|flat| unflatten(unet.valid(), flat.clone()))
    };
    if ctx.state.diffusion_done {
        return Ok(Outcome::Finished);
    }
    let save_all = |ctx: &mut Ctx, unet: &Unet, optim: &FusedAdam, ema: &Option<Tensor<1>>| {
        save(ctx, ae, unet, Some(optim), ema_module(ema, unet).as_ref())
    };

    let mut stage = StageLoop::new(ctx, Stage::Diffusion, &cfg.diffusion_training);
    let mut step = ctx.state.diffusion_step;
    while step < stage.plan.total_steps {
        let idx = stage.batch(step);
        let n = idx.len();
        let x0 = latents
            .clone()
            .select(0, index_tensor(&idx, &ctx.device))
            .reshape([n, c, h, w]);
        // Timesteps and noise come from a stream keyed by the step, so a
        // resumed run draws exactly what an uninterrupted one would.
        let mut rng = Rng::derive(
            cfg.seed ^ (step as u64).wrapping_mul(0xA24B_AED4_963E_E407),
            "noise",
        );
        let ts: Vec<usize> = (0..n).map(|_| rng.below(schedule.len())).collect();
        let noise = Tensor::<4>::from_data(
            TensorData::new(rng.normals(n * dim), [n, c, h, w]),
            &ctx.device,
        );
        let coef = |f: &dyn Fn(f64) -> f64| {
            let v: Vec<f32> = ts
                .iter()
                .map(|&t| f(schedule.alpha_bars[t]) as f32)
                .collect();
            Tensor::<4>::from_data(TensorData::new(v, [n, 1, 1, 1]), &ctx.device)
        };
        let x_t = x0 * coef(&|ab| ab.sqrt()) + noise.clone() * coef(&|ab| (1.0 - ab).sqrt());
        let labels = (cfg.unet.classes > 0).then(|| {
            // A stream of its own: unconditional runs draw what they always did.
            let mut drop = Rng::derive(
                cfg.seed ^ (step as u64).wrapping_mul(0xA24B_AED4_963E_E407),
                "cond-drop",
            );
            idx.iter()
                .map(|&i| {
                    let label = ctx.data.train_labels.get(i).map_or(0, |&l| l as usize);
                    if drop.uniform() < cfg.diffusion.cond_drop {
                        cfg.unet.classes // "no class"
                    } else {
                        label.min(cfg.unet.classes - 1)
                    }
                })
                .collect::<Vec<usize>>()
        });
        let predicted = unet.forward_classes(x_t.autodiff(), &ts, labels.as_deref());
        let gamma = cfg.diffusion.min_snr_gamma;
        let loss = if gamma > 0.0 {
            // w·(ε̂ − ε)² as (√w·ε̂ − √w·ε)², so the fused MSE still applies.
            let root_w: Vec<f32> = ts
                .iter()
                .map(|&t| schedule.min_snr_weight(t, gamma).sqrt() as f32)
                .collect();
            let root_w = Tensor::<4>::from_data(TensorData::new(root_w, [n, 1, 1, 1]), &ctx.device)
                .autodiff();
            mse(predicted * root_w.clone(), noise.autodiff() * root_w)
        } else {
            mse(predicted, noise.autodiff())
        };
        let lr = lr_at(&cfg.diffusion_training, step, stage.plan.total_steps);
        let (updated, weights) = optim.step(lr, unet, &loss.backward());
        unet = updated;
        if let Some(e) = ema.take() {
            ema = Some(e.mul_scalar(decay) + weights.mul_scalar(1.0 - decay));
        }
        step += 1;
        ctx.state.diffusion_step = step;
        if let Some(end) = stage.finish_step(ctx, step, loss, n)? {
            let sampler_net = ema_module(&ema, &unet).unwrap_or_else(|| unet.valid());
            finish_epoch(ctx, ae, &sampler_net, &schedule, &end, step)?;
        }
        let (save_now, stop) = stage.control(ctx, step)?;
        if !ctx.loans.is_empty() {
            let live = pipeline::LatentDiffusion {
                cfg: cfg.clone(),
                state: ctx.state.clone(),
                ae: ae.clone(),
                unet: ema_module(&ema, &unet).unwrap_or_else(|| unet.valid()),
                schedule: schedule.clone(),
                device: ctx.device.clone(),
            };
            for loan in ctx.loans.drain(..) {
                let _ = loan.0.send(live.clone());
            }
        }
        if save_now {
            save_all(ctx, &unet, &optim, &ema)?;
        }
        if stop {
            return Ok(Outcome::Stopped);
        }
    }
    ctx.state.diffusion_done = true;
    save_all(ctx, &unet, &optim, &ema)?;
    ctx.emit(Event::StageFinished {
        stage: Stage::Diffusion,
    });
    Ok(Outcome::Finished)
}

/// Encode every training image once with the frozen encoder.
fn encode_all(ae: &Autoencoder, images: &Tensor<4>) -> Tensor<2> {
    let n = images.dims()[0];
    let chunks: Vec<Tensor<2>> = (0..n)
        .step_by(1000)
        .map(|s| ae.encode(images.clone().narrow(0, s, 1000.min(n - s))))
        .collect();
    Tensor::cat(chunks, 0)
}

/// 1/σ over every latent coordinate, so scaled latents have unit variance
/// (the scale factor of latent diffusion models).
pub fn unit_variance_scale(latents: &[f32]) -> f32 {
    let n = latents.len().max(1) as f64;
    let mean = latents.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = latents
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    if var > 0.0 {
        (1.0 / var.sqrt()) as f32
    } else {
        1.0
    }
}

fn save(
    ctx: &mut Ctx,
    ae: &Autoencoder,
    unet: &Unet,
    optim: Option<&FusedAdam>,
    ema: Option<&Unet>,
) -> Result<(), TrainError> {
    ensure_finite(unet, Stage::Diffusion, ctx.state.diffusion_step)?;
    let path = ctx.run.save(CheckpointParts {
        state: &ctx.state,
        autoencoder: ae,
        ae_optim: None,
        unet: Some(unet),
        unet_optim: optim,
        unet_ema: ema,
    })?;
    ctx.emit(Event::CheckpointSaved {
        stage: Stage::Diffusion,
        step: ctx.state.diffusion_step,
        path: path.clone(),
    });
    ctx.last_checkpoint = Some(path);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn finish_epoch(
    ctx: &Ctx,
    ae: &Autoencoder,
    unet: &Unet,
    schedule: &NoiseSchedule,
    end: &EpochEnd,
    step: usize,
) -> Result<(), TrainError> {
    let EpochEnd {
        epoch,
        mean_loss,
        seconds,
    } = *end;
    ctx.log(&[EpochRow {
        stage: Stage::Diffusion,
        epoch,
        step,
        mean_loss,
        seconds,
        psnr: None,
        ssim: None,
        ssim_gaussian: None,
        test_images: None,
    }])?;
    ctx.emit(Event::EpochSummary {
        stage: Stage::Diffusion,
        epoch,
        mean_loss,
        seconds,
        eval: None,
    });
    // A class-conditional run previews one row per class, with its guidance.
    let classes = ctx.cfg.unet.classes;
    let (n, cols, wanted) = if classes > 0 {
        let per = PREVIEW_PER_CLASS;
        let wanted = (0..classes)
            .flat_map(|c| std::iter::repeat_n(c, per))
            .collect();
        (classes * per, per, Some(wanted))
    } else {
        (PREVIEW_SAMPLES, 8, None)
    };
    // Deterministic DDIM whatever the run samples with: a cheap preview.
    let req = SampleRequest {
        sampler: SamplerKind::Ddim,
        steps: PREVIEW_STEPS.min(schedule.len()),
        eta: 0.0,
        capture: Capture::All,
        classes: wanted,
        ..SampleRequest::from_config(&ctx.cfg.sampling, n, PREVIEW_SEED, ctx.state.latent_bound)
    };
    let (images, frames) = pipeline::generate(
        ae,
        unet,
        schedule,
        ctx.cfg.autoencoder.latent_shape,
        ctx.state.latent_scale,
        &req,
        &ctx.device,
        &mut |_, _| true,
    )
    .map_err(|e| TrainError::Other(e.to_string()))?;
    // The preview's noise is the same every epoch, and in every run with
    // the same latent shape: the history shows the model changing, and two
    // runs' grids compare at the same seed.
    let picture = crate::export::grid(&images, pipeline::SIDE, cols, 2, 1);
    ctx.run.keep_media(
        &crate::run::MediaKind::Samples.file_name(epoch),
        &crate::export::png_bytes(&picture),
    )?;
    ctx.emit(Event::Samples {
        epoch,
        images,
        frames,
    });
    Ok(())
}
