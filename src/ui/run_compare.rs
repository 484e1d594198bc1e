//! Below the Runs table: the selected runs side by side (latest sample
//! grids, scores, note, rename, delete), the config values that differ
//! among them, a two-image compare (swipe or toggle) and one slider
//! through a run's whole history.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use egui::{Color32, Rect, Sense, TextureHandle, pos2};
use image::GrayImage;

use super::export::{ExportRequest, Payload};
use super::panel::{Action, PanelCtx};
use super::run_history::HistoryView;
use super::runs::{change, select};
use super::work::RunChange;
use crate::run::summary::differing_keys;
use crate::run::{Media, MediaKind, RunSummary};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One frame: A left of a draggable divider, B right of it.
    Swipe,
    /// One image at a time; a button (or Space) flips between them.
    Toggle,
}

pub struct CompareView {
    pub kind: MediaKind,
    pub mode: Mode,
    /// Where the divider sits, 0 (all B) to 1 (all A).
    pub split: f32,
    pub show_b: bool,
    /// The two pictures compared, by path.
    pub a: Option<PathBuf>,
    pub b: Option<PathBuf>,
    /// Each card's note: (as last read from disk, as edited here).
    notes: HashMap<PathBuf, (String, String)>,
    names: HashMap<PathBuf, String>,
    pub confirm_delete: Option<PathBuf>,
    pub history: HistoryView,
}

impl Default for CompareView {
    fn default() -> Self {
        Self {
            kind: MediaKind::Samples,
            mode: Mode::Swipe,
            split: 0.5,
            show_b: false,
            a: None,
            b: None,
            notes: HashMap::new(),
            names: HashMap::new(),
            confirm_delete: None,
            history: HistoryView::default(),
        }
    }
}

/// A PNG from a run's media as a texture, decoded once per file version
/// (a stat per frame, no decoding).
pub fn texture(cx: &mut PanelCtx<'_>, ctx: &egui::Context, path: &Path) -> Option<TextureHandle> {
    let version = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let key = path.display().to_string();
    cx.textures
        .get_or_try(ctx, &key, version, || {
            let img = load_gray(path)?;
            Some(egui::ColorImage::from_gray(
                [img.width() as usize, img.height() as usize],
                img.as_raw(),
            ))
        })
        .cloned()
}

fn load_gray(path: &Path) -> Option<GrayImage> {
    image::open(path).ok().map(|i| i.to_luma8())
}

/// The two images in one: A left of `split`, B right of it, a white
/// divider between (swipe); or side by side (toggle).
pub fn composite(a: &GrayImage, b: &GrayImage, mode: Mode, split: f32) -> GrayImage {
    let (w, h) = (a.width().max(b.width()), a.height().max(b.height()));
    let px = |img: &GrayImage, x: u32, y: u32| {
        if x < img.width() && y < img.height() {
            img.get_pixel(x, y).0[0]
        } else {
            0
        }
    };
    match mode {
        Mode::Swipe => {
            let cut = (split.clamp(0.0, 1.0) * w as f32).round() as u32;
            GrayImage::from_fn(w, h, |x, y| {
                let v = if x == cut.min(w - 1) {
                    255
                } else if x < cut {
                    px(a, x, y)
                } else {
                    px(b, x, y)
                };
                image::Luma([v])
            })
        }
        Mode::Toggle => {
            const GAP: u32 = 4;
            GrayImage::from_fn(w * 2 + GAP, h, |x, y| {
                let v = if x < w {
                    px(a, x, y)
                } else if x >= w + GAP {
                    px(b, x - w - GAP, y)
                } else {
                    255
                };
                image::Luma([v])
            })
        }
    }
}

fn media_label(run: &RunSummary, m: &Media) -> String {
    let what = match m.kind {
        MediaKind::Reconstructions => "reconstructions",
        MediaKind::Samples => "samples",
        MediaKind::LatentMap => "latent map",
    };
    format!("{} · {what} epoch {}", run.name, m.epoch)
}

