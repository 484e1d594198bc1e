//! Panel 4: the latent space in 2-D — t-SNE (streamed while it settles,
//! cancellable, seeded) or PCA (instant) — of one batch or the whole test
//! split, coloured by digit. Hover names the digit; a click shows the image
//! and its reconstruction.

use std::collections::HashMap;

use egui_plot::{HoverPosition, Legend, MarkerShape, Plot, PlotPoint, PlotPoints, Points};

use crate::run::Media;
use crate::run::summary::LatentMap;

use super::jobs::{CancelFlag, JobResult, Subset};
use super::panel::{Action, PanelCtx};
use super::widgets::{LABEL_COLORS, show as show_tex, single};
use super::work::{self, Method, subset_name};
use crate::metrics::projection::TsneOptions;

#[derive(Clone)]
pub struct Map {
    pub points: Vec<[f32; 2]>,
    pub epoch: usize,
    pub method: Method,
    pub done: bool,
    /// t-SNE iterations behind this map (0 for PCA).
    pub iteration: usize,
    pub version: u64,
}

/// Points one t-SNE maps at most (a 10,000-point MNIST test split takes
/// ~6 s here; a user's own, larger test split is cut to this).
pub const MAX_TSNE_POINTS: usize = 20_000;

pub struct LatentView {
    pub subset: Subset,
    pub maps: HashMap<Subset, Map>,
    /// The running t-SNE: its ticket, subset and cancel flag.
    pub running: Option<(u64, Subset, CancelFlag)>,
    pub selected: Option<usize>,
    pub decoded: Option<(usize, Vec<f32>)>,
    /// Intermediate t-SNE embeddings shown so far (the map settling).
    pub streamed: usize,
    /// Latents epoch the automatic PCA was made for.
    pca_epoch: Option<(u64, usize)>,
    /// The latent map of a history point, read once per file.
    history: Option<(std::path::PathBuf, Result<LatentMap, String>)>,
    /// Points split by label, rebuilt when the map changes.
    series: Option<(u64, Subset, Vec<Vec<usize>>)>,
    /// Tickets of this panel's projections.
    ticket: u64,
}

impl Default for LatentView {
    fn default() -> Self {
        Self {
            subset: Subset::All,
            maps: HashMap::new(),
            running: None,
            selected: None,
            decoded: None,
            streamed: 0,
            pca_epoch: None,
            history: None,
            series: None,
            ticket: 0,
        }
    }
}

/// How many latents a subset covers.
fn subset_len(cx: &PanelCtx<'_>, s: Subset) -> usize {
    let total = cx.session.latents.as_ref().map_or(0, |l| l.labels.len());
    match s {
        Subset::Batch => cx.config.ae_training.batch_size.min(total),
        Subset::All => total,
    }
}

/// Streamed snapshots share a ticket; a counter keeps each one distinct.
fn fresh_version() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

impl LatentView {
    fn launch(&mut self, cx: &mut PanelCtx<'_>, subset: Subset, method: Method) {
        let Some(l) = cx.session.latents.clone() else {
            return;
        };
        if let Some((_, _, c)) = self.running.take() {
            c.cancel();
        }
        let mut n = subset_len(cx, subset);
        if method == Method::Tsne && n > MAX_TSNE_POINTS {
            n = MAX_TSNE_POINTS;
            cx.act(Action::Info(format!(
                "t-SNE maps the first {MAX_TSNE_POINTS} of {} latents (its cap: more would take \
                 many minutes and gigabytes); PCA maps them all",
                subset_len(cx, subset)
            )));
        }
        self.ticket += 1;
        let ticket = self.ticket;
        let cancel = CancelFlag::default();
        let opts = TsneOptions {
            perplexity: cx.settings.perplexity,
            epochs: cx.settings.tsne_epochs,
            seed: cx.settings.tsne_seed,
            ..Default::default()
        };
        if method == Method::Tsne {
            self.running = Some((ticket, subset, cancel.clone()));
        }
        let values = l.values[..n * l.dim].to_vec();
        work::project(
            cx.jobs, ticket, subset, method, values, l.dim, l.epoch, opts, cancel,
        );
    }

    pub fn on_result(&mut self, r: JobResult) {
        match r {
            JobResult::Projection {
                ticket,
                subset,
                points,
                epoch,
                iteration,
                done,
            } => {
                let stale_tsne = self
                    .running
                    .as_ref()
                    .is_some_and(|(t, s, _)| *s == subset && *t != ticket);
                if stale_tsne {
                    return;
                }
                let method = match &self.running {
                    Some((t, _, _)) if *t == ticket => Method::Tsne,
                    _ => Method::Pca,
                };
                if method == Method::Tsne {
                    if done {
                        self.running = None;
                    } else {
                        self.streamed += 1;
                    }
                }
                self.maps.insert(
                    subset,
                    Map {
                        points,
                        epoch,
                        method,
                        done,
                        iteration,
                        version: fresh_version(),
                    },
                );
            }
            JobResult::Decoded { index, image } => self.decoded = Some((index, image)),
            _ => {}
        }
    }

