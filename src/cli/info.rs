//! `latentlab info`: what a config builds, without training anything.

use clap::Args;

use super::{CliError, ConfigArgs, common};
use crate::config::ExperimentConfig;
use crate::data;
use crate::model::{Autoencoder, Unet};

#[derive(Debug, Args)]
pub struct InfoArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Print JSON (keys: autoencoder_params, unet_params, latent_shape, dataset_source,
    /// training_memory_bytes: the estimate a config is checked against before
    /// training, parameters and optimiser state plus a generous activation bound).
    #[arg(long)]
    pub json: bool,
}

/// Parameter counts of both models of a config.
pub fn param_counts(cfg: &ExperimentConfig) -> (usize, usize) {
    use burn::module::Module;
    let device = burn::tensor::Device::default();
    let ae = Autoencoder::new(&cfg.autoencoder, &device).num_params();
    let unet = Unet::new(&cfg.unet, cfg.autoencoder.latent_shape[0], &device).num_params();
    (ae, unet)
}

pub fn run(args: InfoArgs) -> Result<(), CliError> {
    let c = &args.config;
    let cfg = ExperimentConfig::load(c.preset.as_deref(), c.config.as_deref(), &c.overrides)?;
    let (ae, unet) = param_counts(&cfg);
    let source = data::locate(cfg.dataset, None, false, &|_| {})
        .map(|l| l.describe())
        .unwrap_or_else(|e| format!("not found here ({e})"));
    let [lc, lh, lw] = cfg.autoencoder.latent_shape;
    // Validated above, so the shape is consistent and the estimate exists.
    let memory = crate::config::MemoryEstimate::of(&cfg).map_or(0, |m| m.peak_bytes());
    if args.json {
        common::print_json(&serde_json::json!({
            "name": cfg.name, "autoencoder_params": ae, "unet_params": unet,
            "latent_dim": cfg.autoencoder.latent_dim, "latent_shape": [lc, lh, lw],
            "dataset": cfg.dataset.name(), "dataset_source": source,
            "timesteps": cfg.diffusion.timesteps, "training_memory_bytes": memory,
        }));
    } else {
        println!(
            "{}: autoencoder {ae} parameters · U-Net {unet} parameters",
            cfg.name
        );
        println!(
            "latent: {} values, reshaped to {lc}×{lh}×{lw} for the U-Net",
            cfg.autoencoder.latent_dim
        );
        println!("dataset: {}", source);
        println!(
            "memory to train: about {:.0} MiB (an upper estimate; see `latentlab info --help`)",
            memory as f64 / (1 << 20) as f64
        );
    }
    Ok(())
}
