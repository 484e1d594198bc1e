//! `latentlab denoise`: the reverse process as an animated GIF — for each
//! sample, the decoded x_t (top row) and the decoded x̂0 (bottom row).

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::Args;

use super::common;
use super::sample::SamplerArgs;
use super::{BackendArgs, CliError};
use crate::diffusion::Capture;
use crate::diffusion::sampler::visited_timesteps;
use crate::export;
use crate::pipeline::{LatentDiffusion, SIDE};

/// At most this many animation frames, spread over the visited timesteps.
const MAX_FRAMES: usize = 60;

#[derive(Debug, Args)]
pub struct DenoiseArgs {
    /// The run directory written by `latentlab train`.
    #[arg(long, value_name = "DIR")]
    pub run: PathBuf,
    /// Samples side by side in the animation.
    #[arg(long, default_value_t = 8)]
    pub n: usize,
    #[command(flatten)]
    pub sampler: SamplerArgs,
    /// Milliseconds per frame.
    #[arg(long, default_value_t = 80)]
    pub delay_ms: u32,
    /// Output GIF.
    #[arg(long, value_name = "FILE.gif")]
    pub out: PathBuf,
    /// Overwrite --out if it exists.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: DenoiseArgs, backend: &BackendArgs) -> Result<(), CliError> {
    if args.n == 0 || args.n > 64 {
        return Err(CliError::usage("--n: must be between 1 and 64"));
    }
    let (_, device) = common::device(backend)?;
    let model = LatentDiffusion::load(&args.run, &device)?;
    let mut req = args.sampler.request(&model, args.n)?;
    let visits = visited_timesteps(&model.schedule, &req);
    let stride = visits.len().div_ceil(MAX_FRAMES).max(1);
    let mut keep: BTreeSet<usize> = visits.iter().step_by(stride).copied().collect();
    keep.insert(*visits.last().expect("at least one step"));
    req.capture = Capture::At(keep);
    let (images, frames) = model
        .generate(&req, &mut |_, _| true)
        .map_err(|e| CliError::failed(e.to_string()))?;
    let mut pictures: Vec<_> = frames
        .iter()
        .map(|f| {
            export::grid(
                &[f.x_t.clone(), f.x0_pred.clone()].concat(),
                SIDE,
                args.n,
                2,
                3,
            )
        })
        .collect();
    // Close on the final samples in both rows.
    pictures.push(export::grid(
        &[images.clone(), images].concat(),
        SIDE,
        args.n,
        2,
        3,
    ));
    export::save_gif(&pictures, args.delay_ms, &args.out, args.force)?;
    eprintln!("wrote {} frames to {}", pictures.len(), args.out.display());
    Ok(())
}