impl CompareView {
    pub fn show(&mut self, cx: &mut PanelCtx<'_>, ui: &mut egui::Ui, selected: &[&RunSummary]) {
        if selected.is_empty() {
            ui.weak(
                "Select runs with the boxes in the table: their loss curves overlay in the Loss \
                 panel, and they are compared here side by side.",
            );
            return;
        }
        ui.strong(format!("{} selected", selected.len()));
        // Wrapped, not in a scroll area of their own: egui loses pointer
        // clicks in a scroll area nested in another.
        ui.horizontal_wrapped(|ui| {
            for run in selected {
                ui.push_id(&run.dir, |ui| self.card(cx, ui, run));
            }
        });
        self.delete_prompt(cx, ui.ctx(), selected);
        if selected.len() >= 2 {
            ui.separator();
            config_diff(ui, selected);
        }
        ui.separator();
        self.compare(cx, ui, selected);
        ui.separator();
        self.history.show(cx, ui, selected);
    }

    /// One selected run: its latest samples, scores, note and actions.
    fn card(&mut self, cx: &mut PanelCtx<'_>, ui: &mut egui::Ui, run: &RunSummary) {
        ui.group(|ui| {
            ui.set_width(260.0);
            ui.vertical(|ui| {
                ui.horizontal(|ui| {
                    ui.strong(&run.name);
                    if ui.small_button("x").on_hover_text("Unselect").clicked() {
                        select(cx, &run.dir, false);
                    }
                });
                ui.label(format!(
                    "{} · {}",
                    run.status,
                    run.dataset.as_deref().unwrap_or("?")
                ));
                match &run.scores {
                    Some(s) => {
                        ui.label(format!("PSNR {:.2} dB · SSIM {:.4}", s.psnr, s.ssim));
                        if let (Some(f), Some(c)) = (s.cfid, s.confidence) {
                            ui.label(format!("cFID {f:.2} · confidence {c:.3}"));
                        }
                    }
                    None => {
                        ui.weak("no final scores yet");
                    }
                }
                match run.media_at(MediaKind::Samples, usize::MAX) {
                    Some(m) => {
                        if let Some(tex) = texture(cx, ui.ctx(), &m.path) {
                            let size = tex.size_vec2();
                            let zoom = (240.0 / size.x).min(2.0);
                            ui.add(egui::Image::new((tex.id(), size * zoom)))
                                .on_hover_text(media_label(run, m));
                        }
                        ui.weak(format!(
                            "samples after diffusion epoch {} (seed {})",
                            m.epoch,
                            crate::train::diffusion_stage::PREVIEW_SEED
                        ));
                    }
                    None => {
                        ui.weak("no samples yet (the diffusion stage keeps one grid per epoch)");
                    }
                }
                self.manage(cx, ui, run);
            });
        });
    }

    fn manage(&mut self, cx: &mut PanelCtx<'_>, ui: &mut egui::Ui, run: &RunSummary) {
        let (seen, note) = self
            .notes
            .entry(run.dir.clone())
            .or_insert_with(|| (run.note.clone(), run.note.clone()));
        // The note changed on disk (another window, a hand edit): show it,
        // unless there are unsaved edits here.
        if *seen != run.note {
            if note == seen {
                *note = run.note.clone();
            }
            *seen = run.note.clone();
        }
        ui.add(
            egui::TextEdit::multiline(note)
                .hint_text("a note about this run")
                .desired_rows(2)
                .desired_width(240.0),
        );
        if *note != run.note && ui.button("Save note").clicked() {
            change(cx, run.dir.clone(), RunChange::Note(note.clone()));
        }
        let training = run.training();
        ui.horizontal(|ui| {
            let name = self
                .names
                .entry(run.dir.clone())
                .or_insert_with(|| run.name.clone());
            ui.add(egui::TextEdit::singleline(name).desired_width(150.0))
                .accessible_name(format!("new name for {}", run.name));
            let rename =
                ui.add_enabled(!training && *name != run.name, egui::Button::new("Rename"));
            if rename.clicked() {
                change(cx, run.dir.clone(), RunChange::Rename(name.clone()));
            }
        });
        let delete = ui
            .add_enabled(!training, egui::Button::new("Delete run…"))
            .on_disabled_hover_text("It is training: stop it first");
        if delete.clicked() {
            self.confirm_delete = Some(run.dir.clone());
        }
    }

