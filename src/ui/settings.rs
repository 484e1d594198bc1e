//! Last-used settings, persisted between launches through eframe's storage
//! (as JSON, so a changed config schema falls back to defaults instead of
//! failing to start).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::work::Method;

pub const STORAGE_KEY: &str = "latentlab-settings";

pub use super::panels::Tab;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub tab: Tab,
    pub preset: String,
    /// The edited experiment, as TOML.
    pub config_toml: String,
    pub backend: String,
    pub device: String,
    pub runs_dir: PathBuf,
    pub data_dir: String,
    pub resume_dir: String,
    pub loss_ema: f32,
    pub loss_log: bool,
    pub overlay: Vec<PathBuf>,
    pub projection: Method,
    pub perplexity: f32,
    pub tsne_epochs: usize,
    pub tsne_seed: u64,
    pub denoise_n: usize,
    pub denoise_seed: u64,
    /// Frames per second of denoising playback.
    pub play_fps: f32,
    pub samples_n: usize,
    pub samples_seed: u64,
    pub interp_steps: usize,
    /// Classes the Samples and Denoising panels ask for.
    pub samples_class: super::class_pick::ClassPick,
    pub denoise_class: super::class_pick::ClassPick,
    /// Sweep runs still to train (kept when the window closes).
    pub queue: Vec<super::queue::QueuedRun>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            tab: Tab::Experiment,
            preset: "quick".into(),
            config_toml: String::new(),
            backend: crate::backend::default_backend().name().into(),
            device: "auto".into(),
            runs_dir: PathBuf::from("runs"),
            data_dir: String::new(),
            resume_dir: String::new(),
            loss_ema: 0.9,
            loss_log: true,
            overlay: Vec::new(),
            projection: Method::Pca,
            perplexity: 30.0,
            tsne_epochs: 750,
            tsne_seed: 0,
            denoise_n: 8,
            denoise_seed: 0,
            play_fps: 30.0,
            samples_n: 32,
            samples_seed: 0,
            interp_steps: 10,
            samples_class: Default::default(),
            denoise_class: Default::default(),
            queue: Vec::new(),
        }
    }
}

impl Settings {
    pub fn load(storage: Option<&dyn eframe::Storage>) -> Self {
        storage
            .and_then(|s| s.get_string(STORAGE_KEY))
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_default()
    }

    pub fn store(&self, storage: &mut dyn eframe::Storage) {
        if let Ok(json) = serde_json::to_string(self) {
            storage.set_string(STORAGE_KEY, json);
        }
    }
}

/// Directory holding the user's own presets (`*.toml`).
pub fn user_preset_dir() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("latentlab").join("presets"))
}
