//! The workbench's state and frame loop. Each frame drains the worker's
//! events and the jobs' results with `try_recv` (never blocking), then draws
//! the selected panel.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use burn::tensor::Device;
use egui::ViewportCommand;

use super::config_form::ConfigForm;
use super::jobs::{CancelFlag, Job, JobResult, Jobs, LocatedData, Requester};
use super::panel::{Action, PanelCtx, SampleJob};
use super::panels::Panels;
use super::session::{Outcome, RunState, Session};
use super::settings::{Settings, Tab};
use super::widgets::TexCache;
use super::work;
use crate::backend::{self, BackendKind};
use crate::config::ExperimentConfig;
use crate::data::{Dataset, DatasetKind};
use crate::run::checkpoint::RunDir;
use crate::train::{Command, Start, TrainJob, Worker};

/// A dataset and device given by the caller (tests, benchmarks), so that
/// nothing is located or downloaded.
#[derive(Clone)]
pub struct Injected {
    pub data: Dataset,
    pub device: Device,
    pub backend: String,
}

pub struct AppOptions {
    /// Overrides the persisted runs directory.
    pub runs_dir: Option<PathBuf>,
    /// Use native file dialogs when they can open (off in tests).
    pub dialogs: bool,
    pub injected: Option<Injected>,
    /// Fill the panels with demo data (screenshots, snapshot tests).
    pub demo: bool,
    /// Ignore persisted settings (tests, screenshots).
    pub fresh_settings: bool,
    /// Repaint at this interval (None: only on input, worker reports and jobs).
    pub repaint: Option<Duration>,
    /// Paint the window background: for renderers that do not clear to
    /// `clear_color` (egui_kittest). eframe clears, so this stays off there.
    pub opaque: bool,
    /// Overrides the directory of the user's own presets.
    pub presets_dir: Option<PathBuf>,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            runs_dir: None,
            dialogs: true,
            injected: None,
            demo: false,
            fresh_settings: false,
            repaint: None,
            opaque: false,
            presets_dir: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub text: String,
    pub error: bool,
}

/// Why Generate is disabled.
pub const SAMPLING_NEEDS: &str =
    "Needs a run in its diffusion stage, or one whose diffusion stage saved a checkpoint";

/// Frame timing, for the UI benchmark.
#[derive(Debug, Default, Clone)]
pub struct FrameStats {
    pub last: Option<Instant>,
    pub intervals: Vec<f32>,
    pub ui_times: Vec<f32>,
}

impl FrameStats {
    /// Frames timed at most: an hour at 60 frames/s (800 KB), far more
    /// than a benchmark phase, and bounded however long the window stays open.
    pub const CAP: usize = 216_000;
}

struct Pending {
    start: Start,
    run_dir: PathBuf,
    kind: DatasetKind,
}

pub struct App {
    pub settings: Settings,
    pub config: ExperimentConfig,
    pub session: Session,
    pub jobs: Jobs,
    pub messages: Vec<Message>,
    pub textures: TexCache,
    /// Every panel's own state.
    pub panels: Panels,
    pub frame_stats: FrameStats,
    pub opts: AppOptions,
    pub(super) worker: Option<Worker>,
    /// The worker's events, relayed by a thread that wakes the UI on each.
    events: Option<crossbeam_channel::Receiver<crate::train::Event>>,
    pending: Option<Pending>,
    /// The last dataset loaded, kept for restarts: (kind, data dir, data).
    pub(super) data: Option<(DatasetKind, Option<PathBuf>, Arc<LocatedData>)>,
    pub(super) closing: bool,
    pub overwrite: Option<(PathBuf, Arc<Vec<u8>>)>,
    ticket: u64,
    /// The demo's made-up runs, removed with the window.
    pub(super) demo_runs: Option<tempfile::TempDir>,
    /// The history point the image panels show (the Runs panel's slider).
    pub history: Option<super::run_history::HistoryPoint>,
    /// The sweep queue waits (a queued run was stopped by hand).
    pub queue_paused: bool,
    /// The queued run training now.
    pub queue_current: Option<super::queue::QueuedRun>,
    /// Runs queued when the window last closed: ask before continuing.
    pub pending_queue_question: Option<usize>,
}

