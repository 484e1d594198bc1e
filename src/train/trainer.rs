//! What both training stages share: the run context, command handling
//! between steps, batched loss read-back, learning-rate schedule and the
//! device-resident dataset.

use std::path::PathBuf;
use std::time::Instant;

use burn::prelude::*;
use crossbeam_channel::{Receiver, Sender};

use super::events::{Command, Event, ModelRequest, Progress, Stage};
use crate::config::{ExperimentConfig, LrSchedule, StageTraining};
use crate::data::Dataset;
use crate::rng::Rng;
use crate::run::checkpoint::{CheckpointError, RunDir, TrainState};
use crate::run::rows::{LossRow, Row};

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(
        "the {stage} loss (or the weights' sum) became {value} at step {step}; training stopped. \
         The last good checkpoint is kept — lower the learning rate or enable grad_clip and resume"
    )]
    NonFinite {
        stage: &'static str,
        step: usize,
        value: f32,
    },
    #[error("{0}")]
    Other(String),
}

/// How a training run ended when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Finished,
    Stopped,
}

/// The images of both splits, resident on the device so a batch is a gather
/// by index with no host→device copy of pixels.
pub struct DeviceData {
    pub train: Tensor<4>,
    pub test: Tensor<4>,
    pub train_len: usize,
    pub test_len: usize,
    pub test_pixels: Vec<f32>,
    pub test_labels: Vec<u8>,
    pub train_labels: Vec<u8>,
}

impl DeviceData {
    pub fn new(data: &Dataset, device: &Device) -> Self {
        let side = data.rows;
        let upload = |pixels: &[u8]| {
            let n = pixels.len() / (side * side);
            Tensor::<4>::from_data(
                TensorData::new(Dataset::to_f32(pixels), [n, 1, side, side]),
                device,
            )
        };
        Self {
            train: upload(&data.train_images),
            test: upload(&data.test_images),
            train_len: data.train_len(),
            test_len: data.test_len(),
            test_pixels: Dataset::to_f32(&data.test_images),
            test_labels: data.test_labels.clone(),
            train_labels: data.train_labels.clone(),
        }
    }
}

/// Everything a stage needs besides its models.
pub struct Ctx {
    pub cfg: ExperimentConfig,
    pub run: RunDir,
    pub state: TrainState,
    /// The plain device; models train on `device.clone().autodiff()`.
    pub device: Device,
    pub data: DeviceData,
    pub events: Sender<Event>,
    pub commands: Receiver<Command>,
    pub last_checkpoint: Option<PathBuf>,
    /// Requests for the live models, answered by the diffusion stage.
    pub loans: Vec<ModelRequest>,
}

/// What the caller of `between_steps` must do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Control {
    Continue,
    Checkpoint,
    Stop,
}

impl Ctx {
    pub fn emit(&self, event: Event) {
        // A watcher that went away must not stop training; the run dir keeps everything.
        let _ = self.events.send(event);
    }

    /// Drain commands; while paused, block until resumed or stopped.
    pub fn between_steps(&mut self) -> Control {
        let mut control = Control::Continue;
        let mut paused = false;
        loop {
            let cmd = if paused {
                match self.commands.recv() {
                    Ok(c) => c,
                    Err(_) => return Control::Stop,
                }
            } else {
                match self.commands.try_recv() {
                    Ok(c) => c,
                    Err(_) => return control,
                }
            };
            match cmd {
                Command::Pause if !paused => {
                    paused = true;
                    self.emit(Event::Paused);
                }
                Command::Resume if paused => {
                    paused = false;
                    self.emit(Event::Resumed);
                }
                Command::Stop => return Control::Stop,
                Command::SaveCheckpoint => control = Control::Checkpoint,
                // Only the diffusion stage has a model to lend; dropping
                // the request tells the asker so at once.
                Command::LendModel(request) if self.state.stage == Stage::Diffusion => {
                    self.loans.push(request)
                }
                _ => {}
            }
        }
    }

    pub fn log<R: Row>(&self, rows: &[R]) -> Result<(), TrainError> {
        Ok(self.run.append(rows)?)
    }
}

/// Learning rate at `step` (0-based) of `total`: linear warm-up, then
/// constant or cosine decay to zero. A pure function of the step, so a
/// resumed run follows the same schedule.
pub fn lr_at(t: &StageTraining, step: usize, total: usize) -> f64 {
    if step < t.warmup_steps {
        return t.lr * (step + 1) as f64 / t.warmup_steps as f64;
    }
    match t.lr_schedule {
        LrSchedule::Constant => t.lr,
        LrSchedule::Cosine => {
            let span = total.saturating_sub(t.warmup_steps).max(1) as f64;
            let progress = ((step - t.warmup_steps) as f64 / span).min(1.0);
            t.lr * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
        }
    }
}

