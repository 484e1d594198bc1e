//! What the panels show about the current run, as plain data: the UI
//! folds worker events into this and panels only read it.

use std::path::PathBuf;

use crate::metrics::ImageMetrics;
use crate::train::events::{DecodedFrame, EvalSummary, Progress};
use crate::train::{Event, Stage};

/// One epoch's reconstruction grid (originals above reconstructions).
#[derive(Debug, Clone)]
pub struct ReconEpoch {
    pub epoch: usize,
    pub originals: Vec<f32>,
    pub reconstructions: Vec<f32>,
    pub metrics: Vec<ImageMetrics>,
    pub mean: EvalSummary,
}

#[derive(Debug, Clone)]
pub struct Latents {
    pub epoch: usize,
    pub dim: usize,
    pub values: Vec<f32>,
    pub labels: Vec<u8>,
}

/// Samples with their decoded denoising frames (from a preview or a generation).
#[derive(Debug, Clone, Default)]
pub struct Denoising {
    /// Where they came from, e.g. "preview after diffusion epoch 3".
    pub origin: String,
    pub n: usize,
    pub images: Vec<f32>,
    /// Ordered as the sampler visited them: t from high to low.
    pub frames: Vec<DecodedFrame>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Idle,
    LoadingData,
    Running,
    Paused,
    Stopping,
}

#[derive(Debug, Clone, Default)]
pub struct EpochMean {
    pub epoch: usize,
    /// Last step of the epoch (where its mean is drawn on the curve).
    pub step: usize,
    pub mean: f64,
}

#[derive(Debug, Clone, Default)]
pub struct Curves {
    pub ae: Vec<(usize, f32)>,
    pub diffusion: Vec<(usize, f32)>,
    pub ae_epochs: Vec<EpochMean>,
    pub diffusion_epochs: Vec<EpochMean>,
    /// Bumped on every change so derived data (EMA, decimation) is recomputed only then.
    pub version: u64,
}

impl Curves {
    pub fn stage(&self, stage: Stage) -> &[(usize, f32)] {
        match stage {
            Stage::Autoencoder => &self.ae,
            Stage::Diffusion => &self.diffusion,
        }
    }

    pub fn epochs(&self, stage: Stage) -> &[EpochMean] {
        match stage {
            Stage::Autoencoder => &self.ae_epochs,
            Stage::Diffusion => &self.diffusion_epochs,
        }
    }

    pub fn push(&mut self, stage: Stage, points: &[(usize, f32)]) {
        let v = match stage {
            Stage::Autoencoder => &mut self.ae,
            Stage::Diffusion => &mut self.diffusion,
        };
        v.extend_from_slice(points);
        self.version += 1;
    }

    pub fn push_epoch(&mut self, stage: Stage, epoch: usize, mean: f64) {
        let step = self.stage(stage).last().map(|p| p.0).unwrap_or(0);
        let v = match stage {
            Stage::Autoencoder => &mut self.ae_epochs,
            Stage::Diffusion => &mut self.diffusion_epochs,
        };
        v.push(EpochMean { epoch, step, mean });
        self.version += 1;
    }

    /// Curves read back from a run directory's logs.
    pub fn from_run_dir(dir: &std::path::Path) -> Result<Self, String> {
        use crate::run::rows::{self, EpochRow, LossRow};
        let mut c = Curves::default();
        for row in rows::read::<LossRow>(dir)? {
            c.push(row.stage, &[(row.step, row.loss)]);
        }
        for row in rows::read::<EpochRow>(dir)? {
            let v = match row.stage {
                Stage::Autoencoder => &mut c.ae_epochs,
                Stage::Diffusion => &mut c.diffusion_epochs,
            };
            v.push(EpochMean {
                epoch: row.epoch,
                step: row.step,
                mean: row.mean_loss,
            });
        }
        Ok(c)
    }
}

/// Everything known about the run being watched.
#[derive(Debug, Clone)]
pub struct Session {
    pub state: RunState,
    pub run_dir: Option<PathBuf>,
    pub run_name: String,
    pub backend: String,
    pub dataset: String,
    /// The watched run's own config (its classes and dataset decide what
    /// the class picker offers).
    pub run_config: Option<Box<crate::config::ExperimentConfig>>,
    pub progress: Option<Progress>,
    pub curves: Curves,
    pub recons: Vec<ReconEpoch>,
    pub latents: Option<Latents>,
    /// Latest preview from the trainer (DDIM frames each diffusion epoch).
    pub preview: Option<Denoising>,
    pub last_checkpoint: Option<PathBuf>,
    /// Whether a checkpoint with a trained U-Net exists (sampling possible).
    pub can_sample: bool,
    pub status: String,
    /// Bumped when the run changes, so panels drop stale caches.
    pub generation: u64,
    /// A resumed run whose earlier curves are still being read.
    pub history_pending: bool,
}

impl Default for Session {
    fn default() -> Self {
        Self {
            state: RunState::Idle,
            run_dir: None,
            run_name: String::new(),
            run_config: None,
            backend: String::new(),
            dataset: String::new(),
            progress: None,
            curves: Curves::default(),
            recons: Vec::new(),
            latents: None,
            preview: None,
            last_checkpoint: None,
            can_sample: false,
            status: "No run yet: pick a preset and press Start.".into(),
            generation: 0,
            history_pending: false,
        }
    }
}

