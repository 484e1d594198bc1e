//! Work that must never run on the UI thread — dataset loading, model
//! loading and sampling, projections, file dialogs and writes — each on its
//! own thread, reporting back over one channel the app drains every frame.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::{Receiver, Sender, unbounded};

use crate::data::Dataset;
use crate::train::events::DecodedFrame;

/// Which projection a result belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Subset {
    /// One batch of test latents.
    Batch,
    /// Every evaluated test latent.
    All,
}

#[derive(Debug, Clone)]
pub struct LocatedData {
    pub data: Dataset,
    pub description: String,
    pub note: Option<String>,
    pub subset: bool,
}

/// What a background job does, and for whom: its progress and its failure
/// go back to that owner by type, never by matching a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// Finding and loading the dataset a run trains on.
    Data,
    /// Saying which dataset Start would use.
    DataPreview,
    Projection,
    /// Sampling for one panel.
    Sampling(Requester),
    Interpolation,
    /// Decoding one latent point.
    Decode,
    Runs,
    /// Reading every run's summary for the Runs panel.
    RunSummaries,
    /// Renaming, annotating or deleting a run.
    ManageRun,
    Curves,
    Dialog,
    Export,
}

/// The panels that generate samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requester {
    Samples,
    Denoising,
}

impl Job {
    /// Names the job in thread names and messages.
    pub fn name(self) -> &'static str {
        match self {
            Job::Data => "data",
            Job::DataPreview => "data-preview",
            Job::Projection => "projection",
            Job::Sampling(_) => "sampling",
            Job::Interpolation => "interpolation",
            Job::Decode => "decode",
            Job::Runs => "runs",
            Job::RunSummaries => "run summaries",
            Job::ManageRun => "run",
            Job::Curves => "curves",
            Job::Dialog => "dialog",
            Job::Export => "export",
        }
    }
}

pub enum JobResult {
    DataReady(Box<LocatedData>),
    DataPreview {
        description: String,
        subset: bool,
    },
    Projection {
        ticket: u64,
        subset: Subset,
        points: Vec<[f32; 2]>,
        epoch: usize,
        /// t-SNE iterations done so far (0 for PCA).
        iteration: usize,
        done: bool,
    },
    Progress {
        job: Job,
        done: usize,
        total: usize,
    },
    Generated {
        requester: Requester,
        ticket: u64,
        images: Vec<f32>,
        frames: Vec<DecodedFrame>,
        /// The x_T each sample started from (for interpolation).
        initial: Vec<f32>,
        latent_dim: usize,
        /// Timesteps the sampler walked (frames keep at most
        /// `pipeline::capture_cap` of them).
        visited: usize,
    },
    Interpolated {
        ticket: u64,
        images: Vec<f32>,
    },
    Decoded {
        index: usize,
        image: Vec<f32>,
    },
    RunsListed(Vec<PathBuf>),
    RunSummaries {
        ticket: u64,
        rows: Vec<crate::run::RunSummary>,
    },
    /// A run was renamed, annotated or deleted: what to say about it, and
    /// its old and new paths (None when deleted).
    RunChanged {
        message: String,
        from: PathBuf,
        to: Option<PathBuf>,
    },
    RunCurves {
        dir: PathBuf,
        curves: Box<super::session::Curves>,
    },
    /// A dialog picked a folder (for resuming a run).
    PickedFolder(PathBuf),
    ExportWritten(PathBuf),
    /// The chosen file exists: the app asks before overwriting.
    ExportExists {
        path: PathBuf,
        bytes: Arc<Vec<u8>>,
    },
    ExportCancelled,
    Failed {
        job: Job,
        message: String,
    },
}

/// A cancel flag shared with a running job.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Spawns job threads and collects their results.
pub struct Jobs {
    tx: Sender<JobResult>,
    rx: Receiver<JobResult>,
    /// Wakes the UI when a result arrives (None in headless tests).
    waker: Option<egui::Context>,
    running: Arc<std::sync::atomic::AtomicUsize>,
}

impl Jobs {
    pub fn new(waker: Option<egui::Context>) -> Self {
        let (tx, rx) = unbounded();
        Self {
            tx,
            rx,
            waker,
            running: Arc::default(),
        }
    }

    /// Jobs still running.
    pub fn busy(&self) -> usize {
        self.running.load(Ordering::Relaxed)
    }

    /// The context to wake when something arrives (None in headless use).
    pub fn waker(&self) -> Option<egui::Context> {
        self.waker.clone()
    }

    pub fn try_recv(&self) -> Option<JobResult> {
        self.rx.try_recv().ok()
    }

    /// Run `work` on its own thread; an error or a panic becomes `Failed`.
    pub fn spawn(
        &self,
        job: Job,
        work: impl FnOnce(&Reply) -> Result<(), String> + Send + 'static,
    ) {
        let tx = Reply {
            tx: self.tx.clone(),
            waker: self.waker.clone(),
        };
        let running = self.running.clone();
        running.fetch_add(1, Ordering::Relaxed);
        let spawned = std::thread::Builder::new()
            .name(format!("latentlab-{}", job.name()))
            .spawn(move || {
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&tx)));
                let message = match outcome {
                    Ok(Ok(())) => None,
                    Ok(Err(m)) => Some(m),
                    Err(p) => Some(format!("internal error: {}", panic_text(&p))),
                };
                running.fetch_sub(1, Ordering::Relaxed);
                match message {
                    Some(message) => tx.send(JobResult::Failed { job, message }),
                    None => tx.wake(),
                }
            });
        if let Err(e) = spawned {
            self.running.fetch_sub(1, Ordering::Relaxed);
            let _ = self.tx.send(JobResult::Failed {
                job,
                message: format!("cannot start a background thread: {e}"),
            });
        }
    }
}

/// How a job reports back: every message also wakes the UI.
pub struct Reply {
    tx: Sender<JobResult>,
    waker: Option<egui::Context>,
}

impl Reply {
    pub fn send(&self, result: JobResult) {
        let _ = self.tx.send(result);
        self.wake();
    }

    fn wake(&self) {
        if let Some(ctx) = &self.waker {
            ctx.request_repaint();
        }
    }
}

pub fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

/// Whether a native file dialog can open here: the portal needs a D-Bus
/// session, and rfd's fallback needs zenity on PATH.
pub fn dialogs_available() -> bool {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some() {
        return true;
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join("zenity").is_file()))
}
