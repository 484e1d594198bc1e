//! Panel 4: the latent space in 2-D — t-SNE (streamed while it settles,
//! cancellable, seeded) or PCA (instant) — of one batch or the whole test
//! split, coloured by digit. Hover names the digit; a click shows the image
//! and its reconstruction.

use std::collections::HashMap;

use egui_plot::{HoverPosition, Legend, MarkerShape, Plot, PlotPoint, PlotPoints, Points};

use super::app::App;
use super::jobs::{CancelFlag, JobResult, Subset};
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
    /// Points split by label, rebuilt when the map changes.
    series: Option<(u64, Subset, Vec<Vec<usize>>)>,
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
            series: None,
        }
    }
}

/// How many latents a subset covers.
fn subset_len(app: &App, s: Subset) -> usize {
    let total = app.session.latents.as_ref().map_or(0, |l| l.labels.len());
    match s {
        Subset::Batch => app.config.ae_training.batch_size.min(total),
        Subset::All => total,
    }
}

fn launch(app: &mut App, subset: Subset, method: Method) {
    let Some(l) = app.session.latents.clone() else {
        return;
    };
    if let Some((_, _, c)) = app.latent.running.take() {
        c.cancel();
    }
    let mut n = subset_len(app, subset);
    if method == Method::Tsne && n > MAX_TSNE_POINTS {
        n = MAX_TSNE_POINTS;
        app.info(format!(
            "t-SNE maps the first {MAX_TSNE_POINTS} of {} latents (its cap: more would take \
             many minutes and gigabytes); PCA maps them all",
            subset_len(app, subset)
        ));
    }
    let ticket = app.next_ticket();
    let cancel = CancelFlag::default();
    let opts = TsneOptions {
        perplexity: app.settings.perplexity,
        epochs: app.settings.tsne_epochs,
        seed: app.settings.tsne_seed,
        ..Default::default()
    };
    if method == Method::Tsne {
        app.latent.running = Some((ticket, subset, cancel.clone()));
    }
    let values = l.values[..n * l.dim].to_vec();
    work::project(
        &app.jobs, ticket, subset, method, values, l.dim, l.epoch, opts, cancel,
    );
}

pub fn on_result(app: &mut App, r: JobResult) {
    match r {
        JobResult::Projection {
            ticket,
            subset,
            points,
            epoch,
            iteration,
            done,
        } => {
            let stale_tsne = app
                .latent
                .running
                .as_ref()
                .is_some_and(|(t, s, _)| *s == subset && *t != ticket);
            if stale_tsne {
                return;
            }
            let method = match &app.latent.running {
                Some((t, _, _)) if *t == ticket => Method::Tsne,
                _ => Method::Pca,
            };
            if method == Method::Tsne {
                if done {
                    app.latent.running = None;
                } else {
                    app.latent.streamed += 1;
                }
            }
            app.latent.maps.insert(
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
        JobResult::Decoded { index, image } => app.latent.decoded = Some((index, image)),
        _ => {}
    }
}

/// Streamed snapshots share a ticket; a counter keeps each one distinct.
fn fresh_version() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

pub fn show(app: &mut App, ui: &mut egui::Ui) {
    let Some(latents) = app.session.latents.clone() else {
        ui.weak("Latents of the test images appear after each autoencoder epoch.");
        return;
    };
    // PCA is instant: keep both subsets' maps current with every new epoch.
    let stamp = (app.session.generation, latents.epoch);
    if app.latent.pca_epoch != Some(stamp) && app.latent.running.is_none() {
        app.latent.pca_epoch = Some(stamp);
        for s in [Subset::Batch, Subset::All] {
            // A finished t-SNE stays until the user asks for another map.
            if app
                .latent
                .maps
                .get(&s)
                .is_none_or(|m| m.method == Method::Pca)
            {
                launch(app, s, Method::Pca);
            }
        }
    }
    controls(app, ui, latents.epoch);
    let subset = app.latent.subset;
    let Some(map) = app.latent.maps.get(&subset).cloned() else {
        ui.spinner();
        return;
    };
    egui::Panel::right("latent-pick")
        .frame(super::widgets::bare_panel(ui))
        .default_size(220.0)
        .show(ui, |ui| selection(app, ui, &latents));
    let n = map.points.len().min(latents.labels.len());
    let series = match &app.latent.series {
        Some((v, s, series)) if *v == map.version && *s == subset => series.clone(),
        _ => {
            let mut by_label = vec![Vec::new(); 10];
            for i in 0..n {
                by_label[latents.labels[i] as usize % 10].push(i);
            }
            app.latent.series = Some((map.version, subset, by_label.clone()));
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
                p.add(
                    Points::new(format!("digit {d}"), PlotPoints::from(pts))
                        .radius(radius)
                        .shape(MarkerShape::Circle)
                        .filled(true)
                        .color(LABEL_COLORS[d]),
                );
            }
            if let Some(i) = app.latent.selected
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
                let s = t.position_from_point(&PlotPoint::new(map.points[i][0], map.points[i][1]));
                (i, s.distance(pos))
            })
            .min_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((i, d)) = nearest
            && d < 12.0
        {
            select(app, i, &latents);
        }
    }
}

