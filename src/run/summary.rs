//! One run as the Runs panel and `latentlab runs` see it: status, config,
//! scores, note and the pictures of its history, read from its directory
//! without loading any weights.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::checkpoint::RunDir;
use super::scores::FinalScores;
use super::status::{RunState, RunStatus};
use crate::config::ExperimentConfig;

/// The free-text note a person keeps with a run.
pub const NOTE: &str = "note.txt";

#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    pub dir: PathBuf,
    pub name: String,
    /// "running", "finished", …, or "unreadable" when the config is.
    pub status: String,
    /// Why it failed, or why it cannot be read.
    pub message: Option<String>,
    pub origin: Option<String>,
    /// Unix seconds when training (last) started, and how long it ran.
    pub started: Option<u64>,
    pub seconds: Option<u64>,
    pub dataset: Option<String>,
    pub backend: Option<String>,
    pub config: Option<ExperimentConfig>,
    /// Every config value by its dotted key ("unet.channels" → "[16, 32]").
    pub values: BTreeMap<String, String>,
    pub ae_step: Option<usize>,
    pub diffusion_step: Option<usize>,
    pub scores: Option<FinalScores>,
    pub scores_problem: Option<String>,
    pub note: String,
    /// The sweep it belongs to, with its grid values.
    pub sweep: Option<super::sweep::Membership>,
    /// The run's pictures and maps, by kind (reconstructions, samples,
    /// latent maps), each by epoch.
    pub media: Vec<Media>,
}

/// What a picture of a run's history shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MediaKind {
    /// Test images above their reconstructions, after an autoencoder epoch.
    Reconstructions,
    /// Samples from fixed noise, after a diffusion epoch.
    Samples,
    /// The test images' latents projected by PCA, after an autoencoder
    /// epoch (JSON: `LatentMap`).
    LatentMap,
}

/// A latent map kept in a run's media: 2-D points and their labels.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LatentMap {
    pub points: Vec<[f32; 2]>,
    pub labels: Vec<u8>,
}

