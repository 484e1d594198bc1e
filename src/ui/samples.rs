//! Panel 6: a gallery of generated images with sampler (DDPM, DDIM with
//! steps and η) and seed controls, and interpolation between two samples in
//! latent space (between their starting noises, decoded with DDIM η = 0).

use super::app::App;
use super::export::{ExportRequest, Payload};
use super::jobs::{CancelFlag, Job, JobResult, Requester};
use super::widgets::{count, image_at, show as show_tex, single};
use crate::config::SamplerKind;
use crate::pipeline::SIDE;

#[derive(Default)]
pub struct SamplesView {
    pub images: Vec<f32>,
    /// The x_T of each sample (latent_dim values each).
    pub initial: Vec<f32>,
    pub latent_dim: usize,
    pub version: u64,
    pub ticket: u64,
    pub busy: bool,
    pub progress: Option<(usize, usize)>,
    /// Samples picked for interpolation (A, B).
    pub pick: [Option<usize>; 2],
    pub interpolation: Vec<f32>,
    pub origin: String,
    cancel: Option<CancelFlag>,
}

impl SamplesView {
    pub fn on_failed(&mut self, job: Job) {
        if matches!(job, Job::Sampling(Requester::Samples) | Job::Interpolation) {
            self.busy = false;
        }
    }
}

pub fn on_result(app: &mut App, r: JobResult) {
    let v = &mut app.samples;
    match r {
        JobResult::Generated {
            ticket,
            images,
            initial,
            latent_dim,
            ..
        } if ticket == v.ticket => {
            v.images = images;
            v.initial = initial;
            v.latent_dim = latent_dim;
            v.version += 1;
            v.busy = false;
            v.progress = None;
            v.pick = [None, None];
            v.interpolation.clear();
        }
        JobResult::Interpolated { ticket, images } if ticket == v.ticket => {
            v.interpolation = images;
            v.version += 1;
            v.busy = false;
        }
        _ => {}
    }
}

fn request(app: &mut App, n: usize) -> Option<super::work::Generate> {
    let source = app.model_source()?;
    match app.device() {
        Ok(device) => Some(super::work::Generate {
            source,
            device,
            n,
            seed: app.settings.samples_seed,
            sampling: app.config.sampling.clone(),
            capture: false,
        }),
        Err(e) => {
            app.error(e);
            None
        }
    }
}

fn generate(app: &mut App) {
    let Some(g) = request(app, app.settings.samples_n) else {
        return;
    };
    app.samples.origin = format!("{}, seed {}", g.sampling.label(), g.seed);
    let cancel = CancelFlag::default();
    let ticket = app.next_ticket();
    app.samples.ticket = ticket;
    app.samples.busy = true;
    app.samples.cancel = Some(cancel.clone());
    super::work::generate(&app.jobs, Requester::Samples, ticket, g, cancel);
}

fn interpolate(app: &mut App, a: usize, b: usize) {
    let dim = app.samples.latent_dim;
    let (xa, xb) = (
        app.samples.initial[a * dim..(a + 1) * dim].to_vec(),
        app.samples.initial[b * dim..(b + 1) * dim].to_vec(),
    );
    let Some(g) = request(app, 1) else {
        return;
    };
    let ticket = app.next_ticket();
    app.samples.ticket = ticket;
    app.samples.busy = true;
    super::work::interpolate(&app.jobs, ticket, g, xa, xb, app.settings.interp_steps);
}

fn controls(app: &mut App, ui: &mut egui::Ui) {
    ui.horizontal_wrapped(|ui| {
        let s = &mut app.config.sampling;
        ui.label("Sampler");
        ui.selectable_value(&mut s.sampler, SamplerKind::Ddpm, "DDPM");
        ui.selectable_value(&mut s.sampler, SamplerKind::Ddim, "DDIM");
        let timesteps = app.config.diffusion.timesteps;
        if s.sampler == SamplerKind::Ddim {
            ui.add(
                egui::DragValue::new(&mut s.steps)
                    .range(1..=timesteps)
                    .prefix("steps "),
            );
            ui.add(egui::Slider::new(&mut s.eta, 0.0..=1.0).text("η"));
        }
        ui.separator();
        ui.add(
            egui::DragValue::new(&mut app.settings.samples_n)
                .range(1..=256)
                .prefix("samples "),
        );
        ui.add(egui::DragValue::new(&mut app.settings.samples_seed).prefix("seed "));
        let ready = app.can_sample() && !app.samples.busy;
        if ui
            .add_enabled(ready, egui::Button::new("Generate"))
            .on_disabled_hover_text(super::app::SAMPLING_NEEDS)
            .clicked()
        {
            // Keep the experiment form in step with the values edited here.
            let cfg = app.config.clone();
            app.form.reset(&cfg);
            generate(app);
        }
        let v = &mut app.samples;
        super::widgets::job_controls(ui, &mut v.busy, &mut v.cancel, v.progress);
        if !app.samples.images.is_empty() && ui.button("Export PNG").clicked() {
            let n = count(&app.samples.images);
            let grid = crate::export::grid(
                &app.samples.images,
                SIDE,
                crate::export::square_cols(n),
                2,
                3,
            );
            app.export(ExportRequest {
                stem: "samples".into(),
                ext: "png",
                payload: Payload::Png(grid),
            });
        }
    });
}