/// What a folded event means for the app beyond the session.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    Nothing,
    /// The worker is done (finished, stopped or failed).
    Ended,
    Failed(String),
}

impl Session {
    /// Put a resumed run's logged history in front of what arrived since.
    pub fn merge_history(&mut self, mut history: Curves) {
        let c = &self.curves;
        let after = |v: &[(usize, f32)], last: Option<usize>| -> Vec<(usize, f32)> {
            v.iter()
                .copied()
                .filter(|p| last.is_none_or(|l| p.0 > l))
                .collect()
        };
        let (last_ae, last_diff) = (
            history.ae.last().map(|p| p.0),
            history.diffusion.last().map(|p| p.0),
        );
        history.ae.extend(after(&c.ae, last_ae));
        history.diffusion.extend(after(&c.diffusion, last_diff));
        for (mine, theirs) in [
            (&mut history.ae_epochs, &c.ae_epochs),
            (&mut history.diffusion_epochs, &c.diffusion_epochs),
        ] {
            let last = mine.last().map(|e| e.epoch);
            mine.extend(
                theirs
                    .iter()
                    .filter(|e| last.is_none_or(|l| e.epoch > l))
                    .cloned(),
            );
        }
        history.version = c.version + history.version + 1;
        self.curves = history;
        self.history_pending = false;
    }

    pub fn running(&self) -> bool {
        matches!(
            self.state,
            RunState::Running | RunState::Paused | RunState::Stopping | RunState::LoadingData
        )
    }

    pub fn apply(&mut self, event: Event) -> Outcome {
        match event {
            Event::RunStarted {
                run_dir,
                config,
                backend,
                dataset,
                train_images,
                test_images,
                resumed_at,
            } => {
                let keep_generation = self.generation;
                *self = Session {
                    generation: keep_generation + 1,
                    ..Session::default()
                };
                if resumed_at.is_some() {
                    // The curve continues: the app reads what the run logged
                    // before on a job thread and merges it in (`merge_history`).
                    self.history_pending = true;
                    self.can_sample = crate::run::RunDir::has_unet(&run_dir);
                }
                self.state = RunState::Running;
                self.run_name = run_dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| config.name.clone());
                self.status = match resumed_at {
                    Some((stage, step)) => format!(
                        "Resumed {} at {} step {step}",
                        run_dir.display(),
                        stage.name()
                    ),
                    None => format!(
                        "Training {} on {backend}: {train_images} train / {test_images} test images",
                        run_dir.display()
                    ),
                };
                self.run_dir = Some(run_dir);
                self.backend = backend;
                self.dataset = dataset;
                self.run_config = Some(config);
            }
            Event::Progress(p) => self.progress = Some(p),
            Event::Losses { stage, points } => self.curves.push(stage, &points),
            Event::EpochSummary {
                stage,
                epoch,
                mean_loss,
                ..
            } => self.curves.push_epoch(stage, epoch, mean_loss),
            Event::Reconstructions {
                epoch,
                originals,
                reconstructions,
                metrics,
                mean,
            } => self.recons.push(ReconEpoch {
                epoch,
                originals,
                reconstructions,
                metrics,
                mean,
            }),
            Event::Latents {
                epoch,
                dim,
                latents,
                labels,
            } => {
                self.latents = Some(Latents {
                    epoch,
                    dim,
                    values: latents,
                    labels,
                })
            }
            Event::Samples {
                epoch,
                images,
                frames,
            } => {
                let n = images.len() / crate::pipeline::PIXELS;
                self.preview = Some(Denoising {
                    origin: format!("preview after diffusion epoch {epoch} (DDIM)"),
                    n,
                    images,
                    frames,
                });
            }
            Event::CheckpointSaved { stage, step, path } => {
                if stage == Stage::Diffusion {
                    self.can_sample = true;
                }
                self.status = format!("Checkpoint saved ({} step {step})", stage.name());
                self.last_checkpoint = Some(path);
            }
            Event::StageFinished { stage } => {
                self.status = format!("The {} stage finished", stage.name());
            }
            Event::Paused => {
                self.state = RunState::Paused;
                self.status = "Paused".into();
            }
            Event::Resumed => {
                self.state = RunState::Running;
                self.status = "Training".into();
            }
            Event::Stopped { checkpoint } => {
                self.state = RunState::Idle;
                self.status = match checkpoint {
                    Some(p) => format!("Stopped; checkpoint in {}", p.display()),
                    None => "Stopped before the first checkpoint".into(),
                };
                return Outcome::Ended;
            }
            Event::Scoring { what, done, total } => {
                self.status = format!("Scoring the run: {what} ({done}/{total})");
            }
            Event::Finished {
                run_dir,
                seconds,
                unscored,
                ..
            } => {
                self.state = RunState::Idle;
                self.status = format!("Finished in {seconds:.0} s: {}", run_dir.display());
                // Trained and kept; only its final scores are missing.
                return match unscored {
                    Some(why) => Outcome::Failed(format!("{}: {why}", run_dir.display())),
                    None => Outcome::Ended,
                };
            }
            Event::Failed {
                message,
                checkpoint,
            } => {
                self.state = RunState::Idle;
                let kept = checkpoint
                    .map(|p| format!(" (last good checkpoint: {})", p.display()))
                    .unwrap_or_default();
                self.status = "Training failed".into();
                return Outcome::Failed(format!("{message}{kept}"));
            }
        }
        Outcome::Nothing
    }
}
