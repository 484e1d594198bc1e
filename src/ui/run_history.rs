//! One slider through a run's whole training: the reconstructions of each
//! autoencoder epoch, then the samples of each diffusion epoch. Once moved,
//! it also sets the point the Reconstructions, Latent space and Samples
//! panels show, until they go back to the live run.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use egui::vec2;

use super::panel::{Action, PanelCtx};
use super::run_compare::texture;
use crate::run::{Media, MediaKind, RunSummary};

/// Time per history step while playing.
const PLAY_STEP: Duration = Duration::from_millis(400);

/// A point in one run's history, which the image panels show instead of
/// the live run.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPoint {
    pub run: String,
    pub dir: PathBuf,
    /// "autoencoder epoch 3", "diffusion epoch 2".
    pub label: String,
    /// The run's media as of this point (None: not reached yet).
    pub recon: Option<Media>,
    pub latents: Option<Media>,
    pub samples: Option<Media>,
}

impl HistoryPoint {
    /// `run` as of history index `pos` (see `RunSummary::history`).
    pub fn of(run: &RunSummary, pos: usize) -> Option<Self> {
        let history = run.history();
        let at = *history.get(pos)?;
        let ae_epoch = match at.kind {
            MediaKind::Reconstructions => at.epoch,
            _ => usize::MAX,
        };
        let label = match at.kind {
            MediaKind::Reconstructions => format!("autoencoder epoch {}", at.epoch),
            _ => format!("diffusion epoch {}", at.epoch),
        };
        Some(Self {
            run: run.name.clone(),
            dir: run.dir.clone(),
            label,
            recon: run.media_at(MediaKind::Reconstructions, ae_epoch).cloned(),
            latents: run.media_at(MediaKind::LatentMap, ae_epoch).cloned(),
            samples: (at.kind == MediaKind::Samples).then(|| at.clone()),
        })
    }

    /// The banner an image panel shows above a history point.
    pub fn banner(&self, cx: &mut PanelCtx<'_>, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            ui.strong(format!("History of {} at {}", self.run, self.label));
            ui.weak("(the Runs panel's slider)");
            if ui.button("Back to live").clicked() {
                cx.act(Action::ShowHistory(None));
            }
        });
        ui.separator();
    }
}

#[derive(Default)]
pub struct HistoryView {
    /// The run whose history the slider walks, and where it is.
    pub run: Option<PathBuf>,
    pub pos: usize,
    pub playing: Option<Instant>,
    /// The point last handed to the image panels.
    shown: Option<HistoryPoint>,
}

impl HistoryView {
    pub fn show(&mut self, cx: &mut PanelCtx<'_>, ui: &mut egui::Ui, runs: &[&RunSummary]) {
        if !self
            .run
            .as_ref()
            .is_some_and(|d| runs.iter().any(|r| &r.dir == d))
        {
            self.run = Some(runs[0].dir.clone());
            self.pos = usize::MAX;
        }
        let run = runs
            .iter()
            .find(|r| Some(&r.dir) == self.run.as_ref())
            .unwrap_or(&runs[0]);
        egui::ComboBox::new("history-run", "history of this run")
            .selected_text(&run.name)
            .show_ui(ui, |ui| {
                for r in runs {
                    ui.selectable_value(&mut self.run, Some(r.dir.clone()), &r.name);
                }
            });
        let n = run.history().len();
        if n == 0 {
            ui.weak("This run has no pictures yet: it keeps one per epoch as it trains.");
            return;
        }
        self.pos = self.pos.min(n - 1);
        let before = self.pos;
        self.step(ui, n);
        let Some(point) = HistoryPoint::of(run, self.pos) else {
            return;
        };
        let moved = self.pos != before;
        ui.horizontal(|ui| {
            let play = if self.playing.is_some() {
                "Pause"
            } else {
                "Play"
            };
            if ui.button(play).clicked() {
                self.playing = match self.playing {
                    Some(_) => None,
                    None => Some(Instant::now()),
                };
            }
            let mut pos = self.pos;
            let label = format!("{} ({} of {n})", point.label, self.pos + 1);
            ui.add(
                egui::Slider::new(&mut pos, 0..=n - 1)
                    .show_value(false)
                    .text(label),
            )
            .on_hover_text("Left/Right keys step through the epochs");
            self.pos = pos;
        });
        // Once the slider moves, the image panels follow it.
        if (moved || self.pos != before || self.playing.is_some())
            && self.shown.as_ref() != Some(&point)
        {
            self.shown = Some(point.clone());
            cx.act(Action::ShowHistory(Some(point.clone())));
        }
        pictures(cx, ui, &point);
    }

    /// Play and the Left/Right keys.
    fn step(&mut self, ui: &egui::Ui, n: usize) {
        if let Some(t) = self.playing {
            if t.elapsed() >= PLAY_STEP {
                self.pos = (self.pos + 1) % n;
                self.playing = Some(Instant::now());
            }
            ui.ctx().request_repaint_after(PLAY_STEP);
        }
        if !ui.ctx().egui_wants_keyboard_input() {
            ui.input(|i| {
                if i.key_pressed(egui::Key::ArrowRight) {
                    self.pos = (self.pos + 1).min(n - 1);
                }
                if i.key_pressed(egui::Key::ArrowLeft) {
                    self.pos = self.pos.saturating_sub(1);
                }
            });
        }
    }
}

/// The reconstructions and samples of a history point, side by side.
fn pictures(cx: &mut PanelCtx<'_>, ui: &mut egui::Ui, point: &HistoryPoint) {
    ui.horizontal_top(|ui| {
        for (title, media) in [
            ("reconstructions", &point.recon),
            ("samples", &point.samples),
        ] {
            ui.vertical(|ui| {
                ui.label(title);
                show_media(cx, ui, media.as_ref(), 300.0);
            });
        }
    });
}

/// A history picture at `width` points wide, or why there is none.
pub fn show_media(cx: &mut PanelCtx<'_>, ui: &mut egui::Ui, media: Option<&Media>, width: f32) {
    let Some(media) = media else {
        ui.allocate_ui(vec2(width, 40.0), |ui| {
            ui.weak("not yet: the diffusion stage has not reached this point")
        });
        return;
    };
    match texture(cx, ui.ctx(), &media.path) {
        Some(tex) => {
            let size = tex.size_vec2();
            ui.add(egui::Image::new((
                tex.id(),
                size * (width / size.x).min(3.0),
            )));
        }
        None => {
            super::widgets::problem(ui, format!("cannot read {}", media.path.display()));
        }
    }
}
