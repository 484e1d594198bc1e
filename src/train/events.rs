//! The typed messages between the training worker and whoever watches it
//! (the CLI's progress bar, the workbench window, tests). Plain data only:
//! no tensors cross the channel.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::ExperimentConfig;
use crate::metrics::ImageMetrics;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Autoencoder,
    Diffusion,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Autoencoder => "autoencoder",
            Stage::Diffusion => "diffusion",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub stage: Stage,
    /// 1-based epoch being run.
    pub epoch: usize,
    pub epochs: usize,
    /// Steps done in this stage, and how many the stage has.
    pub step: usize,
    pub total_steps: usize,
    pub images_per_sec: f64,
    /// Estimated seconds left in this stage.
    pub eta_secs: f64,
}

/// Mean reconstruction quality over the evaluated test images.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalSummary {
    pub psnr: f64,
    pub ssim: f64,
    pub ssim_gaussian: f64,
    pub images: usize,
}

/// A decoded denoising frame: for each sample, the decoded x_t and the
/// decoded x̂0, 28×28 in [0, 1], concatenated sample after sample.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedFrame {
    pub t: usize,
    pub x_t: Vec<f32>,
    pub x0_pred: Vec<f32>,
}

#[derive(Debug, Clone)]
pub enum Event {
    RunStarted {
        run_dir: PathBuf,
        config: Box<ExperimentConfig>,
        backend: String,
        dataset: String,
        train_images: usize,
        test_images: usize,
        /// Where training continues from, when resuming.
        resumed_at: Option<(Stage, usize)>,
    },
    Progress(Progress),
    /// Per-step losses, delivered in small batches (the loss is read back
    /// from the device every `log_every` steps).
    Losses {
        stage: Stage,
        points: Vec<(usize, f32)>,
    },
    EpochSummary {
        stage: Stage,
        epoch: usize,
        mean_loss: f64,
        seconds: f64,
        eval: Option<EvalSummary>,
    },
    /// Test originals above their reconstructions (first few images), with
    /// per-image metrics; `mean` covers every evaluated test image.
    Reconstructions {
        epoch: usize,
        originals: Vec<f32>,
        reconstructions: Vec<f32>,
        metrics: Vec<ImageMetrics>,
        mean: EvalSummary,
    },
    /// Latents of evaluated test images with their labels, for projections.
    Latents {
        epoch: usize,
        dim: usize,
        latents: Vec<f32>,
        labels: Vec<u8>,
    },
    /// Preview samples at the end of a diffusion epoch, with their frames.
    Samples {
        epoch: usize,
        images: Vec<f32>,
        frames: Vec<DecodedFrame>,
    },
    CheckpointSaved {
        stage: Stage,
        step: usize,
        path: PathBuf,
    },
    StageFinished {
        stage: Stage,
    },
    Paused,
    Resumed,
    /// Stopped on request; the last checkpoint holds everything done.
    Stopped {
        checkpoint: Option<PathBuf>,
    },
    /// Training ended; the run is being scored (`what`, `done` of `total`).
    Scoring {
        what: String,
        done: usize,
        total: usize,
    },
    Finished {
        run_dir: PathBuf,
        seconds: f64,
        /// What it scored (`RUN/eval.json`); `None` when scoring was
        /// stopped or failed.
        scores: Option<Box<crate::run::FinalScores>>,
        /// Why the run has no scores, when scoring failed or was stopped.
        unscored: Option<String>,
    },
    Failed {
        message: String,
        checkpoint: Option<PathBuf>,
    },
}

/// A request for the models being trained, to sample from them while
/// training goes on. The diffusion stage answers between two steps with a
/// copy of the current (EMA) U-Net and the autoencoder; before that stage,
/// or once the run ends, the sender is dropped unanswered. Weights travel
/// on this reply channel, never on the event stream.
#[derive(Debug, Clone)]
pub struct ModelRequest(pub crossbeam_channel::Sender<crate::pipeline::LatentDiffusion>);

impl PartialEq for ModelRequest {
    fn eq(&self, other: &Self) -> bool {
        self.0.same_channel(&other.0)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Pause,
    Resume,
    /// Save a checkpoint and stop between two steps.
    Stop,
    /// Save a checkpoint now and carry on.
    SaveCheckpoint,
    /// Hand a copy of the live models to a sampling job.
    LendModel(ModelRequest),
}
