//! Stage 1: train the autoencoder on images with an MSE reconstruction loss.

use crate::run::AUTOENCODER;
use crate::run::rows::EpochRow;
use burn::prelude::*;

use crate::run::MediaKind;
use crate::run::summary::LatentMap;

use super::events::{Event, Stage};
use super::optim::FusedAdam;
use super::trainer::{
    Ctx, EpochEnd, Outcome, StageLoop, TrainError, ensure_finite, index_tensor, lr_at, mse,
};
use crate::model::params::seeded;
use crate::model::{Autoencoder, Unet};
use crate::pipeline;
use crate::run::checkpoint::CheckpointParts;

/// Images shown in the reconstruction grid of each epoch.
const GRID_IMAGES: usize = 16;

/// Train (or continue training) the autoencoder; returns it on the plain
/// device once the stage is complete.
pub fn run(ctx: &mut Ctx) -> Result<(Autoencoder, Outcome), TrainError> {
    let cfg = ctx.cfg.clone();
    let ad = ctx.device.clone().autodiff();
    let mut ae = seeded(&ad, cfg.seed, || Autoencoder::new(&cfg.autoencoder, &ad));
    let resuming = ctx.state.ae_step > 0 || ctx.state.ae_done;
    if resuming {
        ae = ctx.run.load_module(ae, AUTOENCODER)?;
    }
    if ctx.state.ae_done {
        return Ok((ae.valid(), Outcome::Finished));
    }
    let mut optim = FusedAdam::new(cfg.ae_training.grad_clip);
    if resuming {
        ctx.run
            .load_optim(&mut optim, AUTOENCODER, ae.num_params(), &ctx.device)?;
    }
    let mut stage = StageLoop::new(ctx, Stage::Autoencoder, &cfg.ae_training);
    let mut step = ctx.state.ae_step;
    while step < stage.plan.total_steps {
        let idx = stage.batch(step);
        let batch = ctx
            .data
            .train
            .clone()
            .select(0, index_tensor(&idx, &ctx.device))
            .autodiff();
        let loss = mse(ae.forward(batch.clone()), batch);
        let lr = lr_at(&cfg.ae_training, step, stage.plan.total_steps);
        ae = optim.step(lr, ae, &loss.backward()).0;
        step += 1;
        ctx.state.ae_step = step;
        if let Some(end) = stage.finish_step(ctx, step, loss, idx.len())? {
            evaluate(ctx, &ae.valid(), &end, step)?;
        }
        let (save_now, stop) = stage.control(ctx, step)?;
        if save_now {
            save(ctx, &ae, Some(&optim))?;
        }
        if stop {
            return Ok((ae.valid(), Outcome::Stopped));
        }
    }
    ctx.state.ae_done = true;
    ctx.state.stage = Stage::Diffusion;
    save(ctx, &ae, None)?;
    ctx.emit(Event::StageFinished {
        stage: Stage::Autoencoder,
    });
    Ok((ae.valid(), Outcome::Finished))
}

pub fn save(ctx: &mut Ctx, ae: &Autoencoder, optim: Option<&FusedAdam>) -> Result<(), TrainError> {
    ensure_finite(ae, Stage::Autoencoder, ctx.state.ae_step)?;
    let path = ctx.run.save::<Autoencoder, Unet>(CheckpointParts {
        state: &ctx.state,
        autoencoder: ae,
        ae_optim: optim,
        unet: None,
        unet_optim: None,
        unet_ema: None,
    })?;
    ctx.emit(Event::CheckpointSaved {
        stage: Stage::Autoencoder,
        step: ctx.state.ae_step,
        path: path.clone(),
    });
    ctx.last_checkpoint = Some(path);
    Ok(())
}

/// Score reconstructions of the test split and report the epoch.
fn evaluate(ctx: &Ctx, ae: &Autoencoder, end: &EpochEnd, step: usize) -> Result<(), TrainError> {
    let EpochEnd {
        epoch,
        mean_loss,
        seconds,
    } = *end;
    let wanted = ctx.cfg.checkpoint.eval_images;
    let count = if wanted == 0 {
        ctx.data.test_len
    } else {
        wanted.min(ctx.data.test_len)
    };
    let rec = pipeline::reconstruct(ae, &ctx.data.test, &ctx.data.test_pixels, count);
    let summary = rec.summary();
    let grid = GRID_IMAGES.min(count) * pipeline::PIXELS;
    let picture = crate::export::grid(
        &[&ctx.data.test_pixels[..grid], &rec.images[..grid]].concat(),
        pipeline::SIDE,
        GRID_IMAGES.min(count),
        2,
        1,
    );
    ctx.run.keep_media(
        &MediaKind::Reconstructions.file_name(epoch),
        &crate::export::png_bytes(&picture),
    )?;
    ctx.emit(Event::Reconstructions {
        epoch,
        originals: ctx.data.test_pixels[..grid].to_vec(),
        reconstructions: rec.images[..grid].to_vec(),
        metrics: rec.metrics[..GRID_IMAGES.min(count)].to_vec(),
        mean: summary,
    });
    // The history keeps each epoch's latent map: PCA of the first test
    // images, a few tens of KB.
    let dim = ctx.cfg.autoencoder.latent_dim;
    let mapped = count.min(LatentMap::MAX_POINTS);
    let map = LatentMap {
        points: crate::metrics::projection::pca(&rec.latents[..mapped * dim], dim),
        labels: ctx.data.test_labels[..mapped].to_vec(),
    };
    ctx.run
        .keep_media(&MediaKind::LatentMap.file_name(epoch), &map.to_json())?;
    ctx.emit(Event::Latents {
        epoch,
        dim,
        latents: rec.latents,
        labels: ctx.data.test_labels[..count].to_vec(),
    });
    ctx.log(&[EpochRow {
        stage: Stage::Autoencoder,
        epoch,
        step,
        mean_loss,
        seconds,
        psnr: Some(summary.psnr),
        ssim: Some(summary.ssim),
        ssim_gaussian: Some(summary.ssim_gaussian),
        test_images: Some(summary.images),
    }])?;
    ctx.emit(Event::EpochSummary {
        stage: Stage::Autoencoder,
        epoch,
        mean_loss,
        seconds,
        eval: Some(summary),
    });
    Ok(())
}
