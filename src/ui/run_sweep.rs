//! A sweep in the Runs panel: a chosen metric against the swept values —
//! a line per value of a second key, or a heat map of two keys, and for a
//! third key one small chart per value.

use std::collections::BTreeMap;
use std::path::PathBuf;

use egui::{Color32, Rect, Sense, pos2, vec2};
use egui_plot::{Legend, Line, Plot, PlotPoints, Points};

use crate::run::sweep::{Axis, Sweep};
use crate::run::{METRICS, RunSummary};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chart {
    Lines,
    HeatMap,
}

pub struct SweepView {
    /// The sweep shown, by id, and its axes (read from its sweep.json).
    pub sweep: Option<String>,
    axes: Option<(PathBuf, Result<Vec<Axis>, String>)>,
    pub metric: &'static str,
    pub chart: Chart,
}

impl Default for SweepView {
    fn default() -> Self {
        Self {
            sweep: None,
            axes: None,
            metric: "cfid",
            chart: Chart::Lines,
        }
    }
}

const LINE_COLORS: [Color32; 6] = [
    Color32::from_rgb(90, 170, 255),
    Color32::from_rgb(255, 150, 80),
    Color32::from_rgb(120, 200, 120),
    Color32::from_rgb(200, 130, 230),
    Color32::from_rgb(230, 200, 90),
    Color32::from_rgb(170, 170, 170),
];

/// A metric value by each point's values (in axis order).
type Values = BTreeMap<Vec<String>, f64>;

impl SweepView {
    /// Draws nothing when no run shown belongs to a sweep.
    pub fn show(&mut self, ui: &mut egui::Ui, runs: &[&RunSummary]) {
        let mut ids: Vec<&str> = runs
            .iter()
            .filter_map(|r| r.sweep.as_ref().map(|m| m.sweep.as_str()))
            .collect();
        ids.sort();
        ids.dedup();
        if ids.is_empty() {
            return;
        }
        if !self.sweep.as_deref().is_some_and(|s| ids.contains(&s)) {
            self.sweep = Some(ids[0].to_string());
        }
        let id = self.sweep.clone().unwrap_or_default();
        let members: Vec<&RunSummary> = runs
            .iter()
            .filter(|r| r.sweep.as_ref().is_some_and(|m| m.sweep == id))
            .copied()
            .collect();
        ui.horizontal_wrapped(|ui| {
            egui::ComboBox::new("sweep-id", "sweep")
                .selected_text(&id)
                .show_ui(ui, |ui| {
                    for s in &ids {
                        ui.selectable_value(&mut self.sweep, Some(s.to_string()), *s);
                    }
                });
            egui::ComboBox::new("sweep-metric", "metric")
                .selected_text(self.metric)
                .show_ui(ui, |ui| {
                    for m in METRICS {
                        ui.selectable_value(&mut self.metric, m, m);
                    }
                });
        });
        let Some(dir) = members.first().and_then(|r| r.dir.parent()) else {
            return;
        };
        if self.axes.as_ref().is_none_or(|(d, _)| d != dir) {
            let axes = match Sweep::read(dir) {
                Some(Ok(s)) => Ok(s.axes),
                Some(Err(e)) => Err(e),
                None => Err(format!("{} has no sweep.json", dir.display())),
            };
            self.axes = Some((dir.to_path_buf(), axes));
        }
        let axes = match &self.axes {
            Some((_, Ok(axes))) => axes.clone(),
            Some((_, Err(e))) => {
                super::widgets::problem(ui, format!("cannot read the sweep: {e}"));
                return;
            }
            None => return,
        };
        let values: Values = members
            .iter()
            .filter_map(|r| {
                let m = r.sweep.as_ref()?;
                let key = axes
                    .iter()
                    .map(|a| m.values.get(&a.key).cloned())
                    .collect::<Option<_>>()?;
                Some((key, r.metric(self.metric)?))
            })
            .collect();
        let scored = values.len();
        let points: usize = axes.iter().map(|a| a.values.len()).product();
        ui.weak(format!(
            "{} against {} — {scored} of {points} points scored",
            self.metric,
            axes.iter()
                .map(|a| a.key.as_str())
                .collect::<Vec<_>>()
                .join(" × ")
        ));
        if axes.len() >= 2 {
            ui.horizontal(|ui| {
                ui.selectable_value(&mut self.chart, Chart::Lines, "lines");
                ui.selectable_value(&mut self.chart, Chart::HeatMap, "heat map");
            });
        }
        match axes.len() {
            1 | 2 => self.chart_of(ui, &axes, &values, &[], 300.0, "sweep-plot"),
            _ => {
                // Small multiples: one chart per value of the third key.
                let third = &axes[2];
                ui.horizontal_wrapped(|ui| {
                    for v in &third.values {
                        ui.vertical(|ui| {
                            ui.set_width(320.0);
                            ui.label(format!("{} = {v}", third.key));
                            let fixed = [v.clone()];
                            self.chart_of(
                                ui,
                                &axes[..2],
                                &values,
                                &fixed,
                                220.0,
                                &format!("sweep-plot-{v}"),
                            );
                        });
                    }
                });
            }
        }
    }

