//! What a panel may touch, and how it asks for more.
//!
//! A panel owns its own state (a struct in its file) and draws from a
//! narrow context: read-only session data, the persisted settings, the job
//! runner, the texture cache and an action queue. Anything that reaches
//! beyond the panel — exporting, messages — is pushed as an `Action` and
//! applied by `App` once, at the end of the frame. Panels never import `App`.

use super::export::ExportRequest;
use super::jobs::Jobs;
use super::jobs::{CancelFlag, Requester};
use super::run_history::HistoryPoint;
use super::session::Session;
use super::settings::Settings;
use super::widgets::TexCache;
use crate::config::{ExperimentConfig, SamplingConfig};
use crate::data::Dataset;
use crate::train::Command;
use std::path::PathBuf;

pub struct PanelCtx<'a> {
    pub session: &'a Session,
    /// The experiment config (panels that edit it ask through an action).
    pub config: &'a ExperimentConfig,
    /// The dataset of the run, once loaded: test images to show.
    pub data: Option<&'a Dataset>,
    pub settings: &'a mut Settings,
    pub jobs: &'a Jobs,
    pub textures: &'a mut TexCache,
    pub actions: &'a mut Vec<Action>,
    /// Whether a run is training now.
    pub training: bool,
    /// Whether Samples and Denoising can generate now (a checkpoint, or a
    /// run in its diffusion stage).
    pub can_sample: bool,
    /// Why the chosen backend/device cannot be used, if it cannot.
    pub device_problem: Option<String>,
    /// Whether native file dialogs may open.
    pub dialogs: bool,
    /// The point of a run's history the image panels show instead of the
    /// live run, when one was chosen on the Runs panel.
    pub history: Option<&'a HistoryPoint>,
}

/// A generation a panel asks for; the app adds the models and the device.
pub struct SampleJob {
    pub requester: Requester,
    pub ticket: u64,
    pub n: usize,
    pub seed: u64,
    pub sampling: SamplingConfig,
    /// Capture denoising frames.
    pub capture: bool,
    /// The class asked of each sample (class-conditional runs).
    pub classes: Option<Vec<usize>>,
    pub cancel: CancelFlag,
}

/// What a panel asks the app to do after the frame.
pub enum Action {
    /// Write a file (PNG, GIF, CSV, …) where exports go.
    Export(ExportRequest),
    /// A message in the banner.
    Info(String),
    Error(String),
    /// Decode one latent with the run's autoencoder (the Latent panel's pick).
    DecodeLatent {
        index: usize,
        latent: Vec<f32>,
    },
    Generate(SampleJob),
    /// Decode `steps` points between two starting noises (Samples panel).
    Interpolate {
        ticket: u64,
        seed: u64,
        sampling: SamplingConfig,
        from: Vec<f32>,
        to: Vec<f32>,
        steps: usize,
    },
    /// Change the experiment's sampling settings (they apply live).
    SetSampling(SamplingConfig),
    /// Replace the experiment config (the form's edits, a preset).
    SetConfig(Box<ExperimentConfig>),
    /// Look up the dataset Start would use again.
    RefreshDataPreview,
    /// Start a new run with the current config (or queue its sweep).
    Start,
    /// Train the queued sweep runs again after a Stop.
    ContinueQueue,
    /// Pause, resume, stop or checkpoint the running trainer.
    Command(Command),
    /// Continue (or open) the run in this directory.
    ResumeFrom(PathBuf),
    /// Show this point of a run's history in the image panels (None: the
    /// live run again).
    ShowHistory(Option<HistoryPoint>),
}

impl PanelCtx<'_> {
    pub fn act(&mut self, action: Action) {
        self.actions.push(action);
    }

    /// Test image `i` of the run's dataset, as [0, 1] floats.
    pub fn test_image(&self, i: usize) -> Option<Vec<f32>> {
        self.data?.test_image(i).map(Dataset::to_f32)
    }
}
