//! The window's queue of sweep runs: Start on a form with swept fields
//! plans the grid (every point validated first) and queues one run per
//! point; the queue trains them one after another, can be reordered and
//! cancelled on the Experiment panel, and is kept with the settings, so
//! closing the window keeps it (the next launch asks before continuing).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::app::App;
use super::panel::PanelCtx;
use crate::config::ExperimentConfig;
use crate::run::sweep::{Need, Sweep, need};
use crate::train::Start;

/// One queued grid point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuedRun {
    /// The sweep's directory (`RUNS/<sweep-id>`).
    pub sweep: PathBuf,
    pub index: usize,
    pub name: String,
}

impl App {
    /// Plan the form's sweep and queue its points; nothing is queued when a
    /// point is invalid (the message names each).
    pub fn start_sweep(&mut self) {
        if self.training() {
            return;
        }
        let axes = self.panels.experiment.form.sweep_axes();
        let (mut sweep, configs) = match Sweep::plan(&self.config, axes) {
            Ok(plan) => plan,
            Err(problems) => {
                self.error(format!(
                    "the sweep has {} problem(s); nothing was queued: {}",
                    problems.len(),
                    problems.join("; ")
                ));
                return;
            }
        };
        sweep.adopt_existing(&self.settings.runs_dir);
        let dir = sweep.dir(&self.settings.runs_dir);
        if let Err(e) = sweep.write(&dir, &configs) {
            self.error(e.to_string());
            return;
        }
        self.settings
            .queue
            .extend(sweep.points.iter().map(|p| QueuedRun {
                sweep: dir.clone(),
                index: p.index,
                name: p.name.clone(),
            }));
        self.info(format!(
            "Queued {} runs of sweep {} in {}",
            sweep.points.len(),
            sweep.id,
            dir.display()
        ));
        self.queue_paused = false;
        self.advance_queue();
    }

    /// After a queued run ended it leaves the queue, unless it was stopped
    /// by hand or by closing the window: then it stays, to be resumed.
    pub fn queued_run_ended(&mut self) {
        let Some(current) = self.queue_current.take() else {
            return;
        };
        let run = Sweep::read(&current.sweep)
            .and_then(Result::ok)
            .filter(|s| current.index < s.points.len())
            .map(|s| s.run_dir(&current.sweep, current.index));
        let finished = run.is_some_and(|r| need(&r) == Need::Done);
        if finished || !(self.queue_paused || self.closing) {
            self.settings.queue.retain(|q| *q != current);
        }
    }

    /// Start the next queued run that needs training, if nothing trains.
    pub fn advance_queue(&mut self) {
        while !self.training() && !self.queue_paused && self.pending_queue_question.is_none() {
            let Some(next) = self.settings.queue.first().cloned() else {
                return;
            };
            // It stays queued (and saved with the settings) while it trains.
            match self.start_queued(&next) {
                Ok(true) => {
                    self.queue_current = Some(next);
                    return;
                }
                // Finished already: the next one.
                Ok(false) => {
                    self.settings.queue.remove(0);
                }
                Err(e) => {
                    self.settings.queue.remove(0);
                    self.error(format!("{}: {e}", next.name));
                }
            }
        }
    }

    /// Start one queued point: resume its run, or start it from its config.
    /// Ok(false) when it is finished (or another process trains it).
    fn start_queued(&mut self, q: &QueuedRun) -> Result<bool, String> {
        let sweep = Sweep::read(&q.sweep)
            .ok_or_else(|| format!("{} has no sweep.json any more", q.sweep.display()))??;
        if q.index >= sweep.points.len() {
            return Err(format!("{} has no point {}", q.sweep.display(), q.index));
        }
        let run = sweep.run_dir(&q.sweep, q.index);
        if need(&run) != Need::Train {
            return Ok(false);
        }
        sweep
            .membership(q.index)
            .write(&run)
            .map_err(|e| e.to_string())?;
        self.history = None;
        if run.join(crate::run::CONFIG).exists() {
            let cfg = ExperimentConfig::from_file(&run.join(crate::run::CONFIG))
                .map_err(|e| e.to_string())?;
            self.begin(Start::Resume, run, cfg.dataset);
        } else {
            let cfg = ExperimentConfig::from_file(&sweep.point_config(&q.sweep, q.index))
                .map_err(|e| e.to_string())?;
            let kind = cfg.dataset;
            self.begin(Start::New(cfg), run, kind);
        }
        Ok(true)
    }

    /// On launch, a queue left from last time is continued only if asked.
    pub(super) fn queue_prompt(&mut self, ctx: &egui::Context) {
        let Some(n) = self.pending_queue_question else {
            return;
        };
        let question = format!(
            "{n} sweep run(s) were still queued when latentlab last closed. Continue them now?"
        );
        match super::widgets::confirm(
            ctx,
            "resume-queue",
            &question,
            "Continue queued runs",
            "Clear the queue",
        ) {
            Some(true) => {
                self.pending_queue_question = None;
                self.advance_queue();
            }
            Some(false) => {
                self.pending_queue_question = None;
                self.settings.queue.clear();
            }
            None => {}
        }
    }
}

/// The queue on the Experiment panel: reorder, cancel one or all.
pub fn show(cx: &mut PanelCtx<'_>, ui: &mut egui::Ui) -> QueueAsk {
    let mut ask = QueueAsk::Nothing;
    if cx.settings.queue.is_empty() {
        return ask;
    }
    ui.horizontal(|ui| {
        ui.strong(format!("Queue: {} run(s) to go", cx.settings.queue.len()));
        if cx.training {
            ui.weak("(the first is training)");
        }
        if !cx.training && ui.button("Continue the queue").clicked() {
            ask = QueueAsk::Continue;
        }
        if ui.button("Cancel all").clicked() {
            cx.settings.queue.clear();
        }
    });
    let queue = &mut cx.settings.queue;
    let mut action: Option<(usize, i32)> = None;
    egui::ScrollArea::vertical()
        .id_salt("queue")
        .max_height(140.0)
        .show(ui, |ui| {
            for (i, q) in queue.iter().enumerate() {
                ui.horizontal(|ui| {
                    ui.push_id(i, |ui| {
                        if ui
                            .add_enabled(i > 0, egui::Button::new("up").small())
                            .clicked()
                        {
                            action = Some((i, -1));
                        }
                        if ui
                            .add_enabled(i + 1 < queue.len(), egui::Button::new("down").small())
                            .clicked()
                        {
                            action = Some((i, 1));
                        }
                        if ui
                            .small_button("x")
                            .on_hover_text("Take it off the queue")
                            .clicked()
                        {
                            action = Some((i, 0));
                        }
                        ui.label(&q.name);
                    });
                });
            }
        });
    match action {
        Some((i, 0)) => {
            queue.remove(i);
        }
        Some((i, d)) => queue.swap(i, (i as i32 + d) as usize),
        None => {}
    }
    ask
}

/// What the queue's controls ask the app for.
#[derive(Debug, PartialEq, Eq)]
pub enum QueueAsk {
    Nothing,
    Continue,
}
