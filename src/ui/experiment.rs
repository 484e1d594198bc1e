//! Panel 1: presets, every hyper-parameter with its validation, dataset /
//! backend / device pickers, run controls and progress.

use std::path::PathBuf;

use super::app::App;
use super::session::RunState;
use super::settings::Tab;
use super::widgets::{note, problem};
use crate::backend;
use crate::config::{ExperimentConfig, PRESETS};
use crate::train::Command;

#[derive(Default)]
pub struct ExperimentView {
    /// (description, is the offline subset) of the dataset Start would use.
    pub data_preview: Option<(String, bool)>,
    pub preset_name: String,
    user_presets: Option<Vec<(String, PathBuf)>>,
    /// A preset of this name exists: asking whether to replace it.
    pub replace_preset: Option<String>,
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

pub fn show(app: &mut App, ui: &mut egui::Ui) {
    egui::ScrollArea::vertical().auto_shrink(false).show(ui, |ui| {
        presets(app, ui);
        ui.separator();
        pickers(app, ui);
        ui.separator();
        controls(app, ui);
        progress(app, ui);
        ui.separator();
        ui.heading("Hyper-parameters");
        ui.weak("Edits apply to the next run; sampling settings apply to the Samples and Denoising panels at once.");
        let problems = app.form.problems(&app.config);
        let changed = app.form.show(ui, &mut app.config, &problems);
        if changed.iter().any(|p| p == "dataset") {
            app.refresh_data_preview();
        }
    });
}

fn presets(app: &mut App, ui: &mut egui::Ui) {
    let dir = app.presets_dir();
    let user = app
        .experiment
        .user_presets
        .get_or_insert_with(|| scan_user_presets(dir))
        .clone();
    ui.horizontal_wrapped(|ui| {
        ui.label("Preset");
        let mut chosen: Option<Result<ExperimentConfig, String>> = None;
        egui::ComboBox::from_id_salt("preset")
            .selected_text(&app.settings.preset)
            .show_ui(ui, |ui| {
                for (name, _) in PRESETS {
                    if ui
                        .selectable_label(app.settings.preset == *name, *name)
                        .clicked()
                    {
                        app.settings.preset = name.to_string();
                        chosen = Some(ExperimentConfig::preset(name).map_err(|e| e.to_string()));
                    }
                }
                for (name, path) in &user {
                    let label = format!("{name} (mine)");
                    if ui
                        .selectable_label(app.settings.preset == *name, label)
                        .clicked()
                    {
                        app.settings.preset = name.clone();
                        chosen = Some(ExperimentConfig::from_file(path).map_err(|e| e.to_string()));
                    }
                }
            })
            .response
            .accessible_name("preset")
            .on_hover_text("Built-in presets and your own, saved in the config directory");
        match chosen {
            Some(Ok(cfg)) => {
                app.form.reset(&cfg);
                app.config = cfg;
                app.refresh_data_preview();
            }
            Some(Err(e)) => app.error(e),
            None => {}
        }
        ui.separator();
        ui.add(
            egui::TextEdit::singleline(&mut app.experiment.preset_name)
                .hint_text("name")
                .desired_width(120.0),
        )
        .accessible_name("preset name");
        let name = app.experiment.preset_name.trim().to_string();
        let ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_');
        if ui
            .add_enabled(ok, egui::Button::new("Save as preset"))
            .on_disabled_hover_text("Type a name (letters, digits, - and _)")
            .clicked()
        {
            save_preset(app, &name, false);
        }
    });
    replace_prompt(app, ui.ctx());
}

/// Asks before a user preset of the same name is replaced.
fn replace_prompt(app: &mut App, ctx: &egui::Context) {
    let Some(name) = app.experiment.replace_preset.clone() else {
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
            app.experiment.replace_preset = None;
            save_preset(app, &name, true);
        }
        Some(false) => {
            app.experiment.replace_preset = None;
            app.info(format!("Kept the existing preset {name}"));
        }
        None => {}
    }
}

fn save_preset(app: &mut App, name: &str, replace: bool) {
    let Some(dir) = app.presets_dir() else {
        app.error("no config directory on this system to save presets in");
        return;
    };
    let path = dir.join(format!("{name}.toml"));
    if PRESETS.iter().any(|(n, _)| *n == name) {
        app.error(format!(
            "'{name}' is a built-in preset; choose another name"
        ));
        return;
    }
    if path.exists() && !replace {
        app.experiment.replace_preset = Some(name.to_string());
        return;
    }
    let mut cfg = app.config.clone();
    cfg.name = name.to_string();
    let result = std::fs::create_dir_all(&dir)
        .map_err(|e| e.to_string())
        .and_then(|_| {
            crate::run::checkpoint::write_atomic(&path, cfg.to_toml().as_bytes())
                .map_err(|e| e.to_string())
        });
    match result {
        Ok(()) => {
            app.info(format!("Saved preset {name} to {}", path.display()));
            app.settings.preset = name.to_string();
            app.experiment.user_presets = None;
        }
        Err(e) => app.error(e),
    }
}

