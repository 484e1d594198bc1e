//! The scores a run keeps when its training ends (`RUN/eval.json`): what the
//! Runs panel and `latentlab runs` compare runs by. `latentlab eval` writes
//! its own results under `RUN/evals/` and never replaces these.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::checkpoint::{CheckpointError, write_atomic};
use crate::classifier::ClassifierInfo;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalScores {
    /// Reconstruction quality, mean over the whole test split.
    pub psnr: f64,
    /// SSIM as scikit-image computes it by default (7×7 uniform window).
    pub ssim: f64,
    /// SSIM with the 11×11 Gaussian window (σ 1.5) of Wang et al.
    pub ssim_gaussian: f64,
    pub test_images: usize,
    pub dataset: String,
    /// Sample quality of `n_samples` images (absent when
    /// `checkpoint.final_samples` is 0 or the test split is too small).
    pub cfid: Option<f64>,
    pub confidence: Option<f64>,
    pub class_entropy: Option<f64>,
    pub n_samples: usize,
    /// How the samples were drawn: "ddim" or "ddpm", its steps, the seed.
    pub sampler: String,
    pub steps: usize,
    pub seed: u64,
    /// The classifier that scored the samples.
    pub classifier: Option<ClassifierInfo>,
    /// Class-conditional runs: the samples ask for every class in turn,
    /// with this guidance, and this share lands in the class asked for.
    #[serde(default)]
    pub guidance: Option<f64>,
    #[serde(default)]
    pub class_accuracy: Option<f64>,
    /// When the scores were computed ("20261203-101500", UTC).
    pub date: String,
}

impl FinalScores {
    /// The run's final scores: `None` when it has none (yet), an error when
    /// the file is there but unreadable.
    pub fn read(root: &Path) -> Option<Result<Self, String>> {
        let path = root.join(super::FINAL_SCORES);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => return Some(Err(format!("{}: {e}", path.display()))),
        };
        Some(serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display())))
    }

    /// Write them atomically into the run `root`.
    pub fn keep(&self, root: &Path) -> Result<(), CheckpointError> {
        let text = serde_json::to_string_pretty(self).expect("scores serialise");
        write_atomic(&root.join(super::FINAL_SCORES), text.as_bytes())
    }

    /// The metric called `key` (one of `METRICS`), if scored.
    pub fn metric(&self, key: &str) -> Option<f64> {
        match key {
            "psnr" => Some(self.psnr),
            "ssim" => Some(self.ssim),
            "ssim_gaussian" => Some(self.ssim_gaussian),
            "cfid" => self.cfid,
            "confidence" => self.confidence,
            "class_entropy" => self.class_entropy,
            "class_accuracy" => self.class_accuracy,
            _ => None,
        }
    }
}

/// The metrics every run is compared by, in table order.
pub const METRICS: [&str; 7] = [
    "psnr",
    "ssim",
    "ssim_gaussian",
    "cfid",
    "confidence",
    "class_entropy",
    "class_accuracy",
];
