//! The command-line interface: one file per sub-command. Every command
//! returns `CliError` with the exit code to use: 2 for bad arguments or an
//! invalid config (one line per problem), 1 for failures while running.

pub mod bench;
pub mod classifier;
pub mod common;
pub mod denoise;
pub mod eval;
pub mod gui;
pub mod info;
pub mod metrics;
pub mod runs;
pub mod sample;
pub mod sweep;
pub mod train;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::backend;

#[derive(Debug, Parser)]
#[command(
    name = "latentlab",
    version,
    about = "Latent diffusion workbench: a CAB autoencoder, then a DDPM U-Net in its latent space",
    long_about = None
)]
pub struct Cli {
    #[command(flatten)]
    pub backend: BackendArgs,
    #[command(flatten)]
    pub window: gui::WindowArgs,
    #[command(subcommand)]
    pub command: Option<Cmd>,
}

#[derive(Debug, Clone, Args)]
pub struct BackendArgs {
    /// Compute backend: flex (pure-Rust CPU) or tch (libtorch; needs --features tch).
    #[arg(long, global = true, value_name = "flex|tch")]
    pub backend: Option<String>,
    /// Device for tch: auto (CUDA when present), cpu, cuda or cuda:N.
    #[arg(long, global = true, default_value = "auto")]
    pub device: String,
    /// CPU threads for the backend (0 = all cores; with the window, all but one).
    #[arg(long, global = true, default_value_t = 0)]
    pub threads: usize,
}

impl BackendArgs {
    /// The backend named by `--backend`, or the build's default.
    pub fn kind(&self) -> Result<backend::BackendKind, backend::BackendError> {
        match &self.backend {
            Some(name) => backend::BackendKind::parse(name),
            None => Ok(backend::default_backend()),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Train the autoencoder, then the latent diffusion model.
    Train(train::TrainArgs),
    /// Generate images from a trained run.
    Sample(sample::SampleArgs),
    /// The runs in a runs directory and their status.
    Runs(runs::RunsArgs),
    /// Train a grid of runs (locally, or as a Slurm array job with --emit slurm).
    Sweep(sweep::SweepArgs),
    /// Train one point of a sweep (what `sweep` and its Slurm tasks run).
    #[command(hide = true)]
    SweepPoint(sweep::SweepPointArgs),
    /// Score reconstructions over the whole test split.
    Eval(eval::EvalArgs),
    /// Write the denoising animation of a trained run as a GIF.
    Denoise(denoise::DenoiseArgs),
    /// PSNR and both SSIMs of two images.
    Metrics(metrics::MetricsArgs),
    /// Parameter counts, latent shape and dataset source of a config.
    Info(info::InfoArgs),
    /// Training and sampling throughput of every enabled backend.
    Bench(bench::BenchArgs),
    /// The classifier that scores generated images.
    Classifier(classifier::ClassifierArgs),
    /// Save a picture of one workbench panel (demo state) as PNG.
    #[cfg(feature = "gui")]
    Screenshot(gui::ScreenshotArgs),
    /// Frame rate of the window while training, and training throughput with and without it.
    #[cfg(feature = "gui")]
    BenchUi(gui::BenchUiArgs),
}

#[derive(Debug)]
pub struct CliError {
    pub code: i32,
    pub message: String,
}

impl CliError {
    /// Bad arguments or config: exit code 2.
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
    }

    /// A failure while running: exit code 1.
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: message.into(),
        }
    }
}

impl From<crate::config::ConfigError> for CliError {
    fn from(e: crate::config::ConfigError) -> Self {
        Self::usage(e.to_string())
    }
}

impl From<crate::backend::BackendError> for CliError {
    fn from(e: crate::backend::BackendError) -> Self {
        Self::usage(e.to_string())
    }
}

impl From<crate::run::checkpoint::CheckpointError> for CliError {
    fn from(e: crate::run::checkpoint::CheckpointError) -> Self {
        match e {
            crate::run::checkpoint::CheckpointError::Config { .. } => Self::usage(e.to_string()),
            _ => Self::failed(e.to_string()),
        }
    }
}

impl From<crate::data::DataError> for CliError {
    fn from(e: crate::data::DataError) -> Self {
        Self::failed(e.to_string())
    }
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> Result<(), CliError> {
    let b = &cli.backend;
    match cli.command {
        Some(Cmd::Train(a)) => train::run(a, b),
        Some(Cmd::Sample(a)) => on_compute_pool(b, || sample::run(a, b)),
        Some(Cmd::Eval(a)) => on_compute_pool(b, || eval::run(a, b)),
        Some(Cmd::Denoise(a)) => on_compute_pool(b, || denoise::run(a, b)),
        Some(Cmd::Metrics(a)) => metrics::run(a),
        Some(Cmd::Info(a)) => info::run(a),
        Some(Cmd::Runs(a)) => runs::run(a),
        Some(Cmd::Sweep(a)) => sweep::run(a, b),
        Some(Cmd::SweepPoint(a)) => sweep::run_point(a, b),
        Some(Cmd::Bench(a)) => bench::run(a, b),
        Some(Cmd::Classifier(a)) => on_compute_pool(b, || classifier::run(a, b)),
        #[cfg(feature = "gui")]
        Some(Cmd::Screenshot(a)) => gui::screenshot(a, &cli.window),
        #[cfg(feature = "gui")]
        Some(Cmd::BenchUi(a)) => gui::bench_ui(a, b),
        // No sub-command opens the workbench.
        None => gui::workbench(&cli.window, b),
    }
}

/// Run a command that computes on one of the backend's pool threads
/// (`backend::on_compute_pool`), the pool sized first. An unknown backend
/// runs in place, where the command reports it.
fn on_compute_pool<R: Send>(b: &BackendArgs, f: impl FnOnce() -> R + Send) -> R {
    match b.kind() {
        Ok(kind) => {
            backend::set_threads(kind, b.threads);
            backend::on_compute_pool(kind, f)
        }
        Err(_) => f(),
    }
}

/// Arguments naming a config: a preset or a TOML file, plus overrides.
#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// A preset: seed, quick, fashion, cosine, large, conditional or conditional-fashion.
    #[arg(long, conflicts_with = "config")]
    pub preset: Option<String>,
    /// A TOML config file (see presets/ for the format).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Override a config value, e.g. --set ae_training.epochs=3 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
}