    fn delete_prompt(&mut self, cx: &mut PanelCtx<'_>, ctx: &egui::Context, runs: &[&RunSummary]) {
        let Some(dir) = self.confirm_delete.clone() else {
            return;
        };
        let Some(run) = runs.iter().find(|r| r.dir == dir) else {
            self.confirm_delete = None;
            return;
        };
        let question = format!(
            "Delete the run {} and everything in it (checkpoints, logs, pictures)? This cannot \
             be undone.",
            run.name
        );
        match super::widgets::confirm(ctx, "delete-run", &question, "Delete", "Keep it") {
            Some(true) => {
                self.confirm_delete = None;
                change(cx, dir, RunChange::Delete);
            }
            Some(false) => self.confirm_delete = None,
            None => {}
        }
    }

    /// Pictures of `self.kind` among the selected runs, as choices.
    fn candidates<'r>(&self, runs: &[&'r RunSummary]) -> Vec<(&'r RunSummary, &'r Media)> {
        runs.iter()
            .flat_map(|&r| r.media.iter().map(move |m| (r, m)))
            .filter(|(_, m)| m.kind == self.kind)
            .collect()
    }

    fn compare(&mut self, cx: &mut PanelCtx<'_>, ui: &mut egui::Ui, runs: &[&RunSummary]) {
        ui.horizontal_wrapped(|ui| {
            ui.strong("Compare");
            ui.selectable_value(&mut self.kind, MediaKind::Samples, "samples");
            ui.selectable_value(
                &mut self.kind,
                MediaKind::Reconstructions,
                "reconstructions",
            );
            ui.separator();
            ui.selectable_value(&mut self.mode, Mode::Swipe, "swipe");
            ui.selectable_value(&mut self.mode, Mode::Toggle, "toggle");
        });
        let choices = self.candidates(runs);
        if choices.is_empty() {
            ui.weak("The selected runs have no pictures of this kind yet.");
            return;
        }
        let valid = |p: &Option<PathBuf>| {
            p.as_ref()
                .is_some_and(|p| choices.iter().any(|(_, m)| &m.path == p))
        };
        // Two runs: each one's latest; one run: its first and latest epoch.
        if !valid(&self.a) || !valid(&self.b) {
            let latest = |r: &RunSummary| r.media_at(self.kind, usize::MAX).map(|m| m.path.clone());
            if runs.len() >= 2 {
                self.a = latest(runs[0]);
                self.b = latest(runs[1]);
            } else {
                self.a = choices.first().map(|(_, m)| m.path.clone());
                self.b = choices.last().map(|(_, m)| m.path.clone());
            }
        }
        ui.horizontal_wrapped(|ui| {
            for (side, pick) in [("A", &mut self.a), ("B", &mut self.b)] {
                let current = choices
                    .iter()
                    .find(|(_, m)| Some(&m.path) == pick.as_ref())
                    .map(|(r, m)| media_label(r, m))
                    .unwrap_or_default();
                egui::ComboBox::from_label(side)
                    .selected_text(current)
                    .width(260.0)
                    .show_ui(ui, |ui| {
                        for (r, m) in &choices {
                            ui.selectable_value(pick, Some(m.path.clone()), media_label(r, m));
                        }
                    });
            }
        });
        let (Some(pa), Some(pb)) = (self.a.clone(), self.b.clone()) else {
            return;
        };
        let (Some(ta), Some(tb)) = (texture(cx, ui.ctx(), &pa), texture(cx, ui.ctx(), &pb)) else {
            super::widgets::problem(ui, "cannot read one of the two pictures");
            return;
        };
        ui.horizontal(|ui| {
            match self.mode {
                Mode::Swipe => {
                    ui.add(egui::Slider::new(&mut self.split, 0.0..=1.0).text("divider"));
                }
                Mode::Toggle => {
                    let label = if self.show_b {
                        "showing B"
                    } else {
                        "showing A"
                    };
                    if ui.button(label).on_hover_text("Flip (Space)").clicked() {
                        self.show_b = !self.show_b;
                    }
                    if !ui.ctx().egui_wants_keyboard_input()
                        && ui.input(|i| i.key_pressed(egui::Key::Space))
                    {
                        self.show_b = !self.show_b;
                    }
                }
            }
            if ui.button("Export PNG").clicked()
                && let (Some(a), Some(b)) = (load_gray(&pa), load_gray(&pb))
            {
                cx.act(Action::Export(ExportRequest {
                    stem: "comparison".into(),
                    ext: "png",
                    payload: Payload::Png(composite(&a, &b, self.mode, self.split)),
                }));
            }
        });
        let size = ta.size_vec2();
        let zoom = ((ui.available_width() - 8.0) / size.x).clamp(1.0, 3.0);
        let (rect, resp) = ui.allocate_exact_size(size * zoom, Sense::click_and_drag());
        let full = Rect::from_min_max(pos2(0.0, 0.0), pos2(1.0, 1.0));
        match self.mode {
            Mode::Swipe => {
                if let Some(p) = resp.interact_pointer_pos() {
                    self.split = ((p.x - rect.left()) / rect.width()).clamp(0.0, 1.0);
                }
                let cut = rect.left() + self.split * rect.width();
                let painter = ui.painter_at(rect);
                painter.image(ta.id(), rect, full, Color32::WHITE);
                let right = Rect::from_min_max(pos2(cut, rect.top()), rect.max);
                painter
                    .with_clip_rect(right)
                    .image(tb.id(), rect, full, Color32::WHITE);
                painter.vline(cut, rect.y_range(), egui::Stroke::new(2.0, Color32::WHITE));
            }
            Mode::Toggle => {
                let tex = if self.show_b { &tb } else { &ta };
                ui.painter().image(tex.id(), rect, full, Color32::WHITE);
            }
        }
    }
}

