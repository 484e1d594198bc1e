//! `latentlab bench`: throughput of the seed models on every enabled
//! backend, at batch 64 and 256.

use clap::Args;

use super::{BackendArgs, CliError, common};
use crate::backend::{self, BackendKind};
use crate::bench::{self, BenchOptions, BenchResult};
use crate::config::ExperimentConfig;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Print JSON (one object per backend and batch size).
    #[arg(long)]
    pub json: bool,
    /// Batch sizes to measure.
    #[arg(long, value_delimiter = ',', default_values_t = [64, 256])]
    pub batches: Vec<usize>,
    /// Seconds of timing per training measurement.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Also time DDPM sampling with all 1,000 steps (slow on a CPU).
    #[arg(long)]
    pub full: bool,
}

pub fn run(args: BenchArgs, backend_args: &BackendArgs) -> Result<(), CliError> {
    if !(args.seconds.is_finite() && args.seconds > 0.0 && args.seconds <= 3600.0) {
        return Err(CliError::usage(
            "--seconds: must be a number between 0 and 3600",
        ));
    }
    if args.batches.iter().any(|&b| b == 0 || b > 8192) {
        return Err(CliError::usage(
            "--batches: each must be between 1 and 8192",
        ));
    }
    let cfg = ExperimentConfig::preset("seed")?;
    // Named backend → only that one; otherwise every backend this build has,
    // with tch measured on CUDA too when a GPU is visible.
    let targets: Vec<(BackendKind, String)> = match &backend_args.backend {
        Some(name) => vec![(BackendKind::parse(name)?, backend_args.device.clone())],
        None => backend::available()
            .into_iter()
            .flat_map(|k| match k {
                BackendKind::Tch if backend::cuda_available() => {
                    vec![(k, "cpu".to_string()), (k, "cuda".to_string())]
                }
                BackendKind::Tch => vec![(k, "cpu".to_string())],
                BackendKind::Flex => vec![(k, "cpu".to_string())],
            })
            .collect(),
    };
    let mut results: Vec<BenchResult> = Vec::new();
    for (kind, dev) in targets {
        backend::set_threads(kind, backend_args.threads);
        let device = backend::select(kind, &dev)?;
        let simd: Option<&str> = match kind {
            #[cfg(feature = "flex")]
            BackendKind::Flex => Some(crate::model::fused::simd_level()),
            _ => None,
        };
        for &batch in &args.batches {
            let label = format!("{}:{}", kind.name(), dev);
            match simd {
                Some(isa) => eprintln!("measuring {label} at batch {batch} ({isa} kernels) ..."),
                None => eprintln!("measuring {label} at batch {batch} ..."),
            }
            let opts = BenchOptions {
                batch,
                seconds: args.seconds,
                full: args.full,
            };
            let mut result =
                backend::on_compute_pool(kind, || bench::run(&cfg, &device, &label, &opts));
            result.simd = simd;
            results.push(result);
        }
    }
    if args.json {
        common::print_json(&serde_json::to_value(&results).expect("results serialise"));
    } else {
        println!(
            "{:<12} {:>6} {:>14} {:>14} {:>12} {:>12} {:>12}",
            "backend", "batch", "AE train", "U-Net train", "DDIM-50", "DPM++-15", "DDPM-T"
        );
        for r in &results {
            println!(
                "{:<12} {:>6} {:>10.0} i/s {:>10.0} i/s {:>8.1} i/s {:>8.1} i/s {:>12}",
                r.backend,
                r.batch,
                r.ae_train_images_per_sec,
                r.unet_train_images_per_sec,
                r.ddim50_images_per_sec,
                r.dpmpp15_images_per_sec,
                r.ddpm_images_per_sec
                    .map(|v| format!("{v:.2} i/s"))
                    .unwrap_or_else(|| "-".into())
            );
        }
    }
    Ok(())
}
