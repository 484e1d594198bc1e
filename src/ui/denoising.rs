//! Panel 5: generate N samples once, capturing every step, then scrub from
//! T to 0 (slider, play/pause, arrow keys) showing each sample's decoded x_t
//! beside its decoded predicted x0. Frames are decoded once per generation and kept,
//! so scrubbing only swaps one small texture.

use std::time::Instant;

use super::export::{ExportRequest, Payload};
use super::jobs::{CancelFlag, Job, JobResult, Requester};
use super::panel::{Action, PanelCtx, SampleJob};
use super::session::Denoising;
use super::session::Session;
use super::widgets::{fit_zoom, show as show_tex};
use crate::pipeline::SIDE;

/// Samples per row of pairs.
const PER_ROW: usize = 4;
/// Frames kept in an exported GIF (evenly spaced, always ending at t = 0).
const GIF_FRAMES: usize = 80;

#[derive(Default)]
pub struct DenoiseView {
    pub generated: Option<Denoising>,
    /// Bumped when `generated` changes.
    pub version: u64,
    pub ticket: u64,
    /// Index into the frames (0 = the first visited, highest t).
    pub frame: usize,
    pub playing: bool,
    last_tick: Option<Instant>,
    pub progress: Option<(usize, usize)>,
    pub busy: bool,
    /// The class or guidance changed: generate again.
    resample: bool,
    cancel: Option<CancelFlag>,
    /// Sampler name and seed of the generation under way, for its caption.
    pending: Option<(&'static str, u64)>,
}

impl DenoiseView {
    pub fn on_failed(&mut self, job: Job) {
        if job == Job::Sampling(Requester::Denoising) {
            self.busy = false;
        }
    }

    pub fn on_result(&mut self, r: JobResult) {
        if let JobResult::Generated {
            images,
            frames,
            visited,
            ..
        } = r
        {
            let (sampler, seed) = self.pending.take().unwrap_or(("?", 0));
            let v = self;
            let n = images.len() / crate::pipeline::PIXELS;
            // Long chains keep an even spread of frames (memory is capped).
            let kept = if frames.len() < visited {
                format!(
                    " ({} frames kept: at most {} MiB of frames; fewer samples keep more)",
                    frames.len(),
                    crate::pipeline::MAX_CAPTURE_BYTES >> 20
                )
            } else {
                String::new()
            };
            v.generated = Some(Denoising {
                origin: format!("{n} samples, {sampler} {visited} steps{kept}, seed {seed}"),
                n,
                images,
                frames,
            });
            v.version += 1;
            v.frame = 0;
            v.busy = false;
            v.progress = None;
        }
    }

    fn generate(&mut self, cx: &mut PanelCtx<'_>) {
        if let Some(c) = self.cancel.take() {
            c.cancel();
        }
        let cancel = CancelFlag::default();
        self.ticket += 1;
        self.busy = true;
        self.cancel = Some(cancel.clone());
        let sampling = cx.config.sampling.clone();
        let (n, classes, _) = cx
            .settings
            .denoise_class
            .classes(cx.settings.denoise_n, super::class_pick::run_classes(cx).0);
        self.pending = Some((sampling.sampler.name(), cx.settings.denoise_seed));
        cx.act(Action::Generate(SampleJob {
            requester: Requester::Denoising,
            ticket: self.ticket,
            n,
            seed: cx.settings.denoise_seed,
            sampling,
            capture: true,
            classes,
            cancel,
        }));
    }

