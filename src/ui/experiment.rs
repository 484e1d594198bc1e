//! Panel 1: presets, every hyper-parameter with its validation, dataset /
//! backend / device pickers, run controls and progress.

use std::path::PathBuf;

use super::config_form::ConfigForm;
use super::panel::{Action, PanelCtx};
use super::session::{RunState, Session};
use super::widgets::{note, problem};
use crate::backend;
use crate::config::{ExperimentConfig, PRESETS, Problem};
use crate::train::Command;

#[derive(Default)]
pub struct ExperimentView {
    /// The hyper-parameter form (its texts as typed, and their errors).
    pub form: ConfigForm,
    /// (description, is the offline subset) of the dataset Start would use.
    pub data_preview: Option<(String, bool)>,
    pub preset_name: String,
    user_presets: Option<Vec<(String, PathBuf)>>,
    /// A preset of this name exists: asking whether to replace it.
    pub replace_preset: Option<String>,
    /// Where the user's own presets live (None: nowhere to save them).
    pub presets_dir: Option<PathBuf>,
    /// Where injected data came from (tests, benchmarks), shown as is.
    pub injected_source: Option<String>,
}

fn scan_user_presets(dir: Option<PathBuf>) -> Vec<(String, PathBuf)> {
    let Some(dir) = dir else {
        return Vec::new();
    };
    let mut v: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .filter_map(|p| Some((p.file_stem()?.to_string_lossy().into_owned(), p)))
        .collect();
    v.sort();
    v
}

impl ExperimentView {
    pub fn show(&mut self, cx: &mut PanelCtx<'_>, ui: &mut egui::Ui) {
        egui::ScrollArea::vertical()
            .auto_shrink(false)
            .show(ui, |ui| {
                self.presets(cx, ui);
                ui.separator();
                self.pickers(cx, ui);
                ui.separator();
                // Validated once a frame (after a preset may have reset the
                // form): Start and the form show the same problems.
                let problems = self.form.problems(cx.config);
                self.controls(cx, ui, &problems);
                progress(cx.session, ui);
                if super::queue::show(cx, ui) == super::queue::QueueAsk::Continue {
                    cx.act(Action::ContinueQueue);
                }
                ui.separator();
                ui.heading("Hyper-parameters");
                ui.weak(
                    "Edits apply to the next run; sampling settings apply to the Samples and \
                 Denoising panels at once.",
                );
                // Edited on a copy, applied by the app at the end of the frame.
                let mut cfg = cx.config.clone();
                let changed = self.form.show(ui, &mut cfg, &problems);
                if cfg != *cx.config {
                    cx.act(Action::SetConfig(Box::new(cfg)));
                }
                if changed.iter().any(|p| p == "dataset") {
                    cx.act(Action::RefreshDataPreview);
                }
            });
    }

