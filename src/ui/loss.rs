//! Panel 2: live per-step loss of both stages with EMA smoothing, log
//! scale, per-epoch means, hover values and earlier runs overlaid.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use egui::Color32;
use egui_plot::{HoverPosition, Legend, Line, LineStyle, Plot, PlotPoints, Points};

use super::export::{ExportRequest, Payload, curves_csv, curves_json};
use super::panel::{Action, PanelCtx};
use super::session::{Curves, EpochMean};
use crate::train::Stage;

/// Most points drawn per line: keeps frames cheap on long runs.
const MAX_POINTS: usize = 2000;

#[derive(Default)]
pub struct LossView {
    /// Run directories found under the runs directory.
    pub runs: Vec<PathBuf>,
    pub overlays: HashMap<PathBuf, Curves>,
    /// Derived lines, recomputed only when data or settings change.
    cache: HashMap<String, (u64, Derived)>,
}

#[derive(Clone)]
struct Derived {
    raw: Vec<[f64; 2]>,
    smooth: Vec<[f64; 2]>,
    epochs: Vec<[f64; 2]>,
}

/// Debiased exponential moving average (as TensorBoard draws it).
pub fn ema(points: &[(usize, f32)], alpha: f32) -> Vec<(usize, f32)> {
    let mut s = 0f64;
    let a = alpha.clamp(0.0, 0.999) as f64;
    points
        .iter()
        .enumerate()
        .map(|(i, &(step, v))| {
            s = a * s + (1.0 - a) * v as f64;
            let debias = 1.0 - a.powi(i as i32 + 1);
            (step, (s / debias.max(1e-12)) as f32)
        })
        .collect()
}

fn decimate<T: Copy>(v: &[T]) -> Vec<T> {
    let stride = v.len().div_ceil(MAX_POINTS).max(1);
    let mut out: Vec<T> = v.iter().step_by(stride).copied().collect();
    if stride > 1
        && let Some(&last) = v.last()
    {
        out.push(last);
    }
    out
}

fn y(v: f64, log: bool) -> f64 {
    if log { v.max(1e-12).log10() } else { v }
}

fn derive(points: &[(usize, f32)], epochs: &[EpochMean], alpha: f32, log: bool) -> Derived {
    let to = |v: &[(usize, f32)]| -> Vec<[f64; 2]> {
        decimate(v)
            .iter()
            .map(|&(s, l)| [s as f64, y(l as f64, log)])
            .collect()
    };
    Derived {
        raw: to(points),
        smooth: to(&ema(points, alpha)),
        // Each mean sits mid-epoch, where its steps were on average.
        epochs: epochs
            .iter()
            .scan(0usize, |prev, e| {
                let mid = (*prev + e.step) as f64 / 2.0;
                *prev = e.step;
                Some([mid, y(e.mean, log)])
            })
            .collect(),
    }
}

impl LossView {
    fn derived(
        &mut self,
        key: &str,
        version: u64,
        curves: &Curves,
        stage: Stage,
        alpha: f32,
        log: bool,
    ) -> Derived {
        let stamp = version
            .wrapping_mul(31)
            .wrapping_add((alpha * 1000.0) as u64)
            .wrapping_mul(2)
            .wrapping_add(log as u64);
        if let Some((v, d)) = self.cache.get(key)
            && *v == stamp
        {
            return d.clone();
        }
        let d = derive(curves.stage(stage), curves.epochs(stage), alpha, log);
        self.cache.insert(key.to_string(), (stamp, d.clone()));
        d
    }
}