impl App {
    pub fn new(cc: &eframe::CreationContext<'_>, opts: AppOptions) -> Self {
        let settings = if opts.fresh_settings {
            Settings::default()
        } else {
            Settings::load(cc.storage)
        };
        Self::with_settings(settings, Some(cc.egui_ctx.clone()), opts)
    }

    pub fn with_settings(
        mut settings: Settings,
        ctx: Option<egui::Context>,
        opts: AppOptions,
    ) -> Self {
        if let Some(dir) = &opts.runs_dir {
            settings.runs_dir = dir.clone();
        }
        let config = ExperimentConfig::from_toml(&settings.config_toml, "saved settings")
            .or_else(|_| ExperimentConfig::preset(&settings.preset))
            .or_else(|_| ExperimentConfig::preset("quick"))
            .expect("the quick preset parses");
        let mut app = Self {
            config,
            session: Session::default(),
            jobs: Jobs::new(ctx),
            messages: Vec::new(),
            textures: TexCache::default(),
            panels: Panels::default(),
            frame_stats: FrameStats::default(),
            worker: None,
            events: None,
            pending: None,
            data: None,
            closing: false,
            overwrite: None,
            ticket: 0,
            demo_runs: None,
            history: None,
            queue_paused: false,
            queue_current: None,
            pending_queue_question: None,
            settings,
            opts,
        };
        app.panels.experiment.form = ConfigForm::from_config(&app.config);
        app.panels.experiment.presets_dir = app.presets_dir();
        app.panels.experiment.injected_source =
            app.opts.injected.as_ref().map(|i| i.data.source.clone());
        if app.opts.demo {
            super::demo::fill(&mut app);
        } else {
            app.refresh_data_preview();
            work::list_runs(&app.jobs, app.settings.runs_dir.clone());
            for dir in app.settings.overlay.clone() {
                work::load_curves(&app.jobs, dir);
            }
            if !app.settings.queue.is_empty() {
                app.pending_queue_question = Some(app.settings.queue.len());
            }
        }
        app
    }

    /// Whether the live trainer is in its diffusion stage (its models can
    /// be lent to sample from).
    fn live_diffusion(&self) -> bool {
        self.worker.is_some()
            && self.training()
            && self
                .session
                .progress
                .as_ref()
                .is_some_and(|p| p.stage == crate::train::Stage::Diffusion)
    }

    /// Whether Samples and Denoising can generate now.
    pub fn can_sample(&self) -> bool {
        self.session.can_sample || self.live_diffusion()
    }

    /// The models a generation should use: the live ones during the
    /// diffusion stage (newer than any checkpoint), else the checkpoint.
    pub fn model_source(&mut self) -> Option<super::work::ModelSource> {
        let checkpoint = self
            .session
            .run_dir
            .clone()
            .filter(|_| self.session.can_sample);
        if self.live_diffusion() {
            let (tx, rx) = crossbeam_channel::bounded(1);
            self.command(Command::LendModel(crate::train::ModelRequest(tx)));
            return Some(super::work::ModelSource::Live {
                lent: rx,
                checkpoint,
            });
        }
        checkpoint.map(super::work::ModelSource::Checkpoint)
    }