fn select(app: &mut App, i: usize, latents: &super::session::Latents) {
    let Some(latent) = latents.values.get(i * latents.dim..(i + 1) * latents.dim) else {
        return;
    };
    let latent = latent.to_vec();
    app.latent.selected = Some(i);
    app.latent.decoded = None;
    let Some(dir) = app.session.run_dir.clone() else {
        return;
    };
    match app.device() {
        Ok(device) => {
            work::decode_latent(&app.jobs, dir, device, i, latent);
        }
        Err(e) => app.error(e),
    }
}

fn controls(app: &mut App, ui: &mut egui::Ui, epoch: usize) {
    ui.horizontal_wrapped(|ui| {
        for s in [Subset::Batch, Subset::All] {
            let text = format!("{} ({})", subset_name(s), subset_len(app, s));
            ui.selectable_value(&mut app.latent.subset, s, text);
        }
        ui.separator();
        ui.radio_value(&mut app.settings.projection, Method::Tsne, "t-SNE");
        ui.radio_value(&mut app.settings.projection, Method::Pca, "PCA");
        if app.settings.projection == Method::Tsne {
            ui.add(
                egui::DragValue::new(&mut app.settings.perplexity)
                    .range(2.0..=100.0)
                    .prefix("perplexity "),
            );
            ui.add(
                egui::DragValue::new(&mut app.settings.tsne_epochs)
                    .range(50..=5000)
                    .prefix("epochs "),
            );
            ui.add(egui::DragValue::new(&mut app.settings.tsne_seed).prefix("seed "));
        }
        let subset = app.latent.subset;
        let method = app.settings.projection;
        if ui.button("Project").clicked() {
            launch(app, subset, method);
        }
        if let Some((_, s, cancel)) = &app.latent.running {
            let s = *s;
            if ui.button("Cancel").clicked() {
                cancel.cancel();
                app.latent.running = None;
            }
            ui.spinner();
            ui.weak(format!("t-SNE of {} settling…", subset_name(s)));
        }
        if let Some(m) = app.latent.maps.get(&subset) {
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

fn selection(app: &mut App, ui: &mut egui::Ui, latents: &super::session::Latents) {
    // A selection made in an earlier run can point past this run's latents.
    let Some((i, label)) = app
        .latent
        .selected
        .and_then(|i| Some((i, *latents.labels.get(i)?)))
    else {
        app.latent.selected = None;
        ui.weak("Click a point to see its image and reconstruction.");
        return;
    };
    ui.strong(format!("test image #{i}: digit {label}"));
    let ctx = ui.ctx().clone();
    if let Some(original) = app.test_image(i) {
        ui.label("original");
        let tex = app
            .textures
            .get(&ctx, "latent-original", i as u64, || single(&original));
        show_tex(ui, tex, 4.0);
    }
    ui.label("reconstruction");
    match &app.latent.decoded {
        Some((j, image)) if *j == i => {
            let image = image.clone();
            let tex = app
                .textures
                .get(&ctx, "latent-decoded", i as u64, || single(&image));
            show_tex(ui, tex, 4.0);
        }
        _ if app.session.run_dir.is_none() => {
            ui.weak("(needs a run with a checkpoint)");
        }
        _ => {
            ui.spinner();
        }
    }
}