    /// One chart of the first two axes; `fixed` are the values of the
    /// axes after them.
    fn chart_of(
        &self,
        ui: &mut egui::Ui,
        axes: &[Axis],
        values: &Values,
        fixed: &[String],
        height: f32,
        id: &str,
    ) {
        let at = |i: usize, j: Option<usize>| -> Option<f64> {
            let mut key = vec![axes[0].values[i].clone()];
            if let Some(j) = j {
                key.push(axes[1].values[j].clone());
            }
            key.extend(fixed.iter().cloned());
            values.get(&key).copied()
        };
        if axes.len() == 2 && self.chart == Chart::HeatMap {
            heat_map(ui, axes, &|i, j| at(i, Some(j)), height);
            return;
        }
        let labels = axes[0].values.clone();
        let lines: Vec<(String, Vec<[f64; 2]>)> = match axes.get(1) {
            None => vec![(
                self.metric.to_string(),
                (0..labels.len())
                    .filter_map(|i| Some([i as f64, at(i, None)?]))
                    .collect(),
            )],
            Some(second) => (0..second.values.len())
                .map(|j| {
                    let pts = (0..labels.len())
                        .filter_map(|i| Some([i as f64, at(i, Some(j))?]))
                        .collect();
                    (format!("{} = {}", second.key, second.values[j]), pts)
                })
                .collect(),
        };
        Plot::new(id.to_string())
            .height(height)
            .legend(Legend::default())
            .x_axis_label(axes[0].key.clone())
            .y_axis_label(self.metric)
            .x_axis_formatter(move |mark, _| {
                let i = mark.value.round();
                if (mark.value - i).abs() < 1e-6 && i >= 0.0 {
                    labels.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .show(ui, |p| {
                for (k, (name, pts)) in lines.into_iter().enumerate() {
                    let color = LINE_COLORS[k % LINE_COLORS.len()];
                    p.line(Line::new(name.clone(), PlotPoints::from(pts.clone())).color(color));
                    p.add(
                        Points::new(name, PlotPoints::from(pts))
                            .radius(4.0)
                            .color(color),
                    );
                }
            });
    }
}

/// Cells coloured from dark (low) to bright (high), with their values.
fn heat_map(
    ui: &mut egui::Ui,
    axes: &[Axis],
    at: &dyn Fn(usize, usize) -> Option<f64>,
    height: f32,
) {
    let (rows, cols) = (axes[1].values.len(), axes[0].values.len());
    let all: Vec<f64> = (0..cols)
        .flat_map(|i| (0..rows).filter_map(move |j| at(i, j)))
        .collect();
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let label_w = 140.0;
    let cell = vec2(
        ((ui.available_width().min(720.0) - label_w) / cols as f32).max(40.0),
        ((height - 40.0) / rows as f32).clamp(24.0, 60.0),
    );
    let size = vec2(label_w + cell.x * cols as f32, cell.y * rows as f32 + 36.0);
    let (rect, _) = ui.allocate_exact_size(size, Sense::hover());
    let painter = ui.painter_at(rect);
    let text = ui.visuals().text_color();
    let font = egui::FontId::proportional(12.0);
    for j in 0..rows {
        let y = rect.top() + j as f32 * cell.y;
        painter.text(
            pos2(rect.left() + label_w - 6.0, y + cell.y / 2.0),
            egui::Align2::RIGHT_CENTER,
            format!(
                "{} = {}",
                axes[1].key.rsplit('.').next().unwrap_or(""),
                axes[1].values[j]
            ),
            font.clone(),
            text,
        );
        for i in 0..cols {
            let r = Rect::from_min_size(pos2(rect.left() + label_w + i as f32 * cell.x, y), cell)
                .shrink(1.0);
            let (fill, label) = match at(i, j) {
                Some(v) => {
                    let t = if hi > lo {
                        ((v - lo) / (hi - lo)) as f32
                    } else {
                        0.5
                    };
                    (ramp(t), format!("{v:.3}"))
                }
                None => (Color32::from_gray(40), "–".to_string()),
            };
            painter.rect_filled(r, 2.0, fill);
            let ink = if fill.r() as u32 + fill.g() as u32 + fill.b() as u32 > 380 {
                Color32::BLACK
            } else {
                Color32::WHITE
            };
            painter.text(
                r.center(),
                egui::Align2::CENTER_CENTER,
                label,
                font.clone(),
                ink,
            );
        }
    }
    for i in 0..cols {
        painter.text(
            pos2(
                rect.left() + label_w + (i as f32 + 0.5) * cell.x,
                rect.top() + rows as f32 * cell.y + 12.0,
            ),
            egui::Align2::CENTER_CENTER,
            &axes[0].values[i],
            font.clone(),
            text,
        );
    }
    painter.text(
        pos2(
            rect.left() + label_w + cell.x * cols as f32 / 2.0,
            rect.bottom() - 6.0,
        ),
        egui::Align2::CENTER_CENTER,
        &axes[0].key,
        font,
        text,
    );
}

/// Dark blue → teal → yellow, like viridis.
fn ramp(t: f32) -> Color32 {
    let stops = [
        (68.0, 1.0, 84.0),
        (33.0, 145.0, 140.0),
        (253.0, 231.0, 37.0),
    ];
    let t = t.clamp(0.0, 1.0) * 2.0;
    let (k, f) = if t >= 1.0 { (1, t - 1.0) } else { (0, t) };
    let (a, b) = (stops[k], stops[k + 1]);
    let mix = |x: f32, y: f32| (x + (y - x) * f).round() as u8;
    Color32::from_rgb(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}