    pub fn show(&mut self, cx: &mut PanelCtx<'_>, ui: &mut egui::Ui) {
        if let Some(point) = cx.history.cloned() {
            point.banner(cx, ui);
            self.history_map(ui, point.latents.as_ref());
            return;
        }
        let Some(latents) = cx.session.latents.clone() else {
            ui.weak("Latents of the test images appear after each autoencoder epoch.");
            return;
        };
        // PCA is instant: keep both subsets' maps current with every new epoch.
        let stamp = (cx.session.generation, latents.epoch);
        if self.pca_epoch != Some(stamp) && self.running.is_none() {
            self.pca_epoch = Some(stamp);
            for s in [Subset::Batch, Subset::All] {
                // A finished t-SNE stays until the user asks for another map.
                if self.maps.get(&s).is_none_or(|m| m.method == Method::Pca) {
                    self.launch(cx, s, Method::Pca);
                }
            }
        }
        self.controls(cx, ui, latents.epoch);
        let subset = self.subset;
        let Some(map) = self.maps.get(&subset).cloned() else {
            ui.spinner();
            return;
        };
        egui::Panel::right("latent-pick")
            .frame(super::widgets::bare_panel(ui))
            .default_size(220.0)
            .show(ui, |ui| self.selection(cx, ui, &latents));
        let n = map.points.len().min(latents.labels.len());
        let series = match &self.series {
            Some((v, s, series)) if *v == map.version && *s == subset => series.clone(),
            _ => {
                let mut by_label = vec![Vec::new(); 10];
                for i in 0..n {
                    by_label[latents.labels[i] as usize % 10].push(i);
                }
                self.series = Some((map.version, subset, by_label.clone()));
                by_label
            }
        };
        let name_to_label: Vec<String> = (0..10).map(|d| format!("digit {d}")).collect();
        let lookup = series.clone();
        let labels = latents.labels.clone();
        let radius = if n > 2000 { 1.5 } else { 3.0 };
        let response = Plot::new("latent-map")
            .data_aspect(1.0)
            .legend(Legend::default())
            .show_axes(false)
            .label_formatter(move |pos: &HoverPosition<'_>| match pos {
                HoverPosition::NearDataPoint {
                    plot_name, index, ..
                } => {
                    let d = name_to_label.iter().position(|n| n == plot_name)?;
                    let i = *lookup.get(d)?.get(*index)?;
                    Some(format!("digit {} · test image #{i}", labels[i]))
                }
                HoverPosition::Elsewhere { .. } => None,
            })
            .show(ui, |p| {
                for (d, idx) in series.iter().enumerate() {
                    let pts: Vec<[f64; 2]> = idx
                        .iter()
                        .map(|&i| [map.points[i][0] as f64, map.points[i][1] as f64])
                        .collect();
                    p.add(digit_points(d, pts, radius));
                }
                if let Some(i) = self.selected
                    && i < n
                {
                    let pt = map.points[i];
                    p.add(
                        Points::new(
                            "selected",
                            PlotPoints::from(vec![[pt[0] as f64, pt[1] as f64]]),
                        )
                        .radius(7.0)
                        .filled(false)
                        .color(egui::Color32::WHITE),
                    );
                }
            });
        if response.response.clicked()
            && let Some(pos) = response.response.interact_pointer_pos()
        {
            let t = &response.transform;
            let nearest = (0..n)
                .map(|i| {
                    let s =
                        t.position_from_point(&PlotPoint::new(map.points[i][0], map.points[i][1]));
                    (i, s.distance(pos))
                })
                .min_by(|a, b| a.1.total_cmp(&b.1));
            if let Some((i, d)) = nearest
                && d < 12.0
            {
                self.select(cx, i, &latents);
            }
        }
    }

    fn select(&mut self, cx: &mut PanelCtx<'_>, i: usize, latents: &super::session::Latents) {
        let Some(latent) = latents.values.get(i * latents.dim..(i + 1) * latents.dim) else {
            return;
        };
        let latent = latent.to_vec();
        self.selected = Some(i);
        self.decoded = None;
        if cx.session.run_dir.is_some() {
            cx.act(Action::DecodeLatent { index: i, latent });
        }
    }

    fn controls(&mut self, cx: &mut PanelCtx<'_>, ui: &mut egui::Ui, epoch: usize) {
        ui.horizontal_wrapped(|ui| {
            for s in [Subset::Batch, Subset::All] {
                let text = format!("{} ({})", subset_name(s), subset_len(cx, s));
                ui.selectable_value(&mut self.subset, s, text);
            }
            ui.separator();
            ui.radio_value(&mut cx.settings.projection, Method::Tsne, "t-SNE");
            ui.radio_value(&mut cx.settings.projection, Method::Pca, "PCA");
            if cx.settings.projection == Method::Tsne {
                ui.add(
                    egui::DragValue::new(&mut cx.settings.perplexity)
                        .range(2.0..=100.0)
                        .prefix("perplexity "),
                );
                ui.add(
                    egui::DragValue::new(&mut cx.settings.tsne_epochs)
                        .range(50..=5000)
                        .prefix("epochs "),
                );
                ui.add(egui::DragValue::new(&mut cx.settings.tsne_seed).prefix("seed "));
            }
            let subset = self.subset;
            let method = cx.settings.projection;
            if ui.button("Project").clicked() {
                self.launch(cx, subset, method);
            }
            if let Some((_, s, cancel)) = &self.running {
                let s = *s;
                if ui.button("Cancel").clicked() {
                    cancel.cancel();
                    self.running = None;
                }
                ui.spinner();
                ui.weak(format!("t-SNE of {} settling…", subset_name(s)));
            }
            if let Some(m) = self.maps.get(&subset) {
                let what = match m.method {
                    Method::Tsne if m.done => format!("t-SNE ({} iterations)", m.iteration),
                    Method::Tsne => format!("t-SNE (iteration {}, settling)", m.iteration),
                    Method::Pca => "PCA".into(),
                };
                ui.weak(format!(
                    "{what} of epoch {} latents (latest: epoch {epoch})",
                    m.epoch
                ));
            }
        });
    }

    fn selection(
        &mut self,
        cx: &mut PanelCtx<'_>,
        ui: &mut egui::Ui,
        latents: &super::session::Latents,
    ) {
        // A selection made in an earlier run can point past this run's latents.
        let Some((i, label)) = self
            .selected
            .and_then(|i| Some((i, *latents.labels.get(i)?)))
        else {
            self.selected = None;
            ui.weak("Click a point to see its image and reconstruction.");
            return;
        };
        ui.strong(format!("test image #{i}: digit {label}"));
        let ctx = ui.ctx().clone();
        if let Some(original) = cx.test_image(i) {
            ui.label("original");
            let tex = cx
                .textures
                .get(&ctx, "latent-original", i as u64, || single(&original));
            show_tex(ui, tex, 4.0);
        }
        ui.label("reconstruction");
        match &self.decoded {
            Some((j, image)) if *j == i => {
                let image = image.clone();
                let tex = cx
                    .textures
                    .get(&ctx, "latent-decoded", i as u64, || single(&image));
                show_tex(ui, tex, 4.0);
            }
            _ if cx.session.run_dir.is_none() => {
                ui.weak("(needs a run with a checkpoint)");
            }
            _ => {
                ui.spinner();
            }
        }
    }
}