pub fn show(app: &mut App, ui: &mut egui::Ui) {
    controls(app, ui);
    if app.samples.images.is_empty() {
        ui.weak("Press Generate to sample from the current run.");
        return;
    }
    ui.weak(format!(
        "{} · click two samples to interpolate between them",
        app.samples.origin
    ));
    ui.separator();
    let n = count(&app.samples.images);
    let cols = ((ui.available_width() / (28.0 * 3.0 + 8.0)).floor() as usize).clamp(1, 16);
    let ctx = ui.ctx().clone();
    let mut clicked = None;
    egui::ScrollArea::vertical()
        .max_height(ui.available_height() - 150.0)
        .auto_shrink([false, true])
        .show(ui, |ui| {
            egui::Grid::new("gallery")
                .spacing([6.0, 6.0])
                .show(ui, |ui| {
                    for i in 0..n {
                        let key = format!("sample-{i}");
                        let images = &app.samples.images;
                        let tex = app.textures.get(&ctx, &key, app.samples.version, || {
                            single(image_at(images, i))
                        });
                        let r = show_tex(ui, tex, 3.0).on_hover_text(format!("sample {i}"));
                        let picked = app.samples.pick.iter().position(|p| *p == Some(i));
                        if let Some(k) = picked {
                            ui.painter().rect_stroke(
                                r.rect.expand(2.0),
                                2.0,
                                egui::Stroke::new(
                                    2.0,
                                    if k == 0 {
                                        egui::Color32::YELLOW
                                    } else {
                                        egui::Color32::LIGHT_BLUE
                                    },
                                ),
                                egui::StrokeKind::Outside,
                            );
                        }
                        if r.clicked() {
                            clicked = Some(i);
                        }
                        if (i + 1) % cols == 0 {
                            ui.end_row();
                        }
                    }
                });
        });
    if let Some(i) = clicked {
        let p = &mut app.samples.pick;
        *p = match *p {
            [None, _] => [Some(i), None],
            [Some(a), None] if a != i => [Some(a), Some(i)],
            _ => [Some(i), None],
        };
    }
    ui.separator();
    interpolation(app, ui);
}

fn interpolation(app: &mut App, ui: &mut egui::Ui) {
    ui.horizontal_wrapped(|ui| {
        ui.strong("Interpolation");
        match app.samples.pick {
            [Some(a), Some(b)] => {
                ui.label(format!("sample {a} to sample {b}"));
                ui.add(
                    egui::DragValue::new(&mut app.settings.interp_steps)
                        .range(2..=32)
                        .prefix("steps "),
                );
                if ui
                    .add_enabled(!app.samples.busy, egui::Button::new("Interpolate"))
                    .clicked()
                {
                    interpolate(app, a, b);
                }
            }
            [Some(a), None] => {
                ui.weak(format!("sample {a} picked; click another"));
            }
            _ => {
                ui.weak("click two samples above");
            }
        }
        if !app.samples.interpolation.is_empty() && ui.button("Export interpolation PNG").clicked()
        {
            let n = count(&app.samples.interpolation);
            let grid = crate::export::grid(&app.samples.interpolation, SIDE, n, 2, 3);
            app.export(ExportRequest {
                stem: "interpolation".into(),
                ext: "png",
                payload: Payload::Png(grid),
            });
        }
    });
    if !app.samples.interpolation.is_empty() {
        let ctx = ui.ctx().clone();
        let n = count(&app.samples.interpolation);
        let images = app.samples.interpolation.clone();
        let tex = app
            .textures
            .get(&ctx, "interpolation", app.samples.version, || {
                super::widgets::grid(&images, n)
            });
        let zoom = super::widgets::fit_zoom(tex.size_vec2(), ui.available_size(), 4.0);
        show_tex(ui, tex, zoom);
    }
}