    /// Carry out what the panels asked for during the frame.
    fn apply(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Export(req) => self.export(req),
                Action::Info(text) => self.info(text),
                Action::Error(text) => self.error(text),
                Action::Generate(job) => self.generate(job),
                Action::Interpolate {
                    ticket,
                    seed,
                    sampling,
                    from,
                    to,
                    steps,
                } => {
                    let job = SampleJob {
                        requester: Requester::Samples,
                        ticket,
                        n: 1,
                        seed,
                        sampling,
                        capture: false,
                        // Interpolation decodes between two noises, unguided.
                        classes: None,
                        cancel: CancelFlag::default(),
                    };
                    if let Some(g) = self.generation(&job) {
                        work::interpolate(&self.jobs, ticket, g, from, to, steps);
                    }
                }
                Action::SetConfig(cfg) => self.config = *cfg,
                Action::RefreshDataPreview => self.refresh_data_preview(),
                Action::Start if self.panels.experiment.form.sweep_axes().is_empty() => {
                    self.start_new()
                }
                Action::Start => self.start_sweep(),
                Action::ContinueQueue => {
                    self.queue_paused = false;
                    self.advance_queue();
                }
                Action::Command(c) => self.command(c),
                Action::ResumeFrom(dir) => self.resume_from(&dir),
                Action::ShowHistory(point) => self.history = point,
                Action::SetSampling(sampling) => {
                    self.config.sampling = sampling;
                    let cfg = self.config.clone();
                    // Only the sampling fields: swept fields and edits elsewhere stay.
                    self.panels.experiment.form.reset_section(&cfg, "sampling.");
                }
                Action::DecodeLatent { index, latent } => {
                    let Some(dir) = self.session.run_dir.clone() else {
                        continue;
                    };
                    match self.device() {
                        Ok(device) => work::decode_latent(&self.jobs, dir, device, index, latent),
                        Err(e) => self.error(e),
                    }
                }
            }
        }
    }

    /// What a generation a panel asked for needs from the app: the models
    /// (live or checkpoint) and the device. None, with the panel told, when
    /// there are none.
    fn generation(&mut self, job: &SampleJob) -> Option<work::Generate> {
        let made = match (self.model_source(), self.device()) {
            (Some(source), Ok(device)) => Ok(work::Generate {
                source,
                device,
                backend: self.backend_name(),
                n: job.n,
                seed: job.seed,
                sampling: job.sampling.clone(),
                capture: job.capture,
                classes: job.classes.clone(),
            }),
            (None, _) => Err(SAMPLING_NEEDS.to_string()),
            (_, Err(e)) => Err(e),
        };
        made.inspect_err(|message| {
            let j = Job::Sampling(job.requester);
            self.panels.denoise.on_failed(j);
            self.panels.samples.on_failed(j);
            self.error(message.clone());
        })
        .ok()
    }

    /// Start a generation a panel asked for.
    fn generate(&mut self, job: SampleJob) {
        if let Some(g) = self.generation(&job) {
            work::generate(&self.jobs, job.requester, job.ticket, g, job.cancel);
        }
    }

    /// Where the user's own presets live.
    pub fn presets_dir(&self) -> Option<PathBuf> {
        self.opts
            .presets_dir
            .clone()
            .or_else(super::settings::user_preset_dir)
    }

    pub fn next_ticket(&mut self) -> u64 {
        self.ticket += 1;
        self.ticket
    }

    pub fn info(&mut self, text: impl Into<String>) {
        self.push_message(text.into(), false);
    }

    pub fn error(&mut self, text: impl Into<String>) {
        self.push_message(text.into(), true);
    }

    fn push_message(&mut self, text: String, error: bool) {
        self.messages.retain(|m| m.text != text);
        self.messages.push(Message { text, error });
        if self.messages.len() > 6 {
            self.messages.remove(0);
        }
    }

    pub fn training(&self) -> bool {
        self.worker.is_some() || self.pending.is_some()
    }

    /// The device for sampling and decoding in the window.
    pub fn device(&self) -> Result<Device, String> {
        if let Some(inj) = &self.opts.injected {
            return Ok(inj.device.clone());
        }
        let kind = BackendKind::parse(&self.settings.backend).map_err(|e| e.to_string())?;
        backend::select(kind, &self.settings.device).map_err(|e| e.to_string())
    }

    fn backend_name(&self) -> String {
        match &self.opts.injected {
            Some(inj) => inj.backend.clone(),
            None => self.settings.backend.clone(),
        }
    }

    pub fn data_dir(&self) -> Option<PathBuf> {
        let d = self.settings.data_dir.trim();
        (!d.is_empty()).then(|| PathBuf::from(d))
    }

    pub fn refresh_data_preview(&mut self) {
        if self.opts.injected.is_none() {
            self.panels.experiment.data_preview = None;
            work::preview_data(&self.jobs, self.config.dataset, self.data_dir());
        }
    }

    /// The default folder for exports.
    pub fn export_dir(&self) -> PathBuf {
        super::export::default_dir(self.session.run_dir.as_deref(), &self.settings.runs_dir)
    }

    pub fn export(&mut self, req: super::export::ExportRequest) {
        let dir = self.export_dir();
        super::export::export(&self.jobs, req, dir, self.opts.dialogs);
    }

    /// A fresh run directory for `name` under the runs directory.
    fn new_run_dir(&self, name: &str) -> PathBuf {
        crate::run::fresh_run_dir(&self.settings.runs_dir, name)
    }

    pub fn start_new(&mut self) {
        if self.training() {
            return;
        }
        // The image panels show the run that starts, not a history point.
        self.history = None;
        if !self
            .panels
            .experiment
            .form
            .problems(&self.config)
            .is_empty()
        {
            self.error("fix the highlighted settings before starting");
            return;
        }
        let run_dir = self.new_run_dir(&self.config.name);
        let kind = self.config.dataset;
        self.begin(Start::New(self.config.clone()), run_dir, kind);
    }

    pub fn resume_from(&mut self, dir: &Path) {
        if self.training() {
            return;
        }
        // The image panels show the run that starts, not a history point.
        self.history = None;
        match RunDir::open(dir) {
            Ok((_, cfg, Some(_))) => self.begin(Start::Resume, dir.to_path_buf(), cfg.dataset),
            Ok((_, _, None)) => self.error(format!(
                "{} has no checkpoint yet; nothing to resume",
                dir.display()
            )),
            Err(e) => self.error(e.to_string()),
        }
    }

    pub(super) fn begin(&mut self, start: Start, run_dir: PathBuf, kind: DatasetKind) {
        let pending = Pending {
            start,
            run_dir,
            kind,
        };
        if let Some(inj) = &self.opts.injected {
            let data = inj.data.clone();
            self.spawn_worker(pending, data);
            return;
        }
        let dir = self.data_dir();
        if let Some((k, d, data)) = &self.data
            && *k == kind
            && *d == dir
        {
            let data = data.data.clone();
            self.spawn_worker(pending, data);
            return;
        }
        self.session.state = RunState::LoadingData;
        self.session.status = format!("Loading {}…", kind.display_name());
        self.pending = Some(pending);
        work::load_data(&self.jobs, kind, dir);
    }

    fn spawn_worker(&mut self, p: Pending, data: Dataset) {
        let device = match self.device() {
            Ok(d) => d,
            Err(e) => {
                self.session.state = RunState::Idle;
                self.error(e);
                return;
            }
        };
        self.session.state = RunState::Running;
        self.session.status = format!("Starting {}…", p.run_dir.display());
        let worker = Worker::spawn(TrainJob {
            run_dir: p.run_dir,
            start: p.start,
            device,
            backend_name: self.backend_name(),
            data,
            origin: Some(self.settings.preset.clone()).filter(|p| !p.is_empty()),
        });
        // Redraw when the worker has news instead of polling on a timer:
        // frames cost CPU that training would otherwise use. One frame per
        // burst (Losses and Progress come in pairs), at most four a second:
        // live enough for curves and ETA.
        let waker = self.jobs.waker();
        let relayed = super::relay::spawn(worker.events.clone(), move || {
            if let Some(ctx) = &waker {
                ctx.request_repaint_after(Duration::from_millis(250));
            }
        });
        self.events = Some(match relayed {
            Ok(rx) => rx,
            Err(_) => worker.events.clone(),
        });
        self.worker = Some(worker);
    }

    pub fn command(&mut self, c: Command) {
        // Stopping a run by hand holds the queue until asked to continue.
        if c == Command::Stop && !self.closing {
            self.queue_paused = true;
        }
        if let Some(w) = &self.worker {
            if c == Command::Stop {
                self.session.state = RunState::Stopping;
                self.session.status = "Stopping: saving a checkpoint…".into();
            }
            w.send(c);
        }
    }

    /// Drain everything that arrived since the last frame; never blocks.
    pub fn poll(&mut self, ctx: &egui::Context) {
        let mut ended = false;
        if let Some(rx) = &self.events {
            let mut events = Vec::new();
            let mut gone = false;
            loop {
                match rx.try_recv() {
                    Ok(ev) => events.push(ev),
                    Err(crossbeam_channel::TryRecvError::Empty) => break,
                    Err(crossbeam_channel::TryRecvError::Disconnected) => {
                        gone = true;
                        break;
                    }
                }
            }
            for ev in events {
                let resumed = matches!(
                    &ev,
                    crate::train::Event::RunStarted {
                        resumed_at: Some(_),
                        ..
                    }
                );
                let outcome = self.session.apply(ev);
                if resumed && let Some(dir) = self.session.run_dir.clone() {
                    work::load_curves(&self.jobs, dir);
                }
                match outcome {
                    Outcome::Nothing => {}
                    Outcome::Ended => ended = true,
                    Outcome::Failed(m) => {
                        ended = true;
                        self.error(m);
                    }
                }
            }
            // The channel disconnects once the worker thread has dropped its sender.
            if !ended && gone {
                ended = true;
                self.session.state = RunState::Idle;
                self.error("the training thread ended without a word");
            }
        }
        if ended {
            // The thread is finishing on its own; dropping the handle detaches it.
            self.worker = None;
            self.events = None;
            work::list_runs(&self.jobs, self.settings.runs_dir.clone());
            self.queued_run_ended();
            if !self.closing {
                self.advance_queue();
            }
            if self.closing {
                ctx.send_viewport_cmd(ViewportCommand::Close);
            }
        }
        while let Some(r) = self.jobs.try_recv() {
            self.on_job(r);
        }
    }

    fn on_job(&mut self, r: JobResult) {
        match r {
            JobResult::DataReady(located) => {
                let located = Arc::new(*located);
                self.panels.experiment.data_preview =
                    Some((located.description.clone(), located.subset));
                if let Some(p) = self.pending.take() {
                    self.data = Some((p.kind, self.data_dir(), located.clone()));
                    self.spawn_worker(p, located.data.clone());
                }
            }
            JobResult::DataPreview {
                description,
                subset,
            } => {
                self.panels.experiment.data_preview = Some((description, subset));
            }
            JobResult::Failed { job, message } => {
                if job == Job::Data && self.pending.take().is_some() {
                    self.session.state = RunState::Idle;
                    self.session.status = "Could not load the dataset".into();
                }
                self.panels.denoise.on_failed(job);
                self.panels.runs.on_failed(job);
                self.panels.samples.on_failed(job);
                self.error(format!("{}: {message}", job.name()));
            }
            JobResult::Progress { job, done, total } => match job {
                Job::Sampling(Requester::Denoising) => {
                    self.panels.denoise.progress = Some((done, total))
                }
                Job::Sampling(Requester::Samples) => {
                    self.panels.samples.progress = Some((done, total))
                }
                _ => {}
            },
            JobResult::Projection { .. } | JobResult::Decoded { .. } => {
                self.panels.latent.on_result(r)
            }
            JobResult::Generated {
                requester: Requester::Denoising,
                ticket,
                ..
            } if ticket == self.panels.denoise.ticket => self.panels.denoise.on_result(r),
            JobResult::Generated {
                requester: Requester::Denoising,
                ..
            } => {}
            JobResult::Generated { .. } | JobResult::Interpolated { .. } => {
                self.panels.samples.on_result(r)
            }
            JobResult::RunsListed(runs) => self.panels.loss.runs = runs,
            JobResult::RunSummaries { ticket, rows } => self.panels.runs.on_summaries(ticket, rows),
            JobResult::RunChanged { message, from, to } => {
                // The selection follows a renamed run and drops a deleted one.
                let overlay = &mut self.settings.overlay;
                if let Some(i) = overlay.iter().position(|d| *d == from) {
                    match &to {
                        Some(to) => overlay[i] = to.clone(),
                        None => {
                            overlay.remove(i);
                        }
                    }
                }
                if let Some(curves) = self.panels.loss.overlays.remove(&from)
                    && let Some(to) = &to
                {
                    self.panels.loss.overlays.insert(to.clone(), curves);
                }
                // The window's own run, and the history point, follow it too.
                if from != to.clone().unwrap_or_default() {
                    if self.session.run_dir.as_ref() == Some(&from) {
                        self.session.run_dir = to.clone();
                        if to.is_none() {
                            self.session.can_sample = false;
                        }
                    }
                    if self.history.as_ref().is_some_and(|h| h.dir == from) {
                        self.history = None;
                    }
                }
                self.info(message);
                self.panels.runs.refresh_now();
                work::list_runs(&self.jobs, self.settings.runs_dir.clone());
            }
            JobResult::RunCurves { dir, curves } => {
                if self.session.history_pending && self.session.run_dir.as_ref() == Some(&dir) {
                    self.session.merge_history(*curves);
                } else {
                    self.panels.loss.overlays.insert(dir, *curves);
                }
            }
            JobResult::PickedFolder(dir) => {
                self.settings.resume_dir = dir.display().to_string();
            }
            JobResult::ExportWritten(path) => self.info(format!("Exported to {}", path.display())),
            JobResult::ExportExists { path, bytes } => self.overwrite = Some((path, bytes)),
            JobResult::ExportCancelled => self.info("Export cancelled"),
        }
    }

    /// Persist settings (also called by eframe's `save`).
    pub fn sync_settings(&mut self) {
        self.settings.config_toml = self.config.to_toml();
    }
}