/// The stage's step plan: batches per epoch (the last one may be short, as
/// with PyTorch's DataLoader) and total steps, capped by `max_steps`.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub steps_per_epoch: usize,
    pub total_steps: usize,
    pub epochs: usize,
    pub batch_size: usize,
}

impl Plan {
    pub fn new(t: &StageTraining, items: usize) -> Self {
        let steps_per_epoch = items.div_ceil(t.batch_size);
        let full = steps_per_epoch * t.epochs;
        let total_steps = if t.max_steps > 0 {
            full.min(t.max_steps)
        } else {
            full
        };
        Self {
            steps_per_epoch,
            total_steps,
            epochs: t.epochs,
            batch_size: t.batch_size,
        }
    }

    pub fn epoch_of(&self, step: usize) -> usize {
        step / self.steps_per_epoch
    }

    /// Whether `step` (steps done) closes an epoch or the stage.
    pub fn ends_epoch(&self, steps_done: usize) -> bool {
        steps_done.is_multiple_of(self.steps_per_epoch) || steps_done == self.total_steps
    }
}

/// The shuffled order of one epoch: a pure function of seed, stage and
/// epoch, so resuming mid-epoch sees the same batches.
pub fn epoch_order(seed: u64, stage: Stage, epoch: usize, items: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..items).collect();
    Rng::derive(
        seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        stage.name(),
    )
    .shuffle(&mut order);
    order
}

pub fn index_tensor(indices: &[usize], device: &Device) -> Tensor<1, Int> {
    let v: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
    Tensor::<1, Int>::from_data(TensorData::new(v, [indices.len()]), device)
}

/// Losses kept on the device until read back in one go every `log_every`
/// steps: no per-step host round trip.
pub struct LossBuffer {
    stage: Stage,
    pending: Vec<(usize, Tensor<1>)>,
    window_start: Instant,
    window_images: usize,
    sum: f64,
    count: usize,
}

impl LossBuffer {
    pub fn new(stage: Stage) -> Self {
        Self {
            stage,
            pending: Vec::new(),
            window_start: Instant::now(),
            window_images: 0,
            sum: 0.0,
            count: 0,
        }
    }

