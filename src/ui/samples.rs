//! Panel 6: a gallery of generated images with sampler (DDPM, DDIM with
//! steps and η) and seed controls, and interpolation between two samples in
//! latent space (between their starting noises, decoded with DDIM η = 0).

use super::export::{ExportRequest, Payload};
use super::jobs::{CancelFlag, Job, JobResult, Requester};
use super::panel::{Action, PanelCtx, SampleJob};
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
    /// Grid columns when one row per class was asked for.
    pub cols: Option<usize>,
    /// The class or guidance changed: generate again when free.
    resample: bool,
    cancel: Option<CancelFlag>,
}

impl SamplesView {
    pub fn on_failed(&mut self, job: Job) {
        if matches!(job, Job::Sampling(Requester::Samples) | Job::Interpolation) {
            self.busy = false;
        }
    }

    pub fn on_result(&mut self, r: JobResult) {
        let v = self;
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

    fn generate(&mut self, cx: &mut PanelCtx<'_>, sampling: crate::config::SamplingConfig) {
        let seed = cx.settings.samples_seed;
        let (n, classes, cols) = cx
            .settings
            .samples_class
            .classes(cx.settings.samples_n, super::class_pick::run_classes(cx).0);
        self.cols = cols;
        self.origin = match &classes {
            Some(_) => format!(
                "{}, guidance {}, seed {seed}",
                sampling.label(),
                sampling.guidance
            ),
            None => format!("{}, seed {seed}", sampling.label()),
        };
        let cancel = CancelFlag::default();
        self.ticket += 1;
        self.busy = true;
        self.cancel = Some(cancel.clone());
        cx.act(Action::Generate(SampleJob {
            requester: Requester::Samples,
            ticket: self.ticket,
            n,
            seed,
            sampling,
            capture: false,
            classes,
            cancel,
        }));
    }

    fn interpolate(&mut self, cx: &mut PanelCtx<'_>, a: usize, b: usize) {
        let dim = self.latent_dim;
        let (from, to) = (
            self.initial[a * dim..(a + 1) * dim].to_vec(),
            self.initial[b * dim..(b + 1) * dim].to_vec(),
        );
        self.ticket += 1;
        self.busy = true;
        cx.act(Action::Interpolate {
            ticket: self.ticket,
            seed: cx.settings.samples_seed,
            sampling: cx.config.sampling.clone(),
            from,
            to,
            steps: cx.settings.interp_steps,
        });
    }

    fn controls(&mut self, cx: &mut PanelCtx<'_>, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            // Sampling settings are the experiment's: edited here on a copy,
            // applied through the app (which keeps the form in step).
            let mut sampling = cx.config.sampling.clone();
            let s = &mut sampling;
            ui.label("Sampler");
            ui.selectable_value(&mut s.sampler, SamplerKind::Ddpm, "DDPM");
            ui.selectable_value(&mut s.sampler, SamplerKind::Ddim, "DDIM");
            let dpm = ui.selectable_value(&mut s.sampler, SamplerKind::Dpmpp, "DPM-Solver++");
            if dpm.changed() {
                // Deterministic: it has no η.
                s.eta = 0.0;
            }
            let timesteps = cx.config.diffusion.timesteps;
            if s.sampler != SamplerKind::Ddpm {
                ui.add(
                    egui::DragValue::new(&mut s.steps)
                        .range(1..=timesteps)
                        .prefix("steps "),
                );
            }
            if s.sampler == SamplerKind::Ddim {
                ui.add(egui::Slider::new(&mut s.eta, 0.0..=1.0).text("η"));
            }
            let mut pick = cx.settings.samples_class;
            let class_changed = super::class_pick::controls(cx, ui, "samples-class", &mut pick, s);
            cx.settings.samples_class = pick;
            if sampling != cx.config.sampling {
                cx.act(Action::SetSampling(sampling.clone()));
            }
            // The class and guidance resample at once, or once the
            // generation under way is done.
            self.resample |= class_changed;
            if self.resample && cx.can_sample && !self.busy {
                self.resample = false;
                self.generate(cx, sampling.clone());
            }
            ui.separator();
            ui.add(
                egui::DragValue::new(&mut cx.settings.samples_n)
                    .range(1..=256)
                    .prefix("samples "),
            );
            ui.add(egui::DragValue::new(&mut cx.settings.samples_seed).prefix("seed "));
            let ready = cx.can_sample && !self.busy;
            if ui
                .add_enabled(ready, egui::Button::new("Generate"))
                .on_disabled_hover_text(super::app::SAMPLING_NEEDS)
                .clicked()
            {
                self.generate(cx, sampling);
            }
            let v = &mut *self;
            super::widgets::job_controls(ui, &mut v.busy, &mut v.cancel, v.progress);
            if !self.images.is_empty() && ui.button("Export PNG").clicked() {
                let n = count(&self.images);
                let grid =
                    crate::export::grid(&self.images, SIDE, crate::export::square_cols(n), 2, 3);
                cx.act(Action::Export(ExportRequest {
                    stem: "samples".into(),
                    ext: "png",
                    payload: Payload::Png(grid),
                }));
            }
        });
    }

    pub fn show(&mut self, cx: &mut PanelCtx<'_>, ui: &mut egui::Ui) {
        if let Some(point) = cx.history.cloned() {
            point.banner(cx, ui);
            ui.label("16 DDIM samples from the same noise every epoch");
            let width = ui.available_width().min(900.0);
            super::run_history::show_media(cx, ui, point.samples.as_ref(), width);
            return;
        }
        self.controls(cx, ui);
        if self.images.is_empty() {
            ui.weak("Press Generate to sample from the current run.");
            return;
        }
        ui.weak(format!(
            "{} · click two samples to interpolate between them",
            self.origin
        ));
        ui.separator();
        let n = count(&self.images);
        let fit = ((ui.available_width() / (28.0 * 3.0 + 8.0)).floor() as usize).clamp(1, 16);
        let cols = self.cols.unwrap_or(fit);
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
                            let images = &self.images;
                            let tex = cx
                                .textures
                                .get(&ctx, &key, self.version, || single(image_at(images, i)));
                            let r = show_tex(ui, tex, 3.0).on_hover_text(format!("sample {i}"));
                            let picked = self.pick.iter().position(|p| *p == Some(i));
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
            let p = &mut self.pick;
            *p = match *p {
                [None, _] => [Some(i), None],
                [Some(a), None] if a != i => [Some(a), Some(i)],
                _ => [Some(i), None],
            };
        }
        ui.separator();
        self.interpolation(cx, ui);
    }

    fn interpolation(&mut self, cx: &mut PanelCtx<'_>, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            ui.strong("Interpolation");
            match self.pick {
                [Some(a), Some(b)] => {
                    ui.label(format!("sample {a} to sample {b}"));
                    ui.add(
                        egui::DragValue::new(&mut cx.settings.interp_steps)
                            .range(2..=32)
                            .prefix("steps "),
                    );
                    if ui
                        .add_enabled(!self.busy, egui::Button::new("Interpolate"))
                        .clicked()
                    {
                        self.interpolate(cx, a, b);
                    }
                }
                [Some(a), None] => {
                    ui.weak(format!("sample {a} picked; click another"));
                }
                _ => {
                    ui.weak("click two samples above");
                }
            }
            if !self.interpolation.is_empty() && ui.button("Export interpolation PNG").clicked() {
                let n = count(&self.interpolation);
                let grid = crate::export::grid(&self.interpolation, SIDE, n, 2, 3);
                cx.act(Action::Export(ExportRequest {
                    stem: "interpolation".into(),
                    ext: "png",
                    payload: Payload::Png(grid),
                }));
            }
        });
        if !self.interpolation.is_empty() {
            let ctx = ui.ctx().clone();
            let n = count(&self.interpolation);
            let images = self.interpolation.clone();
            let tex = cx.textures.get(&ctx, "interpolation", self.version, || {
                super::widgets::grid(&images, n)
            });
            let zoom = super::widgets::fit_zoom(tex.size_vec2(), ui.available_size(), 4.0);
            show_tex(ui, tex, zoom);
        }
    }
}
