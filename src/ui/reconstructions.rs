//! Panel 3: test originals above their reconstructions with per-image and
//! mean SSIM / PSNR, refreshed each epoch, with a slider back through epochs.

use super::export::{ExportRequest, Payload};
use super::panel::{Action, PanelCtx};
use super::widgets::{count, image_at, show as show_tex, single};

#[derive(Default)]
pub struct ReconView {
    /// Index into the session's history; None follows the latest epoch.
    pub pick: Option<usize>,
}

const COLS: usize = 8;

impl ReconView {
    pub fn show(&mut self, cx: &mut PanelCtx<'_>, ui: &mut egui::Ui) {
        if let Some(point) = cx.history.cloned() {
            point.banner(cx, ui);
            ui.label("test images above their reconstructions");
            let width = ui.available_width().min(900.0);
            super::run_history::show_media(cx, ui, point.recon.as_ref(), width);
            return;
        }
        let history = cx.session.recons.len();
        if history == 0 {
            ui.weak("Reconstructions of test images appear after each autoencoder epoch.");
            return;
        }
        let mut idx = self.pick.unwrap_or(history - 1).min(history - 1);
        ui.horizontal_wrapped(|ui| {
            if history > 1 {
                let r = ui.add(
                    egui::Slider::new(&mut idx, 0..=history - 1)
                        .text("epoch")
                        .custom_formatter(|v, _| format!("{}", v as usize + 1)),
                );
                if r.changed() {
                    self.pick = (idx + 1 < history).then_some(idx);
                }
                if self.pick.is_some() && ui.button("Follow latest").clicked() {
                    self.pick = None;
                    idx = history - 1;
                }
            }
            let e = &cx.session.recons[idx];
            ui.label(format!(
                "epoch {} · mean over {} test images: SSIM {:.4} · PSNR {:.2} dB · SSIM (Gaussian) {:.4}",
                e.epoch, e.mean.images, e.mean.ssim, e.mean.psnr, e.mean.ssim_gaussian
            ));
            if ui.button("Export PNG").clicked() {
                let images = [e.originals.clone(), e.reconstructions.clone()].concat();
                let n = count(&e.originals).max(1);
                let grid = crate::export::grid(&images, crate::pipeline::SIDE, n, 2, 4);
                let stem = format!("reconstructions-epoch{}", e.epoch);
                cx.act(Action::Export(ExportRequest {
                    stem,
                    ext: "png",
                    payload: Payload::Png(grid),
                }));
            }
        });
        ui.separator();
        let e = cx.session.recons[idx].clone();
        let n = count(&e.originals);
        let zoom = ((ui.available_width() / COLS as f32 - 12.0) / 28.0)
            .floor()
            .clamp(1.0, 4.0);
        let ctx = ui.ctx().clone();
        egui::ScrollArea::vertical()
            .auto_shrink(false)
            .show(ui, |ui| {
                for block in 0..n.div_ceil(COLS) {
                    let range = block * COLS..((block + 1) * COLS).min(n);
                    egui::Grid::new(("recon", block))
                        .spacing([6.0, 2.0])
                        .show(ui, |ui| {
                            for (row, images) in [
                                ("original", &e.originals),
                                ("reconstruction", &e.reconstructions),
                            ] {
                                for i in range.clone() {
                                    let key = format!("recon-{row}-{i}");
                                    let version = (cx.session.generation << 20) ^ (idx as u64);
                                    let tex = cx
                                        .textures
                                        .get(&ctx, &key, version, || single(image_at(images, i)));
                                    show_tex(ui, tex, zoom)
                                        .on_hover_text(format!("test image {i} ({row})"));
                                }
                                ui.end_row();
                            }
                            for i in range.clone() {
                                let m = e.metrics[i];
                                ui.small(format!(
                                    "SSIM {:.3}\nPSNR {:.1}",
                                    m.ssim,
                                    m.psnr.min(99.9)
                                ));
                            }
                            ui.end_row();
                        });
                    ui.add_space(8.0);
                }
            });
    }
}
