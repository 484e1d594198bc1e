//! Runs a whole experiment — both stages — and the thread it runs on.

use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::Instant;

use burn::tensor::Device;
use crossbeam_channel::{Receiver, Sender, bounded, unbounded};

use super::events::{Command, Event, Stage};
use super::trainer::{Ctx, DeviceData, Outcome, TrainError};
use super::{ae_stage, diffusion_stage, scoring};
use crate::config::ExperimentConfig;
use crate::data::Dataset;
use crate::run::rows::{EpochRow, LossRow};
use crate::run::status::{RunState, RunStatus, StatusKeeper};
use crate::run::{CHECKPOINT, RunDir, STATE, TrainState};

/// Where a run starts from.
#[derive(Debug, Clone)]
pub enum Start {
    /// A new run in this directory (must not hold one already).
    New(ExperimentConfig),
    /// Continue the run in this directory from its last checkpoint.
    Resume,
}

pub struct TrainJob {
    pub run_dir: PathBuf,
    pub start: Start,
    pub device: Device,
    pub backend_name: String,
    pub data: Dataset,
    /// The preset or config file a new run starts from, kept in its status
    /// (a resumed run keeps the one it started from).
    pub origin: Option<String>,
}

/// Train both stages, reporting through `events`. Errors are returned (and
/// not emitted), so callers decide how to show them.
pub fn run(
    job: TrainJob,
    events: Sender<Event>,
    commands: Receiver<Command>,
) -> Result<Outcome, (TrainError, Option<PathBuf>)> {
    let began = Instant::now();
    let (run, cfg, state) = match &job.start {
        Start::New(cfg) => (
            RunDir::create(&job.run_dir, cfg).map_err(|e| (e.into(), None))?,
            cfg.clone(),
            None,
        ),
        Start::Resume => RunDir::open_for_training(&job.run_dir).map_err(|e| (e.into(), None))?,
    };
    // Logs may run past the checkpoint when the previous run died: drop
    // those rows so the curve continues seamlessly.
    run.truncate::<LossRow>(state.as_ref())
        .and_then(|_| run.truncate::<EpochRow>(state.as_ref()))
        .map_err(|e| (e.into(), None))?;
    let state = state.unwrap_or_else(|| TrainState::fresh(&job.backend_name));
    let mut state = state;
    let fingerprint = job.data.fingerprint();
    match &state.data {
        Some(trained_on) if *trained_on != fingerprint => {
            return Err((
                TrainError::Other(format!(
                    "{} was trained on [{trained_on}] but the data found now is [{fingerprint}] \
                     ({}); resume with the same data (pass the --data-dir it used)",
                    job.run_dir.display(),
                    job.data.source
                )),
                None,
            ));
        }
        _ => state.data = Some(fingerprint),
    }
    let resumed_at = match (&job.start, state.stage) {
        (Start::Resume, Stage::Autoencoder) => Some((Stage::Autoencoder, state.ae_step)),
        (Start::Resume, Stage::Diffusion) => Some((Stage::Diffusion, state.diffusion_step)),
        _ => None,
    };
    let checkpoint = resumed_at.map(|_| run.checkpoint_dir());
    // This process holds the run and will train it: its status is ours to
    // keep (a refused resume above leaves the previous status as it was).
    let origin = match job.start {
        Start::New(_) => job.origin.clone(),
        Start::Resume => RunStatus::read(&job.run_dir).and_then(|s| s.origin),
    };
    let keeper = StatusKeeper::start(&job.run_dir, origin).map_err(|e| (e.into(), None))?;
    let _ = events.send(Event::RunStarted {
        run_dir: job.run_dir.clone(),
        config: Box::new(cfg.clone()),
        backend: job.backend_name.clone(),
        dataset: job.data.source.clone(),
        train_images: job.data.train_len(),
        test_images: job.data.test_len(),
        resumed_at,
    });
    let mut ctx = Ctx {
        data: DeviceData::new(&job.data, &job.device),
        cfg,
        run,
        state,
        device: job.device,
        events: events.clone(),
        commands,
        last_checkpoint: checkpoint,
        loans: Vec::new(),
    };
    let result = (|| {
        let (ae, outcome) = ae_stage::run(&mut ctx)?;
        if outcome == Outcome::Stopped {
            return Ok(outcome);
        }
        ctx.state.stage = Stage::Diffusion;
        diffusion_stage::run(&mut ctx, &ae)
    })();
    // Training is done and checkpointed: a scoring failure is reported in
    // the status but does not turn the run into a failed one.
    let (scores, scoring_problem) = match &result {
        Ok(Outcome::Finished) => match scoring::final_scores(&mut ctx, &job.data) {
            Ok(Some(scores)) => (Some(scores), None),
            Ok(None) => (
                None,
                Some("stopped while scoring: resume the run to score it".to_string()),
            ),
            Err(e) => (
                None,
                Some(format!("training finished; scoring it failed: {e}")),
            ),
        },
        _ => (None, None),
    };
    // Stopped while scoring: Stopped, so a sweep resumes it (resuming a
    // trained run only scores it).
    let stopped_scoring = matches!(&result, Ok(Outcome::Finished))
        && scores.is_none()
        && scoring_problem
            .as_deref()
            .is_some_and(|p| p.starts_with("stopped"));
    match &result {
        Ok(Outcome::Finished) if stopped_scoring => {
            keeper.settle(RunState::Stopped, scoring_problem.clone())
        }
        Ok(Outcome::Finished) => keeper.settle(RunState::Finished, scoring_problem.clone()),
        Ok(Outcome::Stopped) => keeper.settle(RunState::Stopped, None),
        Err(e) => keeper.settle(RunState::Failed, Some(e.to_string())),
    }
    match result {
        Ok(Outcome::Finished) => {
            let _ = events.send(Event::Finished {
                run_dir: job.run_dir,
                seconds: began.elapsed().as_secs_f64(),
                scores: scores.map(Box::new),
                unscored: scoring_problem,
            });
            Ok(Outcome::Finished)
        }
        Ok(Outcome::Stopped) => {
            let _ = events.send(Event::Stopped {
                checkpoint: ctx.last_checkpoint.clone(),
            });
            Ok(Outcome::Stopped)
        }
        Err(e) => Err((e, ctx.last_checkpoint)),
    }
}

