//! `latentlab metrics A.png B.png`: PSNR and both SSIMs of two images.

use std::path::PathBuf;

use clap::Args;

use super::{CliError, common};
use crate::export::load_gray;
use crate::metrics::ImageMetrics;

#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// The reference image.
    pub a: PathBuf,
    /// The image to compare with it (same size).
    pub b: PathBuf,
    /// Print JSON (keys: psnr, ssim, ssim_gaussian).
    #[arg(long)]
    pub json: bool,
    /// Refuse images with more pixels than this (the decoded image and the
    /// SSIM buffers need about 40 bytes a pixel).
    #[arg(long, value_name = "N", default_value_t = crate::export::MAX_IMAGE_PIXELS)]
    pub max_pixels: u64,
}

pub fn run(args: MetricsArgs) -> Result<(), CliError> {
    let (a, wa, ha) = load_gray(&args.a, args.max_pixels).map_err(CliError::usage)?;
    let (b, wb, hb) = load_gray(&args.b, args.max_pixels).map_err(CliError::usage)?;
    if (wa, ha) != (wb, hb) {
        return Err(CliError::usage(format!(
            "{} is {wa}×{ha} but {} is {wb}×{hb}; the images must be the same size",
            args.a.display(),
            args.b.display()
        )));
    }
    if wa < 11 || ha < 11 {
        return Err(CliError::usage(format!(
            "{} is {wa}×{ha}; SSIM needs at least 11×11 pixels",
            args.a.display()
        )));
    }
    let m = ImageMetrics::compute(&a, &b, wa as usize, ha as usize);
    if args.json {
        // JSON has no infinity: identical images report psnr as null.
        common::print_json(&serde_json::json!({
            "psnr": m.psnr.is_finite().then_some(m.psnr),
            "ssim": m.ssim, "ssim_gaussian": m.ssim_gaussian,
        }));
    } else {
        println!(
            "PSNR {:.3} dB · SSIM {:.5} · SSIM(gauss) {:.5}",
            m.psnr, m.ssim, m.ssim_gaussian
        );
    }
    Ok(())
}