impl eframe::App for App {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        let now = Instant::now();
        if let Some(last) = self.frame_stats.last
            && self.frame_stats.intervals.len() < FrameStats::CAP
        {
            self.frame_stats.intervals.push((now - last).as_secs_f32());
        }
        self.frame_stats.last = Some(now);
        self.poll(ctx);
        self.handle_close(ctx);
        // Events and job results wake the UI themselves; this slow tick only
        // keeps elapsed-time text fresh between them.
        if self.training() || self.jobs.busy() > 0 {
            ctx.request_repaint_after(self.opts.repaint.unwrap_or(Duration::from_secs(1)));
        } else if let Some(every) = self.opts.repaint {
            ctx.request_repaint_after(every);
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let began = Instant::now();
        let ctx = ui.ctx().clone();
        if self.opts.opaque {
            let fill = ui.visuals().panel_fill;
            ui.painter().rect_filled(ui.max_rect(), 0.0, fill);
        }
        let bare = super::widgets::bare_panel(ui);
        egui::Panel::top("tabs").frame(bare).show(ui, |ui| {
            self.top_bar(ui);
            if !self.messages.is_empty() {
                self.messages(ui);
            }
        });
        egui::Panel::bottom("status")
            .frame(bare)
            .show(ui, |ui| self.status_line(ui));
        // No fill: the clear colour is the panel colour already, and under
        // software GL every full-window fill costs frame time.
        let central =
            egui::CentralPanel::default_margins().frame(egui::Frame::new().inner_margin(8));
        let mut actions = Vec::new();
        central.show(ui, |ui| {
            let training = self.training();
            let can_sample = self.can_sample();
            let tab = self.settings.tab;
            // Checked only where it is shown: selecting a device can be slow.
            let device_problem = (tab == Tab::Experiment)
                .then(|| self.device().err())
                .flatten();
            let data = match (&self.opts.injected, &self.data) {
                (Some(inj), _) => Some(&inj.data),
                (None, Some((_, _, located))) => Some(&located.data),
                _ => None,
            };
            let mut cx = PanelCtx {
                session: &self.session,
                config: &self.config,
                data,
                settings: &mut self.settings,
                jobs: &self.jobs,
                textures: &mut self.textures,
                actions: &mut actions,
                training,
                can_sample,
                device_problem,
                dialogs: self.opts.dialogs,
                history: self.history.as_ref(),
            };
            self.panels.show(tab, &mut cx, ui);
        });
        self.apply(actions);
        self.overwrite_prompt(&ctx);
        self.queue_prompt(&ctx);
        if self.frame_stats.ui_times.len() < FrameStats::CAP {
            self.frame_stats
                .ui_times
                .push(began.elapsed().as_secs_f32());
        }
    }

    fn clear_color(&self, visuals: &egui::Visuals) -> [f32; 4] {
        visuals.panel_fill.to_normalized_gamma_f32()
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        if !self.opts.fresh_settings {
            self.sync_settings();
            self.settings.store(storage);
        }
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        // A close that bypassed the request (e.g. the process being told to
        // quit): still stop cleanly so the last checkpoint is written.
        self.stop_and_wait();
    }
}

/// A window that goes away any other way — a panic unwinding through the
/// UI thread included — still stops its run with a checkpoint first.
impl Drop for App {
    fn drop(&mut self) {
        self.stop_and_wait();
    }
}

impl App {
    fn stop_and_wait(&mut self) {
        if let (Some(w), Some(events)) = (self.worker.take(), self.events.take()) {
            w.send(Command::Stop);
            let deadline = Instant::now() + Duration::from_secs(120);
            while Instant::now() < deadline {
                match events.recv_timeout(Duration::from_millis(200)) {
                    Ok(crate::train::Event::Stopped { .. })
                    | Ok(crate::train::Event::Finished { .. })
                    | Ok(crate::train::Event::Failed { .. })
                    | Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
                    _ => {}
                }
            }
        }
    }
}