impl LatentMap {
    /// At most this many test images' points are kept per epoch (~40 KB).
    pub const MAX_POINTS: usize = 2000;

    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// JSON with 4 decimals: a map is a picture, not a measurement.
    pub fn to_json(&self) -> Vec<u8> {
        let round = |v: f32| (v * 1e4).round() / 1e4;
        let points: Vec<[f32; 2]> = self
            .points
            .iter()
            .map(|p| [round(p[0]), round(p[1])])
            .collect();
        serde_json::to_vec(&serde_json::json!({ "points": points, "labels": self.labels }))
            .expect("maps serialise")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Media {
    pub kind: MediaKind,
    /// 1-based epoch of its stage.
    pub epoch: usize,
    pub path: PathBuf,
}

impl MediaKind {
    /// The file of epoch `epoch` in `RUN/media`.
    pub fn file_name(self, epoch: usize) -> String {
        match self {
            MediaKind::Reconstructions => format!("recon-epoch-{epoch:03}.png"),
            MediaKind::Samples => format!("samples-epoch-{epoch:03}.png"),
            MediaKind::LatentMap => format!("latent-epoch-{epoch:03}.json"),
        }
    }

    fn parse(name: &str) -> Option<(MediaKind, usize)> {
        [
            MediaKind::Reconstructions,
            MediaKind::Samples,
            MediaKind::LatentMap,
        ]
        .into_iter()
        .find_map(|kind| {
            let pattern = kind.file_name(0);
            let (prefix, suffix) = pattern.split_once("000")?;
            let number = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
            Some((kind, number.parse().ok()?))
        })
    }
}

impl RunSummary {
    /// Read the run in `dir` as of `now` (Unix seconds). Never fails: an
    /// unreadable run is a row saying why.
    pub fn read(dir: &Path, now: u64) -> Self {
        let mut s = RunSummary {
            dir: dir.to_path_buf(),
            name: dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            status: String::new(),
            message: None,
            origin: None,
            started: None,
            seconds: None,
            dataset: None,
            backend: None,
            config: None,
            values: BTreeMap::new(),
            ae_step: None,
            diffusion_step: None,
            scores: None,
            scores_problem: None,
            note: std::fs::read_to_string(dir.join(NOTE)).unwrap_or_default(),
            sweep: super::sweep::Membership::read(dir),
            media: media(dir),
        };
        if let Some(m) = &s.sweep {
            // Sweep runs are named by grid point: the sweep tells them apart.
            s.name = format!("{}/{}", m.sweep, s.name);
        }
        let status = RunStatus::read(dir);
        if let Some(st) = &status {
            let state = st.seen(now);
            s.status = state.name().into();
            s.message = st.message.clone();
            s.origin = st.origin.clone();
            s.started = Some(st.started);
            let end = if state == RunState::Running {
                now
            } else {
                st.heartbeat
            };
            s.seconds = Some(end.saturating_sub(st.started));
        }
        match FinalScores::read(dir) {
            Some(Ok(scores)) => s.scores = Some(scores),
            Some(Err(problem)) => s.scores_problem = Some(problem),
            None => {}
        }
        match RunDir::open(dir) {
            Ok((_, cfg, state)) => {
                s.dataset = Some(cfg.dataset.name().into());
                s.values = flatten(&cfg);
                s.config = Some(cfg);
                if let Some(st) = &state {
                    s.ae_step = Some(st.ae_step);
                    s.diffusion_step = Some(st.diffusion_step);
                    s.backend = Some(st.backend.clone());
                }
                if status.is_none() {
                    // Runs from before statuses were kept: what the checkpoint says.
                    let done = state.as_ref().is_some_and(|s| s.diffusion_done);
                    s.status = if done { "finished" } else { "stopped" }.into();
                }
            }
            Err(e) => {
                s.status = "unreadable".into();
                s.message = Some(e.to_string());
            }
        }
        s
    }

    /// Whether a process is training it now (as far as its status says).
    pub fn training(&self) -> bool {
        self.status == RunState::Running.name()
    }

    /// The metric `key` of `super::METRICS`, if scored.
    pub fn metric(&self, key: &str) -> Option<f64> {
        self.scores.as_ref()?.metric(key)
    }

    /// What the history slider walks: the reconstructions of each
    /// autoencoder epoch, then the samples of each diffusion epoch.
    pub fn history(&self) -> Vec<&Media> {
        self.media
            .iter()
            .filter(|m| m.kind != MediaKind::LatentMap)
            .collect()
    }

    /// The last picture of `kind` at or before `epoch` (all: `usize::MAX`).
    pub fn media_at(&self, kind: MediaKind, epoch: usize) -> Option<&Media> {
        self.media
            .iter()
            .filter(|m| m.kind == kind && m.epoch <= epoch)
            .max_by_key(|m| m.epoch)
    }
}

/// The run's pictures, reconstructions first, each by epoch.
fn media(dir: &Path) -> Vec<Media> {
    let Ok(entries) = std::fs::read_dir(dir.join(super::MEDIA)) else {
        return Vec::new();
    };
    let mut found: Vec<Media> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let (kind, epoch) = MediaKind::parse(e.file_name().to_str()?)?;
            Some(Media {
                kind,
                epoch,
                path: e.path(),
            })
        })
        .collect();
    found.sort_by_key(|m| (m.kind, m.epoch));
    found
}

/// Every leaf of the config under its dotted key, its value as a person
/// types it (so lists keep their brackets).
pub fn flatten(cfg: &ExperimentConfig) -> BTreeMap<String, String> {
    cfg.leaves()
        .into_iter()
        .map(|(key, value)| (key, crate::config::leaf_text(&value)))
        .collect()
}

/// The keys whose values differ among `runs` (a key missing from some run
/// counts as differing), in key order.
pub fn differing_keys<'a>(runs: impl IntoIterator<Item = &'a RunSummary>) -> Vec<String> {
    let runs: Vec<&RunSummary> = runs.into_iter().filter(|r| r.config.is_some()).collect();
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    let mut keys: Vec<String> = runs
        .iter()
        .flat_map(|r| r.values.keys())
        .cloned()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    keys.retain(|k| runs.iter().any(|r| r.values.get(k) != first.values.get(k)));
    keys
}