    /// Record the loss of step `step` (1-based count of steps done).
    pub fn push(&mut self, step: usize, loss: Tensor<1>, images: usize) {
        self.pending.push((step, loss.detach().inner()));
        self.window_images += images;
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Read pending losses back, log and emit them; fails on NaN/inf.
    /// Returns images/s over the window since the last flush.
    pub fn flush(&mut self, ctx: &Ctx) -> Result<f64, TrainError> {
        if self.pending.is_empty() {
            return Ok(0.0);
        }
        let (steps, tensors): (Vec<usize>, Vec<Tensor<1>>) = self.pending.drain(..).unzip();
        let values = crate::diffusion::sampler::to_vec(Tensor::cat(tensors, 0));
        let elapsed = self.window_start.elapsed().as_secs_f64().max(1e-9);
        let rate = self.window_images as f64 / elapsed;
        self.window_start = Instant::now();
        self.window_images = 0;
        let points: Vec<(usize, f32)> = steps.into_iter().zip(values).collect();
        if let Some(&(step, value)) = points.iter().find(|(_, v)| !v.is_finite()) {
            return Err(TrainError::NonFinite {
                stage: self.stage.name(),
                step,
                value,
            });
        }
        for &(_, v) in &points {
            self.sum += v as f64;
            self.count += 1;
        }
        let rows: Vec<LossRow> = points
            .iter()
            .map(|&(step, loss)| LossRow {
                stage: self.stage,
                step,
                loss,
            })
            .collect();
        ctx.log(&rows)?;
        ctx.emit(Event::Losses {
            stage: self.stage,
            points,
        });
        Ok(rate)
    }

    /// Loss sum and count flushed so far in this epoch.
    pub fn partial(&self) -> (f64, usize) {
        (self.sum, self.count)
    }

    /// Mean of the losses flushed since the last call (the epoch mean).
    pub fn take_mean(&mut self) -> f64 {
        let mean = if self.count == 0 {
            f64::NAN
        } else {
            self.sum / self.count as f64
        };
        self.sum = 0.0;
        self.count = 0;
        mean
    }
}

/// Emit a progress event for `done` of `plan.total_steps` steps.
pub fn report_progress(ctx: &Ctx, stage: Stage, plan: &Plan, done: usize, rate: f64) {
    let left = plan.total_steps.saturating_sub(done) as f64 * plan.batch_size as f64;
    ctx.emit(Event::Progress(Progress {
        stage,
        epoch: (plan.epoch_of(done.saturating_sub(1)) + 1).min(plan.epochs),
        epochs: plan.epochs,
        step: done,
        total_steps: plan.total_steps,
        images_per_sec: rate,
        eta_secs: if rate > 0.0 { left / rate } else { f64::NAN },
    }));
}

/// Refuse to checkpoint weights that are no longer finite (an infinite
/// gradient can turn them into NaN while that step's loss was still finite),
/// so the last good checkpoint stays the last good one.
pub fn ensure_finite<M: burn::module::Module>(
    model: &M,
    stage: Stage,
    step: usize,
) -> Result<(), TrainError> {
    let total = crate::diffusion::sampler::to_vec(super::optim::flatten(model).sum())[0];
    if total.is_finite() {
        Ok(())
    } else {
        Err(TrainError::NonFinite {
            stage: stage.name(),
            step,
            value: total,
        })
    }
}

/// Mean squared error as a one-element tensor.
pub fn mse<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> Tensor<1> {
    crate::model::fused::mse_loss(a, b)
}

/// What `StageLoop::finish_step` reports when a step closes an epoch.
pub struct EpochEnd {
    /// 1-based.
    pub epoch: usize,
    pub mean_loss: f64,
    pub seconds: f64,
}

/// The loop both stages share: which samples each step trains on, when the
/// losses are read back and progress reported, when an epoch ends, and what
/// was asked for between steps.
pub struct StageLoop {
    pub plan: Plan,
    stage: Stage,
    seed: u64,
    items: usize,
    log_every: usize,
    every_steps: usize,
    order: Vec<usize>,
    order_epoch: Option<usize>,
    losses: LossBuffer,
    epoch_start: std::time::Instant,
}

impl StageLoop {
    pub fn new(ctx: &Ctx, stage: Stage, training: &StageTraining) -> Self {
        let plan = Plan::new(training, ctx.data.train_len);
        let mut losses = LossBuffer::new(stage);
        let done = match stage {
            Stage::Autoencoder => ctx.state.ae_step,
            Stage::Diffusion => ctx.state.diffusion_step,
        };
        // Resuming mid-epoch: carry the epoch's losses so far.
        if done % plan.steps_per_epoch != 0 {
            (losses.sum, losses.count) = ctx.state.epoch_loss;
        }
        Self {
            plan,
            stage,
            seed: ctx.cfg.seed,
            items: ctx.data.train_len,
            log_every: ctx.cfg.checkpoint.log_every,
            every_steps: ctx.cfg.checkpoint.every_steps,
            order: Vec::new(),
            order_epoch: None,
            losses,
            epoch_start: std::time::Instant::now(),
        }
    }

    /// Indices of the training samples that step `step` (0-based) uses.
    pub fn batch(&mut self, step: usize) -> Vec<usize> {
        let epoch = self.plan.epoch_of(step);
        if self.order_epoch != Some(epoch) {
            self.order = epoch_order(self.seed, self.stage, epoch, self.items);
            self.order_epoch = Some(epoch);
        }
        let b = step % self.plan.steps_per_epoch;
        let size = self.plan.batch_size;
        self.order[b * size..((b + 1) * size).min(self.order.len())].to_vec()
    }

    /// Record the loss of a finished step (`done` steps so far); read the
    /// losses back when due. Returns the epoch's summary if it just ended.
    pub fn finish_step(
        &mut self,
        ctx: &Ctx,
        done: usize,
        loss: Tensor<1>,
        images: usize,
    ) -> Result<Option<EpochEnd>, TrainError> {
        self.losses.push(done, loss, images);
        let epoch_done = self.plan.ends_epoch(done);
        if self.losses.len() >= self.log_every || epoch_done {
            let rate = self.losses.flush(ctx)?;
            report_progress(ctx, self.stage, &self.plan, done, rate);
        }
        if !epoch_done {
            return Ok(None);
        }
        let end = EpochEnd {
            epoch: self.plan.epoch_of(done - 1) + 1,
            mean_loss: self.losses.take_mean(),
            seconds: self.epoch_start.elapsed().as_secs_f64(),
        };
        self.epoch_start = std::time::Instant::now();
        Ok(Some(end))
    }

    /// Commands and periodic checkpoints after step `done`: returns whether
    /// to save a checkpoint now (losses are flushed first, so the log never
    /// lags the checkpoint) and whether to stop.
    pub fn control(&mut self, ctx: &mut Ctx, done: usize) -> Result<(bool, bool), TrainError> {
        let control = ctx.between_steps();
        let periodic = self.every_steps > 0 && done.is_multiple_of(self.every_steps);
        let save = control != Control::Continue || periodic;
        if save {
            self.losses.flush(ctx)?;
            ctx.state.epoch_loss = self.losses.partial();
        }
        Ok((save, control == Control::Stop))
    }
}