fn run_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl LossView {
    pub fn show(&mut self, cx: &mut PanelCtx<'_>, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            ui.add(egui::Slider::new(&mut cx.settings.loss_ema, 0.0..=0.999).text("EMA smoothing"));
            ui.checkbox(&mut cx.settings.loss_log, "log scale");
            ui.separator();
            let curves = &cx.session.curves;
            ui.label(format!(
                "autoencoder loss · {} points   diffusion loss · {} points",
                curves.ae.len(),
                curves.diffusion.len()
            ));
            ui.separator();
            let empty = curves.ae.is_empty() && curves.diffusion.is_empty();
            if ui
                .add_enabled(!empty, egui::Button::new("Export CSV"))
                .clicked()
            {
                let bytes = curves_csv(&cx.session.curves);
                cx.act(Action::Export(ExportRequest {
                    stem: "losses".into(),
                    ext: "csv",
                    payload: Payload::Bytes(bytes),
                }));
            }
            if ui
                .add_enabled(!empty, egui::Button::new("Export JSON"))
                .clicked()
            {
                let bytes = curves_json(&cx.session.curves);
                cx.act(Action::Export(ExportRequest {
                    stem: "losses".into(),
                    ext: "json",
                    payload: Payload::Bytes(bytes),
                }));
            }
        });
        egui::Panel::right("overlay-runs")
            .frame(super::widgets::bare_panel(ui))
            .resizable(true)
            .default_size(230.0)
            .show(ui, |ui| self.overlay_picker(cx, ui));
        let h = (ui.available_height() - 8.0) / 2.0;
        for stage in [Stage::Autoencoder, Stage::Diffusion] {
            self.plot(cx, ui, stage, h);
        }
    }

    fn overlay_picker(&mut self, cx: &mut PanelCtx<'_>, ui: &mut egui::Ui) {
        ui.strong("Compare with earlier runs");
        if self.runs.is_empty() {
            ui.weak(format!("No runs in {} yet", cx.settings.runs_dir.display()));
        }
        egui::ScrollArea::vertical().show(ui, |ui| {
            let current = cx.session.run_dir.clone();
            for dir in self.runs.clone() {
                if Some(&dir) == current.as_ref() {
                    continue;
                }
                let mut on = cx.settings.overlay.contains(&dir);
                if ui.checkbox(&mut on, run_name(&dir)).changed() {
                    if on {
                        cx.settings.overlay.push(dir.clone());
                        if !self.overlays.contains_key(&dir) {
                            super::work::load_curves(cx.jobs, dir);
                        }
                    } else {
                        cx.settings.overlay.retain(|d| *d != dir);
                    }
                }
            }
        });
        if ui.button("Refresh").clicked() {
            super::work::list_runs(cx.jobs, cx.settings.runs_dir.clone());
        }
    }

    fn plot(&mut self, cx: &mut PanelCtx<'_>, ui: &mut egui::Ui, stage: Stage, height: f32) {
        let (alpha, log) = (cx.settings.loss_ema, cx.settings.loss_log);
        let version = cx.session.curves.version ^ (cx.session.generation << 40);
        let current = self.derived(stage.name(), version, &cx.session.curves, stage, alpha, log);
        let mut overlays = Vec::new();
        for (i, dir) in cx.settings.overlay.clone().iter().enumerate() {
            if let Some(c) = self.overlays.get(dir).cloned() {
                let key = format!("{}:{}", dir.display(), stage.name());
                let d = self.derived(&key, c.version, &c, stage, alpha, log);
                overlays.push((run_name(dir), OVERLAY_COLORS[i % OVERLAY_COLORS.len()], d));
            }
        }
        let title = format!("{} loss", stage.name());
        let fmt_y = move |v: f64| if log { 10f64.powf(v) } else { v };
        let accent = match stage {
            Stage::Autoencoder => Color32::from_rgb(90, 170, 255),
            Stage::Diffusion => Color32::from_rgb(255, 150, 80),
        };
        ui.label(egui::RichText::new(&title).strong());
        if current.raw.is_empty() && overlays.is_empty() {
            // Empty axes would say nothing; say what the plot is waiting for.
            let waiting = match stage {
                Stage::Autoencoder if cx.training => "Waiting for the first logged step…",
                Stage::Autoencoder => "Start a run on the Experiment panel to see its loss here.",
                Stage::Diffusion => {
                    "Waiting for the diffusion stage: it starts once the autoencoder has trained."
                }
            };
            let size = egui::vec2(ui.available_width(), height - 20.0);
            ui.allocate_ui(size, |ui| {
                ui.centered_and_justified(|ui| ui.weak(waiting));
            });
            return;
        }
        Plot::new(("loss", stage.name()))
            .height(height - 20.0)
            .legend(Legend::default())
            .x_axis_label("step")
            .show_background(false)
            .y_axis_formatter(move |mark, _| format!("{:.3}", fmt_y(mark.value)))
            .label_formatter(move |pos: &HoverPosition<'_>| match pos {
                HoverPosition::NearDataPoint {
                    plot_name,
                    position,
                    ..
                } => Some(format!(
                    "{plot_name}\nstep {:.0}\nloss {:.5}",
                    position.x,
                    fmt_y(position.y)
                )),
                HoverPosition::Elsewhere { .. } => None,
            })
            .show(ui, |p| {
                for (name, color, d) in &overlays {
                    p.line(
                        Line::new(
                            format!("{name} (smoothed)"),
                            PlotPoints::from(d.smooth.clone()),
                        )
                        .color(*color)
                        .style(LineStyle::dashed_loose()),
                    );
                }
                if !current.raw.is_empty() {
                    p.line(
                        Line::new("per step", PlotPoints::from(current.raw.clone()))
                            .color(accent.gamma_multiply(0.35)),
                    );
                    p.line(
                        Line::new("smoothed", PlotPoints::from(current.smooth.clone()))
                            .color(accent)
                            .width(2.0),
                    );
                }
                if !current.epochs.is_empty() {
                    p.add(
                        Points::new("epoch mean", PlotPoints::from(current.epochs.clone()))
                            .radius(4.0)
                            .color(Color32::WHITE),
                    );
                }
            });
    }
}

const OVERLAY_COLORS: [Color32; 4] = [
    Color32::from_rgb(170, 170, 170),
    Color32::from_rgb(120, 180, 120),
    Color32::from_rgb(190, 140, 220),
    Color32::from_rgb(220, 170, 90),
];
