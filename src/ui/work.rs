//! The bodies of background jobs: each takes owned inputs, runs on a job
//! thread (see `jobs.rs`) and reports through `Reply`.

use std::path::PathBuf;

use burn::tensor::Device;

use super::jobs::{CancelFlag, Job, JobResult, Jobs, LocatedData, Reply, Requester, Subset};
use super::session::Curves;
use crate::config::{SamplerKind, SamplingConfig};
use crate::data::{self, DatasetKind};
use crate::diffusion::sampler::{self, Capture, SampleRequest};
use crate::metrics::projection::{self, TsneOptions};
use crate::model::Autoencoder;
use crate::pipeline::{self, LatentDiffusion};
use crate::rng::Rng;
use crate::run::checkpoint::RunDir;

/// Find and load a dataset (downloading when allowed), for training.
pub fn load_data(jobs: &Jobs, kind: DatasetKind, data_dir: Option<PathBuf>) {
    jobs.spawn(Job::Data, move |reply| {
        let allow = !data::no_download_from_env();
        let located = data::locate(kind, data_dir.as_deref(), allow, &|p| {
            reply.send(JobResult::Progress {
                job: Job::Data,
                done: p.done as usize,
                total: p.total.unwrap_or(0) as usize,
            })
        })
        .map_err(|e| e.to_string())?;
        let data = data::load(kind, &located).map_err(|e| e.to_string())?;
        reply.send(JobResult::DataReady(Box::new(LocatedData {
            data,
            description: located.describe(),
            note: located.note().map(str::to_string),
            subset: located.is_subset(),
        })));
        Ok(())
    });
}