    pub fn show(&mut self, cx: &mut PanelCtx<'_>, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            ui.add(
                egui::DragValue::new(&mut cx.settings.denoise_n)
                    .range(1..=64)
                    .prefix("samples "),
            );
            ui.add(egui::DragValue::new(&mut cx.settings.denoise_seed).prefix("seed "));
            ui.weak(cx.config.sampling.label())
                .on_hover_text("Sampler settings live on the Samples and Experiment panels");
            let mut pick = cx.settings.denoise_class;
            let mut sampling = cx.config.sampling.clone();
            let changed =
                super::class_pick::controls(cx, ui, "denoise-class", &mut pick, &mut sampling);
            cx.settings.denoise_class = pick;
            if sampling != cx.config.sampling {
                cx.act(Action::SetSampling(sampling));
            }
            // The class and guidance resample at once (on the next frame,
            // once the guidance is the experiment's).
            if changed {
                self.resample = true;
            } else if self.resample && cx.can_sample && !self.busy {
                self.resample = false;
                self.generate(cx);
            }
            let ready = cx.can_sample && !self.busy;
            if ui
                .add_enabled(ready, egui::Button::new("Generate"))
                .on_disabled_hover_text(super::app::SAMPLING_NEEDS)
                .clicked()
            {
                self.generate(cx);
            }
            let v = &mut *self;
            super::widgets::job_controls(ui, &mut v.busy, &mut v.cancel, v.progress);
        });
        let Some((d, version)) = source(self, cx.session) else {
            ui.weak(
                "Frames appear after each diffusion epoch (a DDIM preview), or press Generate.",
            );
            return;
        };
        let (n, frames_len, origin) = (d.n, d.frames.len(), d.origin.clone());
        if frames_len == 0 {
            ui.weak("This generation captured no frames.");
            return;
        }
        let v = &mut *self;
        v.frame = v.frame.min(frames_len - 1);
        // Arrow keys step one timestep, unless a widget (e.g. the slider
        // itself, or a text field) has the keyboard.
        if ui.memory(|m| m.focused().is_none()) {
            let (right, left) = ui.input(|i| {
                (
                    i.key_pressed(egui::Key::ArrowRight),
                    i.key_pressed(egui::Key::ArrowLeft),
                )
            });
            if right {
                v.frame = (v.frame + 1).min(frames_len - 1);
                v.playing = false;
            }
            if left {
                v.frame = v.frame.saturating_sub(1);
                v.playing = false;
            }
        }
        if v.playing {
            let now = Instant::now();
            let dt = v.last_tick.map_or(0.0, |t| (now - t).as_secs_f32());
            let step = (dt * cx.settings.play_fps).floor() as usize;
            if step > 0 || v.last_tick.is_none() {
                v.last_tick = Some(now);
            }
            v.frame = (v.frame + step).min(frames_len - 1);
            if v.frame + 1 == frames_len {
                v.playing = false;
            }
            ui.ctx().request_repaint();
        }
        let ts: Vec<usize> = source(self, cx.session)
            .expect("checked above")
            .0
            .frames
            .iter()
            .map(|f| f.t)
            .collect();
        let t = ts[self.frame];
        ui.horizontal_wrapped(|ui| {
            let label = if self.playing { "Pause" } else { "Play" };
            if ui.button(label).clicked() {
                let v = &mut *self;
                v.playing = !v.playing;
                v.last_tick = None;
                if v.playing && v.frame + 1 == frames_len {
                    v.frame = 0;
                }
            }
            ui.add(
                egui::DragValue::new(&mut cx.settings.play_fps)
                    .range(1.0..=240.0)
                    .suffix(" frames/s"),
            )
            .on_hover_text("playback speed");
            let frames = ts.clone();
            let slider = egui::Slider::new(&mut self.frame, 0..=frames_len - 1)
                .show_value(false)
                .text("timestep")
                .custom_formatter(move |v, _| {
                    frames[(v as usize).min(frames.len() - 1)].to_string()
                });
            if ui.add_sized([360.0, 18.0], slider).changed() {
                self.playing = false;
            }
            ui.strong(format!("t = {t}"));
            ui.weak(format!("frame {}/{frames_len} · {origin}", self.frame + 1));
        });
        ui.horizontal(|ui| {
        if ui.button("Export GIF").clicked() {
            self.export_gif(cx);
        }
        if ui.button("Export PNG").clicked() {
            let d = source(self, cx.session).expect("checked above").0;
            let img = crate::export::grid(&pairs(d, self.frame), SIDE, 2 * PER_ROW.min(d.n), 2, 4);
            let stem = format!("denoising-t{t}");
            cx.act(Action::Export(ExportRequest {
                stem,
                ext: "png",
                payload: Payload::Png(img),
            }));
        }
        ui.weak("Left/Right arrow keys step one timestep · each pair: decoded x_t | decoded predicted x0");
    });
        ui.separator();
        let ctx = ui.ctx().clone();
        let frame = self.frame;
        let d = source(self, cx.session).expect("checked above").0.clone();
        let cols = 2 * PER_ROW.min(n);
        let tex = cx
            .textures
            .get(&ctx, "denoise-frame", version << 16 ^ frame as u64, || {
                super::widgets::grid(&pairs(&d, frame), cols)
            });
        let zoom = fit_zoom(tex.size_vec2(), ui.available_size(), 8.0);
        egui::ScrollArea::both().auto_shrink(false).show(ui, |ui| {
            show_tex(ui, tex, zoom).on_hover_text(format!(
                "timestep {t}: x_t (left) and predicted x0 (right) of each sample"
            ));
        });
    }

    fn export_gif(&self, cx: &mut PanelCtx<'_>) {
        let Some((d, _)) = source(self, cx.session) else {
            return;
        };
        let len = d.frames.len();
        let stride = len.div_ceil(GIF_FRAMES).max(1);
        let mut keep: Vec<usize> = (0..len).step_by(stride).collect();
        if keep.last() != Some(&(len - 1)) {
            keep.push(len - 1);
        }
        let cols = 2 * PER_ROW.min(d.n);
        let frames = keep
            .iter()
            .map(|&i| crate::export::grid(&pairs(d, i), SIDE, cols, 2, 3))
            .collect();
        cx.act(Action::Export(ExportRequest {
            stem: "denoising".into(),
            ext: "gif",
            payload: Payload::Gif {
                frames,
                delay_ms: 60,
            },
        }));
    }
}

/// The frames on show: the user's generation, else the trainer's preview.
fn source<'a>(view: &'a DenoiseView, session: &'a Session) -> Option<(&'a Denoising, u64)> {
    match (&view.generated, &session.preview) {
        (Some(d), _) => Some((d, view.version)),
        (None, Some(p)) => Some((
            p,
            1 << 40 | session.generation << 20 | p.frames.len() as u64,
        )),
        _ => None,
    }
}

/// Interleave x_t and predicted x0 per sample: [x_t(0), predicted x0(0), x_t(1), predicted x0(1), …].
pub fn pairs(d: &Denoising, frame: usize) -> Vec<f32> {
    let f = &d.frames[frame];
    let px = crate::pipeline::PIXELS;
    let mut out = Vec::with_capacity(2 * d.n * px);
    for i in 0..d.n {
        out.extend_from_slice(&f.x_t[i * px..(i + 1) * px]);
        out.extend_from_slice(&f.x0_pred[i * px..(i + 1) * px]);
    }
    out
}