impl LatentView {
    /// The PCA map a run kept at a point of its history.
    fn history_map(&mut self, ui: &mut egui::Ui, media: Option<&Media>) {
        let Some(media) = media else {
            ui.weak("This run kept no latent map at this point.");
            return;
        };
        if self.history.as_ref().is_none_or(|(p, _)| *p != media.path) {
            self.history = Some((media.path.clone(), LatentMap::read(&media.path)));
        }
        let Some((_, map)) = &self.history else {
            return;
        };
        let map = match map {
            Ok(map) => map,
            Err(e) => {
                super::widgets::problem(ui, format!("cannot read the latent map: {e}"));
                return;
            }
        };
        ui.label(format!(
            "PCA of {} test images' latents after autoencoder epoch {}",
            map.points.len(),
            media.epoch
        ));
        Plot::new("latent-history")
            .data_aspect(1.0)
            .legend(Legend::default())
            .show_axes(false)
            .show(ui, |p| {
                for d in 0..10u8 {
                    let pts: Vec<[f64; 2]> = map
                        .points
                        .iter()
                        .zip(&map.labels)
                        .filter(|(_, l)| **l % 10 == d)
                        .map(|(pt, _)| [pt[0] as f64, pt[1] as f64])
                        .collect();
                    p.add(digit_points(d as usize, pts, 2.5));
                }
            });
    }
}

/// The points of one class, in its colour: the live map and a history
/// point's map draw the same series.
fn digit_points(d: usize, pts: Vec<[f64; 2]>, radius: f32) -> Points<'static> {
    Points::new(format!("digit {d}"), PlotPoints::from(pts))
        .radius(radius)
        .shape(MarkerShape::Circle)
        .filled(true)
        .color(LABEL_COLORS[d % LABEL_COLORS.len()])
}
