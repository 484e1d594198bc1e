//! Image helpers: 28×28 float images to textures, cached by key and version
//! so a texture is built once per change, never per frame.

use std::collections::HashMap;

use egui::{Color32, ColorImage, TextureHandle, TextureOptions, Vec2};

use crate::pipeline::{PIXELS, SIDE};

/// Textures keyed by name; rebuilt only when the version changes.
#[derive(Default)]
pub struct TexCache {
    map: HashMap<String, (u64, TextureHandle)>,
}

impl TexCache {
    pub fn get(
        &mut self,
        ctx: &egui::Context,
        key: &str,
        version: u64,
        make: impl FnOnce() -> ColorImage,
    ) -> &TextureHandle {
        let fresh = self.map.get(key).is_none_or(|(v, _)| *v != version);
        if fresh {
            let tex = ctx.load_texture(key, make(), TextureOptions::NEAREST);
            self.map.insert(key.to_string(), (version, tex));
        }
        &self.map[key].1
    }

    /// Like `get`, for pictures that may fail to make (a file read): `make`
    /// runs only when the texture is missing or stale.
    pub fn get_or_try(
        &mut self,
        ctx: &egui::Context,
        key: &str,
        version: u64,
        make: impl FnOnce() -> Option<ColorImage>,
    ) -> Option<&TextureHandle> {
        if self.map.get(key).is_none_or(|(v, _)| *v != version) {
            let tex = ctx.load_texture(key, make()?, TextureOptions::NEAREST);
            self.map.insert(key.to_string(), (version, tex));
        }
        self.map.get(key).map(|(_, t)| t)
    }

    /// Whether a texture named `key` was ever made (what tests look at).
    pub fn contains(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    pub fn clear(&mut self) {
        self.map.clear();
    }
}

pub fn to_byte(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// One 28×28 image.
pub fn single(pixels: &[f32]) -> ColorImage {
    ColorImage::from_gray_iter([SIDE, SIDE], pixels.iter().map(|&v| to_byte(v)))
}

/// Images (concatenated) tiled `cols` per row with a 1-pixel border.
pub fn grid(images: &[f32], cols: usize) -> ColorImage {
    let g = crate::export::grid(images, SIDE, cols, 1, 1);
    ColorImage::from_gray([g.width() as usize, g.height() as usize], g.as_raw())
}

/// Number of whole images in a concatenated buffer.
pub fn count(images: &[f32]) -> usize {
    images.len() / PIXELS
}

pub fn image_at(images: &[f32], i: usize) -> &[f32] {
    &images[i * PIXELS..(i + 1) * PIXELS]
}

/// Show a texture at an integer zoom of its own size.
pub fn show(ui: &mut egui::Ui, tex: &TextureHandle, zoom: f32) -> egui::Response {
    let size = tex.size_vec2() * zoom;
    ui.add(egui::Image::new((tex.id(), size)).sense(egui::Sense::click()))
}

/// The largest integer zoom at which `size` fits `avail`, between 1 and `max`.
pub fn fit_zoom(size: Vec2, avail: Vec2, max: f32) -> f32 {
    let z = (avail.x / size.x).min(avail.y / size.y).floor();
    z.clamp(1.0, max)
}

/// Ten distinct colours for digit labels (Tableau 10).
pub const LABEL_COLORS: [Color32; 10] = [
    Color32::from_rgb(31, 119, 180),
    Color32::from_rgb(255, 127, 14),
    Color32::from_rgb(44, 160, 44),
    Color32::from_rgb(214, 39, 40),
    Color32::from_rgb(148, 103, 189),
    Color32::from_rgb(140, 86, 75),
    Color32::from_rgb(227, 119, 194),
    Color32::from_rgb(127, 127, 127),
    Color32::from_rgb(188, 189, 34),
    Color32::from_rgb(23, 190, 207),
];

/// A side or top panel frame without a fill: the window is cleared to the
/// panel colour, and each full-size fill costs frame time under software GL.
pub fn bare_panel(ui: &egui::Ui) -> egui::Frame {
    egui::Frame::side_top_panel(ui.style()).fill(Color32::TRANSPARENT)
}

/// A red message line, used next to fields and buttons.
pub fn problem(ui: &mut egui::Ui, text: impl Into<String>) -> egui::Response {
    ui.colored_label(ui.visuals().error_fg_color, text.into())
}

/// A yellow note line.
pub fn note(ui: &mut egui::Ui, text: impl Into<String>) -> egui::Response {
    ui.colored_label(ui.visuals().warn_fg_color, text.into())
}

/// A modal question with two answers: Some(true) for `yes`, Some(false) for
/// `no`, None while it is unanswered.
pub fn confirm(ctx: &egui::Context, id: &str, question: &str, yes: &str, no: &str) -> Option<bool> {
    let mut choice = None;
    egui::Modal::new(egui::Id::unique(id)).show(ctx, |ui| {
        ui.label(question);
        ui.horizontal(|ui| {
            if ui.button(yes).clicked() {
                choice = Some(true);
            }
            if ui.button(no).clicked() {
                choice = Some(false);
            }
        });
    });
    choice
}

/// Cancel and progress of a panel's running sampling job, while it runs.
pub fn job_controls(
    ui: &mut egui::Ui,
    busy: &mut bool,
    cancel: &mut Option<super::jobs::CancelFlag>,
    progress: Option<(usize, usize)>,
) {
    if !*busy {
        return;
    }
    if ui.button("Cancel").clicked() {
        if let Some(c) = cancel.take() {
            c.cancel();
        }
        *busy = false;
    }
    if let Some((done, total)) = progress {
        ui.add(egui::ProgressBar::new(done as f32 / total.max(1) as f32).desired_width(160.0));
    }
}