fn pickers(app: &mut App, ui: &mut egui::Ui) {
    egui::Grid::new("pickers")
        .num_columns(2)
        .spacing([12.0, 4.0])
        .show(ui, |ui| {
            ui.label("Dataset");
            ui.horizontal(|ui| {
                ui.label(app.config.dataset.display_name());
                match (&app.opts.injected, &app.experiment.data_preview) {
                    (Some(inj), _) => {
                        ui.weak(&inj.data.source);
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
                    egui::TextEdit::singleline(&mut app.settings.data_dir)
                        .hint_text("optional: folder with the four IDX files")
                        .desired_width(320.0),
                )
                .accessible_name("data directory");
            if r.lost_focus() {
                app.refresh_data_preview();
            }
            ui.end_row();
            ui.label("Backend");
            ui.horizontal(|ui| {
                egui::ComboBox::from_id_salt("backend")
                    .selected_text(&app.settings.backend)
                    .show_ui(ui, |ui| {
                        for b in backend::available() {
                            ui.selectable_value(
                                &mut app.settings.backend,
                                b.name().to_string(),
                                b.name(),
                            );
                        }
                    })
                    .response
                    .accessible_name("backend");
                ui.label("Device");
                let mut devices = vec!["auto".to_string(), "cpu".to_string()];
                if backend::cuda_available() && app.settings.backend == "tch" {
                    devices.push("cuda".into());
                }
                egui::ComboBox::from_id_salt("device")
                    .selected_text(&app.settings.device)
                    .show_ui(ui, |ui| {
                        for d in devices {
                            ui.selectable_value(&mut app.settings.device, d.clone(), d);
                        }
                    })
                    .response
                    .accessible_name("device");
                if let Err(e) = app.device() {
                    problem(ui, e);
                }
            });
            ui.end_row();
            ui.label("Runs directory");
            let mut text = app.settings.runs_dir.display().to_string();
            let r = ui
                .add(egui::TextEdit::singleline(&mut text).desired_width(320.0))
                .accessible_name("runs directory");
            if r.changed() {
                app.settings.runs_dir = PathBuf::from(text);
            }
            if r.lost_focus() {
                super::work::list_runs(&app.jobs, app.settings.runs_dir.clone());
            }
            ui.end_row();
        });
}

fn controls(app: &mut App, ui: &mut egui::Ui) {
    let problems = app.form.problems(&app.config);
    let state = app.session.state;
    let training = app.training();
    ui.horizontal_wrapped(|ui| {
        let can_start = problems.is_empty() && !training;
        let start = ui.add_enabled(
            can_start,
            egui::Button::new("Start").min_size([80.0, 0.0].into()),
        );
        let start = start.accessible_name("Start");
        if start.clicked() {
            app.start_new();
        }
        if ui
            .add_enabled(state == RunState::Running, egui::Button::new("Pause"))
            .accessible_name("Pause")
            .clicked()
        {
            app.command(Command::Pause);
        }
        if ui
            .add_enabled(state == RunState::Paused, egui::Button::new("Resume"))
            .accessible_name("Resume")
            .clicked()
        {
            app.command(Command::Resume);
        }
        let can_stop = matches!(state, RunState::Running | RunState::Paused);
        if ui
            .add_enabled(can_stop, egui::Button::new("Stop"))
            .on_hover_text("Save a checkpoint and stop")
            .accessible_name("Stop")
            .clicked()
        {
            app.command(Command::Stop);
        }
        if ui
            .add_enabled(can_stop, egui::Button::new("Save checkpoint"))
            .clicked()
        {
            app.command(Command::SaveCheckpoint);
        }
        if let Some(dir) = app.session.run_dir.clone()
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
            app.export(super::export::ExportRequest {
                stem,
                ext: "",
                payload: super::export::Payload::RunDir(dir),
            });
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
            egui::TextEdit::singleline(&mut app.settings.resume_dir)
                .hint_text("runs/quick-…")
                .desired_width(280.0),
        )
        .accessible_name("resume directory");
        if app.opts.dialogs && ui.button("Browse…").clicked() {
            super::work::pick_folder(&app.jobs, app.settings.runs_dir.clone());
        }
        let dir = PathBuf::from(app.settings.resume_dir.trim());
        if ui
            .add_enabled(
                !training && !app.settings.resume_dir.trim().is_empty(),
                egui::Button::new("Resume run"),
            )
            .on_hover_text(
                "Continue the run from its last checkpoint; a finished run opens for sampling",
            )
            .clicked()
        {
            app.resume_from(&dir);
        }
    });
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

fn progress_text(app: &App) -> Option<(f32, String)> {
    let p = app.session.progress.as_ref()?;
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

fn progress(app: &App, ui: &mut egui::Ui) {
    match progress_text(app) {
        Some((frac, text)) => {
            ui.add(egui::ProgressBar::new(frac).text(text));
        }
        None if app.session.state == RunState::LoadingData => {
            ui.add(
                egui::ProgressBar::new(0.0)
                    .text("loading the dataset…")
                    .animate(true),
            );
        }
        None => {}
    }
}

/// Progress in the top bar, visible from every panel.
pub fn compact_progress(app: &App, ui: &mut egui::Ui) {
    if let Some((frac, text)) = progress_text(app)
        && app.training()
    {
        ui.add(egui::ProgressBar::new(frac).desired_width(420.0).text(text));
    }
}

pub fn status_line(app: &App, ui: &mut egui::Ui) {
    ui.horizontal(|ui| {
        ui.label(&app.session.status);
        // On the Experiment panel the Dataset line says it already.
        if app.session.dataset.contains("offline MNIST subset")
            && app.settings.tab != Tab::Experiment
        {
            ui.separator();
            note(ui, "offline MNIST subset in use");
        }
        if app.jobs.busy() > 0 {
            ui.separator();
            ui.spinner();
            ui.weak(format!("{} background job(s)", app.jobs.busy()));
        }
    });
}
