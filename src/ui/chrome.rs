//! The window's frame around the panels: tabs, messages, the overwrite
//! question, and closing while training.

use egui::ViewportCommand;

use super::app::App;
use super::experiment::progress_text;
use super::settings::Tab;
use super::widgets::note;
use crate::train::Command;

impl App {
    pub(super) fn top_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            ui.strong("latentlab");
            ui.separator();
            for tab in Tab::ALL {
                ui.selectable_value(&mut self.settings.tab, tab, tab.title());
            }
            ui.separator();
            self.compact_progress(ui);
        });
    }

    pub(super) fn messages(&mut self, ui: &mut egui::Ui) {
        let mut dismiss = None;
        for (i, m) in self.messages.iter().enumerate() {
            ui.horizontal(|ui| {
                if ui.small_button("x").on_hover_text("Dismiss").clicked() {
                    dismiss = Some(i);
                }
                if m.error {
                    super::widgets::problem(ui, &m.text);
                } else {
                    ui.label(&m.text);
                }
            });
        }
        if let Some(i) = dismiss {
            self.messages.remove(i);
        }
    }

    pub(super) fn overwrite_prompt(&mut self, ctx: &egui::Context) {
        let Some((path, _)) = &self.overwrite else {
            return;
        };
        let text = format!("{} already exists. Replace it?", path.display());
        match super::widgets::confirm(ctx, "overwrite", &text, "Replace", "Keep the existing file")
        {
            Some(true) => {
                if let Some((path, bytes)) = self.overwrite.take() {
                    super::export::overwrite(&self.jobs, path, bytes);
                }
            }
            Some(false) => {
                self.overwrite = None;
                self.info("Export cancelled; the existing file was kept");
            }
            None => {}
        }
    }

    /// Closing while training: stop (which saves a checkpoint) and close
    /// once the worker confirms.
    pub(super) fn handle_close(&mut self, ctx: &egui::Context) {
        if !ctx.input(|i| i.viewport().close_requested()) {
            return;
        }
        if self.worker.is_some() {
            ctx.send_viewport_cmd(ViewportCommand::CancelClose);
            if !self.closing {
                self.closing = true;
                self.command(Command::Stop);
                self.info("Saving a checkpoint before closing…");
            }
        }
    }

    /// Progress in the top bar, visible from every panel.
    pub(super) fn compact_progress(&self, ui: &mut egui::Ui) {
        if let Some((frac, text)) = progress_text(&self.session)
            && self.training()
        {
            ui.add(egui::ProgressBar::new(frac).desired_width(420.0).text(text));
        }
    }

    pub(super) fn status_line(&self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.label(&self.session.status);
            // On the Experiment panel the Dataset line says it already.
            if self.session.dataset.contains("offline MNIST subset")
                && self.settings.tab != Tab::Experiment
            {
                ui.separator();
                note(ui, "offline MNIST subset in use");
            }
            if self.jobs.busy() > 0 {
                ui.separator();
                ui.spinner();
                ui.weak(format!("{} background job(s)", self.jobs.busy()));
            }
        });
    }
}
