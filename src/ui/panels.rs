//! The window's panels, in tab order. Adding a panel is one line in
//! `panels!` below and one file holding its view: a struct that owns its
//! state (`Default`) and draws itself with `show(&mut self, cx, ui)` from
//! the narrow `PanelCtx` (see panel.rs).

use serde::{Deserialize, Serialize};

use super::panel::PanelCtx;
use super::{denoising, experiment, latent, loss, reconstructions, runs, samples};

macro_rules! panels {
    ($($tab:ident => $field:ident: $view:ty, $title:literal, $slug:literal;)*) => {
        /// Which panel shows (persisted with the settings).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        pub enum Tab {
            $($tab),*
        }

        impl Tab {
            pub const ALL: [Tab; [$(Tab::$tab),*].len()] = [$(Tab::$tab),*];

            pub fn title(self) -> &'static str {
                match self {
                    $(Tab::$tab => $title),*
                }
            }

            /// The name used on the command line (`screenshot --panel`).
            pub fn slug(self) -> &'static str {
                match self {
                    $(Tab::$tab => $slug),*
                }
            }
        }

        /// Every panel's own state.
        #[derive(Default)]
        pub struct Panels {
            $(pub $field: $view),*
        }

        impl Panels {
            pub fn show(&mut self, tab: Tab, cx: &mut PanelCtx<'_>, ui: &mut egui::Ui) {
                match tab {
                    $(Tab::$tab => self.$field.show(cx, ui)),*
                }
            }
        }
    };
}

panels! {
    Experiment => experiment: experiment::ExperimentView, "Experiment", "experiment";
    Loss => loss: loss::LossView, "Loss", "loss";
    Reconstructions => recon: reconstructions::ReconView, "Reconstructions", "reconstructions";
    Latent => latent: latent::LatentView, "Latent space", "latent";
    Denoising => denoise: denoising::DenoiseView, "Denoising", "denoising";
    Samples => samples: samples::SamplesView, "Samples", "samples";
    Runs => runs: runs::RunsView, "Runs", "runs";
}

impl Tab {
    pub fn parse(s: &str) -> Option<Tab> {
        Tab::ALL.into_iter().find(|t| t.slug() == s)
    }
}