/// The config values that differ among the selected runs, one row per key.
fn config_diff(ui: &mut egui::Ui, runs: &[&RunSummary]) {
    let keys = differing_keys(runs.iter().copied());
    ui.strong("What differs");
    if keys.is_empty() {
        ui.weak("The selected runs share every config value.");
        return;
    }
    egui::Grid::new("config-diff").striped(true).show(ui, |ui| {
        ui.strong("key");
        for r in runs {
            ui.strong(&r.name);
        }
        ui.end_row();
        for k in &keys {
            ui.monospace(k);
            for r in runs {
                ui.monospace(r.values.get(k).map_or("—", String::as_str));
            }
            ui.end_row();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_swipe_takes_a_left_of_the_divider_and_b_right_of_it() {
        let a = GrayImage::from_pixel(10, 4, image::Luma([10]));
        let b = GrayImage::from_pixel(10, 4, image::Luma([200]));
        let swipe = composite(&a, &b, Mode::Swipe, 0.3);
        assert_eq!(swipe.dimensions(), (10, 4));
        let row: Vec<u8> = (0..10).map(|x| swipe.get_pixel(x, 2).0[0]).collect();
        assert_eq!(row, [10, 10, 10, 255, 200, 200, 200, 200, 200, 200]);
        // Toggle exports both, side by side with a white gap.
        let both = composite(&a, &b, Mode::Toggle, 0.3);
        assert_eq!(both.dimensions(), (24, 4));
        assert_eq!(
            [0, 10, 12, 14, 23].map(|x| both.get_pixel(x, 0).0[0]),
            [10, 255, 255, 200, 200]
        );
        // Different sizes: the larger frame, black where a picture ends.
        let small = GrayImage::from_pixel(4, 2, image::Luma([50]));
        let mixed = composite(&small, &b, Mode::Swipe, 1.0);
        assert_eq!(mixed.dimensions(), (10, 4));
        assert_eq!(mixed.get_pixel(1, 3).0[0], 0);
        assert_eq!(mixed.get_pixel(1, 1).0[0], 50);
    }
}
