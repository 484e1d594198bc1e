//! The class picker and guidance slider of a class-conditional run, shared
//! by the Samples and Denoising panels.

use serde::{Deserialize, Serialize};

use super::panel::PanelCtx;
use crate::config::SamplingConfig;

/// Which classes a panel asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClassPick {
    /// No class: unconditional samples.
    #[default]
    Any,
    One(usize),
    /// `n` of every class, one grid row per class.
    EachRow,
}

impl ClassPick {
    /// (images, the class of each, columns of the grid) for `n` per pick.
    pub fn classes(self, n: usize, classes: usize) -> (usize, Option<Vec<usize>>, Option<usize>) {
        match self {
            _ if classes == 0 => (n, None, None),
            ClassPick::Any => (n, None, None),
            ClassPick::One(c) => (n, Some(vec![c.min(classes - 1); n]), None),
            ClassPick::EachRow => (
                n * classes,
                Some(
                    (0..classes)
                        .flat_map(|c| std::iter::repeat_n(c, n))
                        .collect(),
                ),
                Some(n),
            ),
        }
    }
}

/// The picker and the guidance slider (0–10), when the experiment is
/// class-conditional; true when either changed (the panel resamples).
pub fn controls(
    cx: &PanelCtx<'_>,
    ui: &mut egui::Ui,
    id: &str,
    pick: &mut ClassPick,
    sampling: &mut SamplingConfig,
) -> bool {
    let (classes, dataset) = run_classes(cx);
    if classes == 0 {
        return false;
    }
    let names = dataset.class_names();
    let name = |c: usize| {
        names
            .get(c)
            .map_or_else(|| c.to_string(), |n| n.to_string())
    };
    let before = (*pick, sampling.guidance);
    let shown = match *pick {
        ClassPick::Any => "any (unconditional)".to_string(),
        ClassPick::One(c) => name(c),
        ClassPick::EachRow => "one row per class".to_string(),
    };
    egui::ComboBox::new(id, "class")
        .selected_text(shown)
        .show_ui(ui, |ui| {
            ui.selectable_value(pick, ClassPick::Any, "any (unconditional)");
            ui.selectable_value(pick, ClassPick::EachRow, "one row per class");
            for c in 0..classes {
                ui.selectable_value(pick, ClassPick::One(c), name(c));
            }
        });
    // Larger values typed into the form stay as they are.
    let slider = egui::Slider::new(&mut sampling.guidance, 0.0..=10.0)
        .clamping(egui::SliderClamping::Edits)
        .text("guidance");
    ui.add_enabled(*pick != ClassPick::Any, slider)
        .on_hover_text("0 unconditional, 1 plain conditional, more: stronger class features");
    before != (*pick, sampling.guidance)
}

/// The classes (and dataset) of the run the panels sample: the watched
/// run's own, else the experiment's.
pub fn run_classes(cx: &PanelCtx<'_>) -> (usize, crate::data::DatasetKind) {
    let cfg = cx.session.run_config.as_deref().unwrap_or(cx.config);
    (cfg.unet.classes, cfg.dataset)
}