/// Say which dataset Start would use, without downloading anything.
pub fn preview_data(jobs: &Jobs, kind: DatasetKind, data_dir: Option<PathBuf>) {
    jobs.spawn(Job::DataPreview, move |reply| {
        let located =
            data::locate(kind, data_dir.as_deref(), false, &|_| {}).map_err(|e| e.to_string())?;
        reply.send(JobResult::DataPreview {
            description: located.describe(),
            subset: located.is_subset(),
        });
        Ok(())
    });
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Method {
    Tsne,
    Pca,
}

/// Project latents to 2-D, streaming t-SNE snapshots as it settles.
#[allow(clippy::too_many_arguments)]
pub fn project(
    jobs: &Jobs,
    ticket: u64,
    subset: Subset,
    method: Method,
    values: Vec<f32>,
    dim: usize,
    epoch: usize,
    opts: TsneOptions,
    cancel: CancelFlag,
) {
    jobs.spawn(Job::Projection, move |reply| {
        let send = |points: Vec<[f32; 2]>, iteration: usize, done: bool| {
            reply.send(JobResult::Projection {
                ticket,
                subset,
                points,
                epoch,
                iteration,
                done,
            })
        };
        match method {
            Method::Pca => send(projection::pca(&values, dim), 0, true),
            Method::Tsne => {
                // tsne runs on a one-thread pool of its own.
                let result = projection::tsne(&values, dim, &opts, &mut |i, points| {
                    send(points.to_vec(), i, false);
                    !cancel.is_cancelled()
                });
                if let Ok(points) = result {
                    send(points, opts.epochs, true);
                }
            }
        }
        Ok(())
    });
}

/// Where a generation gets its models.
#[derive(Clone)]
pub enum ModelSource {
    /// The run's last checkpoint.
    Checkpoint(PathBuf),
    /// The trainer's live models, lent during its diffusion stage; the
    /// checkpoint (if the run has one) when the trainer cannot answer.
    Live {
        lent: crossbeam_channel::Receiver<LatentDiffusion>,
        checkpoint: Option<PathBuf>,
    },
}

/// How long a sampling job waits for the trainer to lend its models: it
/// answers between two steps, unless paused.
const LOAN_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl ModelSource {
    fn load(&self, device: &Device) -> Result<LatentDiffusion, String> {
        let from_checkpoint =
            |dir: &PathBuf| LatentDiffusion::load(dir, device).map_err(|e| e.to_string());
        match self {
            ModelSource::Checkpoint(dir) => from_checkpoint(dir),
            ModelSource::Live { lent, checkpoint } => {
                match (lent.recv_timeout(LOAN_WAIT), checkpoint) {
                    (Ok(model), _) => Ok(model),
                    (Err(_), Some(dir)) => from_checkpoint(dir),
                    (Err(_), None) => {
                        Err("the trainer did not lend its model (paused, or the run \
                                       ended); resume training, or sample once its diffusion \
                                       stage has saved a checkpoint"
                            .into())
                    }
                }
            }
        }
    }
}

/// Sampler settings for one generation.
#[derive(Clone)]
pub struct Generate {
    pub source: ModelSource,
    pub device: Device,
    /// The backend's name, to sample on a compute pool of its own.
    pub backend: String,
    pub n: usize,
    pub seed: u64,
    pub sampling: SamplingConfig,
    pub capture: bool,
    pub classes: Option<Vec<usize>>,
}

fn request(g: &Generate, initial: Vec<f32>, n: usize, clip_x0: Option<f32>) -> SampleRequest {
    SampleRequest {
        initial: Some(initial),
        // A class per sample: interpolations (other n) stay unconditional.
        classes: g.classes.clone().filter(|c| c.len() == n),
        ..SampleRequest::from_config(&g.sampling, n, g.seed, clip_x0)
    }
}

/// Generate samples (and every denoising frame when `capture`) once; the
/// app caches the decoded frames so scrubbing never recomputes anything.
pub fn generate(jobs: &Jobs, requester: Requester, ticket: u64, g: Generate, cancel: CancelFlag) {
    jobs.spawn(Job::Sampling(requester), move |reply| {
        let backend = g.backend.clone();
        crate::backend::on_compute_pool_named(&backend, || {
            generate_now(reply, requester, ticket, g, cancel)
        })
    });
}

fn generate_now(
    reply: &Reply,
    requester: Requester,
    ticket: u64,
    g: Generate,
    cancel: CancelFlag,
) -> Result<(), String> {
    let model = g.source.load(&g.device)?;
    let dim = model.cfg.autoencoder.latent_dim;
    // The same x_T the sampler would draw, made explicit so that
    // interpolation can start from it.
    let initial = Rng::derive(g.seed, "sampling").normals(g.n * dim);
    let mut req = request(&g, initial.clone(), g.n, model.state.latent_bound);
    let visits = sampler::visited_timesteps(&model.schedule, &req);
    if g.capture {
        req.capture = Capture::spread(&visits, crate::pipeline::capture_cap(g.n, dim));
    }
    let (images, frames) = model
        .generate(&req, &mut |done, total| {
            reply.send(JobResult::Progress {
                job: Job::Sampling(requester),
                done,
                total,
            });
            !cancel.is_cancelled()
        })
        .map_err(|e| e.to_string())?;
    reply.send(JobResult::Generated {
        requester,
        ticket,
        images,
        frames,
        initial,
        latent_dim: dim,
        visited: visits.len(),
    });
    Ok(())
}

/// Spherical interpolation between two noise vectors.
pub fn slerp(a: &[f32], b: &[f32], t: f32) -> Vec<f32> {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    let cos = (dot / (na * nb).max(1e-12)).clamp(-1.0, 1.0);
    let omega = cos.acos();
    if omega.abs() < 1e-4 {
        return a.iter().zip(b).map(|(x, y)| x + (y - x) * t).collect();
    }
    let (wa, wb) = (
        ((1.0 - t) * omega).sin() / omega.sin(),
        (t * omega).sin() / omega.sin(),
    );
    a.iter().zip(b).map(|(x, y)| wa * x + wb * y).collect()
}

/// Decode `steps` points between two starting noises with deterministic
/// DDIM (η = 0), so the path in latent space is smooth.
pub fn interpolate(jobs: &Jobs, ticket: u64, g: Generate, a: Vec<f32>, b: Vec<f32>, steps: usize) {
    jobs.spawn(Job::Interpolation, move |reply| {
        let backend = g.backend.clone();
        crate::backend::on_compute_pool_named(&backend, || {
            interpolate_now(reply, ticket, g, a, b, steps)
        })
    });
}

fn interpolate_now(
    reply: &Reply,
    ticket: u64,
    g: Generate,
    a: Vec<f32>,
    b: Vec<f32>,
    steps: usize,
) -> Result<(), String> {
    let model = g.source.load(&g.device)?;
    let steps = steps.max(2);
    let initial: Vec<f32> = (0..steps)
        .flat_map(|i| slerp(&a, &b, i as f32 / (steps - 1) as f32))
        .collect();
    let mut g = g;
    g.sampling.sampler = SamplerKind::Ddim;
    g.sampling.eta = 0.0;
    g.capture = false;
    let req = request(&g, initial, steps, model.state.latent_bound);
    let (images, _) = model
        .generate(&req, &mut |_, _| true)
        .map_err(|e| e.to_string())?;
    reply.send(JobResult::Interpolated { ticket, images });
    Ok(())
}

/// Decode one (unscaled) encoder latent with the run's autoencoder.
pub fn decode_latent(
    jobs: &Jobs,
    run_dir: PathBuf,
    device: Device,
    index: usize,
    latent: Vec<f32>,
) {
    jobs.spawn(Job::Decode, move |reply| {
        let (run, cfg, state) = RunDir::open(&run_dir).map_err(|e| e.to_string())?;
        if state.is_none() {
            return Err(
                "no checkpoint yet: reconstructions of clicked points appear once the \
                        first checkpoint is saved"
                    .into(),
            );
        }
        let ae = run
            .load_module(
                Autoencoder::new(&cfg.autoencoder, &device),
                crate::run::AUTOENCODER,
            )
            .map_err(|e| e.to_string())?;
        let image = pipeline::decode_scaled(&ae, &latent, 1.0, &device);
        reply.send(JobResult::Decoded { index, image });
        Ok(())
    });
}

/// Run directories under `root` (those with a config.toml), newest first.
pub fn list_runs(jobs: &Jobs, root: PathBuf) {
    jobs.spawn(Job::Runs, move |reply| {
        reply.send(JobResult::RunsListed(crate::run::list_runs(&root)));
        Ok(())
    });
}

/// Summaries of every run under `root`, for the Runs panel.
pub fn summarize_runs(jobs: &Jobs, root: PathBuf, ticket: u64) {
    jobs.spawn(Job::RunSummaries, move |reply| {
        let now = crate::run::status::now_secs();
        let rows = crate::run::list_runs(&root)
            .iter()
            .map(|dir| crate::run::RunSummary::read(dir, now))
            .collect();
        reply.send(JobResult::RunSummaries { ticket, rows });
        Ok(())
    });
}

/// What a person does to a run from the Runs panel.
pub enum RunChange {
    Note(String),
    Rename(String),
    Delete,
}

pub fn change_run(jobs: &Jobs, dir: PathBuf, change: RunChange) {
    use crate::run::manage;
    jobs.spawn(Job::ManageRun, move |reply| {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (message, to) = match change {
            RunChange::Note(text) => {
                manage::set_note(&dir, &text).map_err(|e| e.to_string())?;
                (format!("Saved the note of {name}"), Some(dir.clone()))
            }
            RunChange::Rename(new) => {
                let to = manage::rename(&dir, &new).map_err(|e| e.to_string())?;
                (format!("Renamed {name} to {new}"), Some(to))
            }
            RunChange::Delete => {
                manage::delete(&dir).map_err(|e| e.to_string())?;
                (format!("Deleted {name}"), None)
            }
        };
        reply.send(JobResult::RunChanged {
            message,
            from: dir,
            to,
        });
        Ok(())
    });
}

pub fn load_curves(jobs: &Jobs, dir: PathBuf) {
    jobs.spawn(Job::Curves, move |reply| {
        let curves = Curves::from_run_dir(&dir)?;
        reply.send(JobResult::RunCurves {
            dir,
            curves: Box::new(curves),
        });
        Ok(())
    });
}

/// Ask for a folder (resume from a run directory) on a dialog thread.
pub fn pick_folder(jobs: &Jobs, start: PathBuf) {
    jobs.spawn(Job::Dialog, move |reply| {
        if let Some(dir) = rfd::FileDialog::new().set_directory(start).pick_folder() {
            reply.send(JobResult::PickedFolder(dir));
        }
        Ok(())
    });
}

/// Keep `(subset)` names stable in the UI.
pub fn subset_name(s: Subset) -> &'static str {
    match s {
        Subset::Batch => "one batch",
        Subset::All => "whole test split",
    }
}