/// Events a watcher may leave unread before the trainer waits for it.
pub const EVENT_QUEUE: usize = 4096;

/// A training run on its own thread. Panics inside the engine become a
/// `Failed` event; the watcher never waits on the worker.
pub struct Worker {
    pub events: Receiver<Event>,
    pub commands: Sender<Command>,
    handle: Option<JoinHandle<()>>,
}

impl Worker {
    pub fn spawn(job: TrainJob) -> Self {
        // Bounded: a watcher that stops reading (but keeps the receiver)
        // makes training wait instead of queueing events without end.
        let (ev_tx, ev_rx) = bounded(EVENT_QUEUE);
        let (cmd_tx, cmd_rx) = unbounded();
        let handle = std::thread::Builder::new()
            .name("latentlab-train".into())
            .spawn(move || {
                crate::backend::pin_training_thread();
                let tx = ev_tx.clone();
                // After a panic the run's last complete checkpoint is still on disk.
                let saved = job.run_dir.join(CHECKPOINT);
                let backend = job.backend_name.clone();
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    crate::backend::on_compute_pool_named(&backend, || run(job, ev_tx, cmd_rx))
                }));
                let failure = match outcome {
                    Ok(Ok(_)) => None,
                    Ok(Err((e, checkpoint))) => Some((e.to_string(), checkpoint)),
                    Err(panic) => Some((
                        format!(
                            "internal error in the training engine: {}",
                            panic_message(&panic)
                        ),
                        Some(saved).filter(|dir| dir.join(STATE).exists()),
                    )),
                };
                if let Some((message, checkpoint)) = failure {
                    let _ = tx.send(Event::Failed {
                        message,
                        checkpoint,
                    });
                }
            })
            .expect("spawning a thread");
        Self {
            events: ev_rx,
            commands: cmd_tx,
            handle: Some(handle),
        }
    }

    pub fn send(&self, command: Command) {
        let _ = self.commands.send(command);
    }

    /// Wait for the thread to end (after Finished/Stopped/Failed).
    pub fn join(mut self) {
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}
