//! Experiment configuration: one TOML document describes a whole run.
//!
//! Every section rejects unknown keys so a typo is an error, not a silently
//! ignored setting. `validate()` returns every problem at once, each naming its
//! field, so the CLI and the window can show them all.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::data::sources::DatasetKind;

mod memory;
mod validate;

pub use memory::{MemoryEstimate, available_memory};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Human name of the experiment (preset name by default).
    pub name: String,
    pub dataset: DatasetKind,
    /// Seeds weight init, shuffling, diffusion noise and timesteps.
    pub seed: u64,
    pub autoencoder: AutoencoderConfig,
    pub unet: UnetConfig,
    pub diffusion: DiffusionConfig,
    pub sampling: SamplingConfig,
    pub ae_training: StageTraining,
    pub diffusion_training: StageTraining,
    pub checkpoint: CheckpointConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoencoderConfig {
    /// Output channels of each stride-2 encoder level (the decoder mirrors them).
    pub channels: Vec<usize>,
    /// Channel-attention blocks after the conv of each level (same count in the decoder).
    pub cabs_per_level: Vec<usize>,
    /// Squeeze ratio of the channel attention (channels / reduction hidden units).
    pub attention_reduction: usize,
    pub latent_dim: usize,
    /// How the latent vector is reshaped for the U-Net: [channels, height, width].
    pub latent_shape: [usize; 3],
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnetConfig {
    /// Channels of each resolution level, from the latent resolution downwards.
    pub channels: Vec<usize>,
    /// Residual blocks in each down level.
    pub down_blocks: Vec<usize>,
    /// Residual blocks in each up level (after its transposed conv).
    pub up_blocks: Vec<usize>,
    /// Self-attention after the residual blocks of each level (down and up).
    pub attention: Vec<bool>,
    pub mid_attention: bool,
    pub heads: usize,
    pub head_dim: usize,
    pub time_dim: usize,
    /// GroupNorm groups (capped by the channel count of each norm).
    pub groups: usize,
    /// Class-conditional: a learned embedding of this many classes plus a
    /// "no class" entry, added to the timestep embedding (0: unconditional).
    #[serde(default)]
    pub classes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BetaSchedule {
    Linear,
    Cosine,
    Quadratic,
    Sigmoid,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffusionConfig {
    pub timesteps: usize,
    pub schedule: BetaSchedule,
    pub beta_start: f64,
    pub beta_end: f64,
    /// Scale latents to unit variance with training-set statistics.
    pub standardize_latents: bool,
    /// EMA decay of the U-Net weights used for sampling; 0 disables EMA.
    pub ema_decay: f64,
    /// Clip the sampler's x̂0 to the range of the training latents. Without
    /// it, ε-prediction at the near-zero signal of a cosine schedule's last
    /// timesteps amplifies small errors into huge latents.
    #[serde(default)]
    pub clip_x0: bool,
    /// With `unet.classes`: the rate at which a training label is replaced
    /// by "no class", so one model is conditional and unconditional.
    #[serde(default = "default_cond_drop")]
    pub cond_drop: f64,
    /// Min-SNR-γ loss weighting (Hang et al. 2023): each sample's noise
    /// error is weighted by min(SNR_t, γ) / SNR_t, so the many nearly
    /// noiseless timesteps, which are easy, stop dominating the gradient.
    /// 0 keeps the plain mean squared error.
    #[serde(default)]
    pub min_snr_gamma: f64,
}

fn default_cond_drop() -> f64 {
    0.1
}

fn default_guidance() -> f64 {
    1.0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SamplerKind {
    Ddpm,
    Ddim,
    /// DPM-Solver++(2M): deterministic, second-order multistep.
    Dpmpp,
}

impl SamplerKind {
    /// Model evaluations of one sample: `steps`, or every timestep for DDPM.
    pub fn evaluations(self, steps: usize, timesteps: usize) -> usize {
        match self {
            SamplerKind::Ddpm => timesteps,
            SamplerKind::Ddim | SamplerKind::Dpmpp => steps.clamp(1, timesteps),
        }
    }

    /// The name in file names and on the command line: ddpm, ddim, dpmpp.
    pub fn slug(self) -> &'static str {
        match self {
            SamplerKind::Ddpm => "ddpm",
            SamplerKind::Ddim => "ddim",
            SamplerKind::Dpmpp => "dpmpp",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SamplerKind::Ddpm => "DDPM",
            SamplerKind::Ddim => "DDIM",
            SamplerKind::Dpmpp => "DPM-Solver++",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VarianceKind {
    /// σ² = β_t (the seed's choice).
    Beta,
    /// σ² = β̃_t, the true posterior variance.
    Posterior,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingConfig {
    pub sampler: SamplerKind,
    /// Classifier-free guidance w with a class asked for: ε_u + w(ε_c − ε_u);
    /// 0 unconditional, 1 plain conditional (Ho & Salimans' w′ = w − 1).
    #[serde(default = "default_guidance")]
    pub guidance: f64,
    /// DDIM steps (ignored by DDPM, which walks every timestep).
    pub steps: usize,
    pub eta: f64,
    pub variance: VarianceKind,
}

impl SamplingConfig {
    /// The sampler in a few words, e.g. "DDIM 50 steps · η 0"; every label
    /// of sampler settings starts from this one.
    pub fn label(&self) -> String {
        match self.sampler {
            SamplerKind::Ddim => format!("DDIM {} steps · η {}", self.steps, self.eta),
            SamplerKind::Dpmpp => format!("DPM-Solver++(2M) {} steps", self.steps),
            SamplerKind::Ddpm => format!("DDPM all T steps · η {}", self.eta),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrSchedule {
    Constant,
    /// Cosine decay to 0 over the stage, after `warmup_steps` of linear warm-up.
    Cosine,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageTraining {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub lr_schedule: LrSchedule,
    pub warmup_steps: usize,
    /// Clip the global gradient norm to this value; 0 disables clipping.
    pub grad_clip: f64,
    /// Stop the stage after this many steps in total (0 = run every epoch);
    /// lets tests and quick looks run a few dozen steps.
    pub max_steps: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointConfig {
    /// Save a checkpoint every this many steps (0 = only at the end of each stage).
    pub every_steps: usize,
    /// Read the loss back from the device every this many steps (fewer host syncs).
    pub log_every: usize,
    /// Test images scored after each autoencoder epoch (0 = the whole test split).
    pub eval_images: usize,
    /// Samples scored (cFID, confidence, class entropy) when training ends,
    /// kept with the reconstruction scores in RUN/eval.json; 0 skips them.
    #[serde(default = "default_final_samples")]
    pub final_samples: usize,
}

fn default_final_samples() -> usize {
    1000
}

/// A configuration problem, naming its field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config {origin} is not valid TOML for latentlab: {message}")]
    Parse { origin: String, message: String },
    #[error("unknown preset '{0}'; available presets: {1}")]
    UnknownPreset(String, String),
    #[error("--set {0}: {1}")]
    Override(String, String),
    #[error("config {origin} has {} problem(s):\n{}", .problems.len(), .problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        origin: String,
        problems: Vec<Problem>,
    },
}

/// A config leaf as a person types it: strings bare, anything else as
/// TOML writes it (`[16, 32]`, `0.001`).
pub fn leaf_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The presets shipped with latentlab, embedded so the binary works anywhere.
pub const PRESETS: &[(&str, &str)] = &[
    ("seed", include_str!("../presets/seed.toml")),
    ("quick", include_str!("../presets/quick.toml")),
    ("fashion", include_str!("../presets/fashion.toml")),
    ("cosine", include_str!("../presets/cosine.toml")),
    ("large", include_str!("../presets/large.toml")),
    ("conditional", include_str!("../presets/conditional.toml")),
    (
        "conditional-fashion",
        include_str!("../presets/conditional-fashion.toml"),
    ),
];

pub fn preset_names() -> Vec<&'static str> {
    PRESETS.iter().map(|(n, _)| *n).collect()
}

impl ExperimentConfig {
    pub fn preset(name: &str) -> Result<Self, ConfigError> {
        let text = PRESETS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| *t)
            .ok_or_else(|| ConfigError::UnknownPreset(name.into(), preset_names().join(", ")))?;
        Self::from_toml(text, &format!("preset '{name}'"))
    }

    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.into(),
            message: e.to_string().trim().replace('\n', " "),
        })
    }

    /// Every leaf of the config by its dotted key ("unet.channels"), in
    /// the order the TOML document holds them: what the form edits and
    /// what runs are compared by.
    pub fn leaves(&self) -> Vec<(String, toml::Value)> {
        fn walk(prefix: &str, v: &toml::Value, out: &mut Vec<(String, toml::Value)>) {
            match v {
                toml::Value::Table(t) => {
                    for (k, v) in t {
                        let path = if prefix.is_empty() {
                            k.clone()
                        } else {
                            format!("{prefix}.{k}")
                        };
                        walk(&path, v, out);
                    }
                }
                other => out.push((prefix.to_string(), other.clone())),
            }
        }
        let doc = toml::Value::try_from(self).expect("configs serialise to TOML");
        let mut out = Vec::new();
        walk("", &doc, &mut out);
        out
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("config always serialises")
    }

    /// Apply `key=value` overrides such as `diffusion_training.epochs=3`.
    /// The value is parsed as TOML (falling back to a string), then the whole
    /// document is re-read so types and unknown keys are checked as usual.
    pub fn apply_override(&mut self, assignment: &str) -> Result<(), ConfigError> {
        let err = |m: &str| ConfigError::Override(assignment.into(), m.into());
        let (key, raw) = assignment
            .split_once('=')
            .ok_or_else(|| err("expected key=value, e.g. ae_training.epochs=3"))?;
        let key = key.trim();
        let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {}", raw.trim()))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.trim().to_string()));
        let mut doc = toml::Value::try_from(&*self).map_err(|e| err(&e.to_string()))?;
        let mut slot = &mut doc;
        let parts: Vec<&str> = key.split('.').collect();
        for (i, part) in parts.iter().enumerate() {
            let table = slot
                .as_table_mut()
                .ok_or_else(|| err(&format!("'{}' is not a section", parts[..i].join("."))))?;
            if !table.contains_key(*part) {
                return Err(err(&format!("unknown key '{key}'")));
            }
            slot = table.get_mut(*part).expect("checked above");
        }
        *slot = value;
        *self = doc
            .try_into()
            .map_err(|e: toml::de::Error| err(&e.to_string().trim().replace('\n', " ")))?;
        Ok(())
    }

    /// Parse, apply overrides, and validate in one go.
    pub fn load(
        preset: Option<&str>,
        file: Option<&Path>,
        overrides: &[String],
    ) -> Result<Self, ConfigError> {
        let (mut cfg, origin) = match (preset, file) {
            (_, Some(path)) => (Self::from_file(path)?, path.display().to_string()),
            (Some(name), None) => (Self::preset(name)?, format!("preset '{name}'")),
            (None, None) => (Self::preset("quick")?, "preset 'quick'".to_string()),
        };
        for o in overrides {
            cfg.apply_override(o)?;
        }
        let problems = cfg.validate();
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigError::Invalid { origin, problems })
        }
    }
}