    fn presets(&mut self, cx: &mut PanelCtx<'_>, ui: &mut egui::Ui) {
        let dir = self.presets_dir.clone();
        let user = self
            .user_presets
            .get_or_insert_with(|| scan_user_presets(dir))
            .clone();
        ui.horizontal_wrapped(|ui| {
            ui.label("Preset");
            let mut chosen: Option<Result<ExperimentConfig, String>> = None;
            egui::ComboBox::from_id_salt("preset")
                .selected_text(&cx.settings.preset)
                .show_ui(ui, |ui| {
                    for (name, _) in PRESETS {
                        if ui
                            .selectable_label(cx.settings.preset == *name, *name)
                            .clicked()
                        {
                            cx.settings.preset = name.to_string();
                            chosen =
                                Some(ExperimentConfig::preset(name).map_err(|e| e.to_string()));
                        }
                    }
                    for (name, path) in &user {
                        let label = format!("{name} (mine)");
                        if ui
                            .selectable_label(cx.settings.preset == *name, label)
                            .clicked()
                        {
                            cx.settings.preset = name.clone();
                            chosen =
                                Some(ExperimentConfig::from_file(path).map_err(|e| e.to_string()));
                        }
                    }
                })
                .response
                .accessible_name("preset")
                .on_hover_text("Built-in presets and your own, saved in the config directory");
            match chosen {
                Some(Ok(cfg)) => {
                    self.form.reset(&cfg);
                    cx.act(Action::SetConfig(Box::new(cfg)));
                    cx.act(Action::RefreshDataPreview);
                }
                Some(Err(e)) => cx.act(Action::Error(e)),
                None => {}
            }
            ui.separator();
            ui.add(
                egui::TextEdit::singleline(&mut self.preset_name)
                    .hint_text("name")
                    .desired_width(120.0),
            )
            .accessible_name("preset name");
            let name = self.preset_name.trim().to_string();
            let ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '-' || c == '_');
            if ui
                .add_enabled(ok, egui::Button::new("Save as preset"))
                .on_disabled_hover_text("Type a name (letters, digits, - and _)")
                .clicked()
            {
                self.save_preset(cx, &name, false);
            }
        });
        self.replace_prompt(cx, ui.ctx());
    }

    /// Asks before a user preset of the same name is replaced.
    fn replace_prompt(&mut self, cx: &mut PanelCtx<'_>, ctx: &egui::Context) {
        let Some(name) = self.replace_preset.clone() else {
            return;
        };
        let question = format!("You already have a preset named {name}. Replace it?");
        let answer = super::widgets::confirm(
            ctx,
            "replace-preset",
            &question,
            "Replace preset",
            "Keep the existing preset",
        );
        match answer {
            Some(true) => {
                self.replace_preset = None;
                self.save_preset(cx, &name, true);
            }
            Some(false) => {
                self.replace_preset = None;
                cx.act(Action::Info(format!("Kept the existing preset {name}")));
            }
            None => {}
        }
    }

    fn save_preset(&mut self, cx: &mut PanelCtx<'_>, name: &str, replace: bool) {
        let Some(dir) = self.presets_dir.clone() else {
            cx.act(Action::Error(
                "no config directory on this system to save presets in".into(),
            ));
            return;
        };
        let path = dir.join(format!("{name}.toml"));
        if PRESETS.iter().any(|(n, _)| *n == name) {
            cx.act(Action::Error(format!(
                "'{name}' is a built-in preset; choose another name"
            )));
            return;
        }
        if path.exists() && !replace {
            self.replace_preset = Some(name.to_string());
            return;
        }
        let mut cfg = cx.config.clone();
        cfg.name = name.to_string();
        let result = std::fs::create_dir_all(&dir)
            .map_err(|e| e.to_string())
            .and_then(|_| {
                crate::run::checkpoint::write_atomic(&path, cfg.to_toml().as_bytes())
                    .map_err(|e| e.to_string())
            });
        match result {
            Ok(()) => {
                cx.act(Action::Info(format!(
                    "Saved preset {name} to {}",
                    path.display()
                )));
                cx.settings.preset = name.to_string();
                self.user_presets = None;
            }
            Err(e) => cx.act(Action::Error(e)),
        }
    }

    fn pickers(&mut self, cx: &mut PanelCtx<'_>, ui: &mut egui::Ui) {
        egui::Grid::new("pickers")
            .num_columns(2)
            .spacing([12.0, 4.0])
            .show(ui, |ui| {
                ui.label("Dataset");
                ui.horizontal(|ui| {
                    ui.label(cx.config.dataset.display_name());
                    match (&self.injected_source, &self.data_preview) {
                        (Some(source), _) => {
                            ui.weak(source);
                        }
                        (None, Some((desc, subset))) => {
                            // The description names the subset already.
                            if *subset {
                                note(ui, desc.as_str());
                            } else {
                                ui.weak(desc);
                            }
                        }
                        (None, None) => {
                            ui.weak("looking…");
                        }
                    }
                });
                ui.end_row();
                ui.label("Data directory");
                let r = ui
                    .add(
                        egui::TextEdit::singleline(&mut cx.settings.data_dir)
                            .hint_text("optional: folder with the four IDX files")
                            .desired_width(320.0),
                    )
                    .accessible_name("data directory");
                if r.lost_focus() {
                    cx.act(Action::RefreshDataPreview);
                }
                ui.end_row();
                ui.label("Backend");
                ui.horizontal(|ui| {
                    egui::ComboBox::from_id_salt("backend")
                        .selected_text(&cx.settings.backend)
                        .show_ui(ui, |ui| {
                            for b in backend::available() {
                                ui.selectable_value(
                                    &mut cx.settings.backend,
                                    b.name().to_string(),
                                    b.name(),
                                );
                            }
                        })
                        .response
                        .accessible_name("backend");
                    ui.label("Device");
                    let mut devices = vec!["auto".to_string(), "cpu".to_string()];
                    if backend::cuda_available() && cx.settings.backend == "tch" {
                        devices.push("cuda".into());
                    }
                    egui::ComboBox::from_id_salt("device")
                        .selected_text(&cx.settings.device)
                        .show_ui(ui, |ui| {
                            for d in devices {
                                ui.selectable_value(&mut cx.settings.device, d.clone(), d);
                            }
                        })
                        .response
                        .accessible_name("device");
                    if let Some(e) = &cx.device_problem {
                        problem(ui, e);
                    }
                });
                ui.end_row();
                ui.label("Runs directory");
                let mut text = cx.settings.runs_dir.display().to_string();
                let r = ui
                    .add(egui::TextEdit::singleline(&mut text).desired_width(320.0))
                    .accessible_name("runs directory");
                if r.changed() {
                    cx.settings.runs_dir = PathBuf::from(text);
                }
                if r.lost_focus() {
                    super::work::list_runs(cx.jobs, cx.settings.runs_dir.clone());
                }
                ui.end_row();
            });
    }

    fn controls(&mut self, cx: &mut PanelCtx<'_>, ui: &mut egui::Ui, problems: &[Problem]) {
        let state = cx.session.state;
        let training = cx.training;
        ui.horizontal_wrapped(|ui| {
            let can_start = problems.is_empty() && !training;
            let axes = self.form.sweep_axes();
            let runs: usize = axes.iter().map(|a| a.values.len()).product();
            let label = if axes.is_empty() {
                "Start".to_string()
            } else {
                format!("Start sweep ({runs} runs)")
            };
            let start = ui
                .add_enabled(
                    can_start,
                    egui::Button::new(label.as_str()).min_size([80.0, 0.0].into()),
                )
                .on_hover_text(
                    "Give a field several values (1e-3, 2e-3) to sweep it: Start then queues \
                     one run per combination",
                );
            let start = start.accessible_name(&label);
            if start.clicked() {
                cx.act(Action::Start);
            }
            if ui
                .add_enabled(state == RunState::Running, egui::Button::new("Pause"))
                .accessible_name("Pause")
                .clicked()
            {
                cx.act(Action::Command(Command::Pause));
            }
            if ui
                .add_enabled(state == RunState::Paused, egui::Button::new("Resume"))
                .accessible_name("Resume")
                .clicked()
            {
                cx.act(Action::Command(Command::Resume));
            }
            let can_stop = matches!(state, RunState::Running | RunState::Paused);
            if ui
                .add_enabled(can_stop, egui::Button::new("Stop"))
                .on_hover_text("Save a checkpoint and stop")
                .accessible_name("Stop")
                .clicked()
            {
                cx.act(Action::Command(Command::Stop));
            }
            if ui
                .add_enabled(can_stop, egui::Button::new("Save checkpoint"))
                .clicked()
            {
                cx.act(Action::Command(Command::SaveCheckpoint));
            }
            if let Some(dir) = cx.session.run_dir.clone()
                && !training
                && ui
                    .button("Export run")
                    .on_hover_text("Copy the run directory (checkpoint, config, logs)")
                    .clicked()
            {
                let stem = dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                cx.act(Action::Export(super::export::ExportRequest {
                    stem,
                    ext: "",
                    payload: super::export::Payload::RunDir(dir),
                }));
            }
        });
        if !problems.is_empty() {
            let reason = problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("; ");
            problem(ui, format!("Cannot start: {reason}"));
        }
        ui.horizontal_wrapped(|ui| {
            ui.label("Resume from run directory");
            ui.add(
                egui::TextEdit::singleline(&mut cx.settings.resume_dir)
                    .hint_text("runs/quick-…")
                    .desired_width(280.0),
            )
            .accessible_name("resume directory");
            if cx.dialogs && ui.button("Browse…").clicked() {
                super::work::pick_folder(cx.jobs, cx.settings.runs_dir.clone());
            }
            let dir = PathBuf::from(cx.settings.resume_dir.trim());
            if ui
                .add_enabled(
                    !training && !cx.settings.resume_dir.trim().is_empty(),
                    egui::Button::new("Resume run"),
                )
                .on_hover_text(
                    "Continue the run from its last checkpoint; a finished run opens for sampling",
                )
                .clicked()
            {
                cx.act(Action::ResumeFrom(dir));
            }
        });
    }
}

fn fmt_eta(secs: f64) -> String {
    if !secs.is_finite() {
        return "–".into();
    }
    let s = secs.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

pub fn progress_text(session: &Session) -> Option<(f32, String)> {
    let p = session.progress.as_ref()?;
    let frac = p.step as f32 / p.total_steps.max(1) as f32;
    Some((
        frac,
        format!(
            "{} · epoch {}/{} · step {}/{} · {:.0} img/s · ETA {}",
            p.stage.name(),
            p.epoch,
            p.epochs,
            p.step,
            p.total_steps,
            p.images_per_sec,
            fmt_eta(p.eta_secs)
        ),
    ))
}

fn progress(session: &Session, ui: &mut egui::Ui) {
    match progress_text(session) {
        Some((frac, text)) => {
            ui.add(egui::ProgressBar::new(frac).text(text));
        }
        None if session.state == RunState::LoadingData => {
            ui.add(
                egui::ProgressBar::new(0.0)
                    .text("loading the dataset…")
                    .animate(true),
            );
        }
        None => {}
    }
}
