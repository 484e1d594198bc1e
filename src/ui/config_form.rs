//! Every field of `ExperimentConfig`, editable. The form walks the config's
//! TOML tree, so a field added to the engine shows up here by itself. Edits
//! go through `ExperimentConfig::apply_override`, which type-checks them;
//! text that does not parse is kept and reported next to its field.

use std::collections::BTreeMap;

use crate::config::{ExperimentConfig, Problem, leaf_text};

/// Known choices for string-valued fields.
fn choices(path: &str) -> Option<&'static [&'static str]> {
    Some(match path {
        "dataset" => &["mnist", "fashion"],
        "diffusion.schedule" => &["linear", "cosine", "quadratic", "sigmoid"],
        "sampling.sampler" => &["ddpm", "ddim", "dpmpp"],
        "sampling.variance" => &["beta", "posterior"],
        "ae_training.lr_schedule" | "diffusion_training.lr_schedule" => &["constant", "cosine"],
        _ => return None,
    })
}

/// Fields that only matter when sampling: changing them needs no restart.
pub fn sampling_only(path: &str) -> bool {
    path.starts_with("sampling.")
}

/// A section's name and its (path, value) fields.
type Section<'a> = (&'a str, Vec<&'a (String, toml::Value)>);

#[derive(Debug, Default, Clone)]
pub struct ConfigForm {
    /// Raw text of the text-edited fields, by dotted path.
    texts: BTreeMap<String, String>,
    /// Text that did not parse, by dotted path.
    errors: BTreeMap<String, String>,
    /// Fields given several values (`1e-3, 2e-3`): a sweep. The config
    /// holds the first value; Start queues every grid point.
    sweeps: BTreeMap<String, Vec<String>>,
}

/// Sections in the order a person thinks about them.
const ORDER: [&str; 9] = [
    "",
    "autoencoder",
    "ae_training",
    "unet",
    "diffusion",
    "diffusion_training",
    "sampling",
    "checkpoint",
    "?",
];

fn section_of(path: &str) -> &str {
    path.rsplit_once('.').map(|(s, _)| s).unwrap_or("")
}

impl ConfigForm {
    pub fn from_config(cfg: &ExperimentConfig) -> Self {
        let mut form = Self::default();
        form.reset(cfg);
        form
    }

    /// Forget edits and show `cfg` (after loading a preset).
    pub fn reset(&mut self, cfg: &ExperimentConfig) {
        self.errors.clear();
        self.sweeps.clear();
        self.texts = Self::fields(cfg)
            .into_iter()
            .map(|(p, v)| (p, leaf_text(&v)))
            .collect();
    }

    /// `reset` for the fields under `prefix` only (the sampling settings a
    /// panel changed), keeping the rest of the form as edited.
    pub fn reset_section(&mut self, cfg: &ExperimentConfig, prefix: &str) {
        self.errors.retain(|p, _| !p.starts_with(prefix));
        self.sweeps.retain(|p, _| !p.starts_with(prefix));
        for (p, v) in Self::fields(cfg) {
            if p.starts_with(prefix) {
                self.texts.insert(p, leaf_text(&v));
            }
        }
    }

    fn fields(cfg: &ExperimentConfig) -> Vec<(String, toml::Value)> {
        let mut out = cfg.leaves();
        let rank = |p: &str| {
            ORDER
                .iter()
                .position(|s| *s == section_of(p))
                .unwrap_or(ORDER.len())
        };
        out.sort_by_key(|(p, _)| rank(p));
        out
    }

    /// Parse errors and validation problems, each naming its field.
    pub fn problems(&self, cfg: &ExperimentConfig) -> Vec<Problem> {
        let mut p: Vec<Problem> = self
            .errors
            .iter()
            .map(|(field, message)| Problem {
                field: field.clone(),
                message: message.clone(),
            })
            .collect();
        p.extend(
            cfg.validate()
                .into_iter()
                .filter(|v| !self.errors.contains_key(&v.field)),
        );
        p
    }

    /// The swept fields and their values, in form order (empty: one run).
    pub fn sweep_axes(&self) -> Vec<crate::run::sweep::Axis> {
        self.sweeps
            .iter()
            .map(|(key, values)| crate::run::sweep::Axis {
                key: key.clone(),
                values: values.clone(),
            })
            .collect()
    }

    /// Set `path` from raw text, as the user typed it. Several values at
    /// top-level commas make it a swept field (up to three).
    pub fn set_text(&mut self, cfg: &mut ExperimentConfig, path: &str, text: &str) {
        self.texts.insert(path.to_string(), text.to_string());
        // Text fields (the name, the data source) are never swept.
        let textual = Self::fields(cfg)
            .iter()
            .any(|(p, v)| p == path && matches!(v, toml::Value::String(_)));
        let values = crate::run::sweep::split_values(text);
        if values.len() > 1 && !textual {
            if !self.sweeps.contains_key(path) && self.sweeps.len() >= crate::run::sweep::MAX_AXES {
                self.errors.insert(
                    path.to_string(),
                    format!(
                        "at most {} swept fields; this would be one more",
                        crate::run::sweep::MAX_AXES
                    ),
                );
                return;
            }
            self.sweeps.insert(path.to_string(), values.clone());
            // The config holds the first value; the grid is checked at Start.
            self.apply(cfg, path, &values[0]);
            return;
        }
        self.sweeps.remove(path);
        self.apply(cfg, path, text);
    }

    fn apply(&mut self, cfg: &mut ExperimentConfig, path: &str, text: &str) {
        let current = Self::fields(cfg)
            .into_iter()
            .find(|(p, _)| p == path)
            .map(|(_, v)| v);
        let value = match current {
            Some(toml::Value::String(_)) => toml::Value::String(text.to_string()).to_string(),
            // "1" for a float field: TOML would read an integer.
            Some(toml::Value::Float(_)) if text.trim().parse::<i64>().is_ok() => {
                format!("{}.0", text.trim())
            }
            _ => text.to_string(),
        };
        match cfg.apply_override(&format!("{path}={value}")) {
            Ok(()) => {
                self.errors.remove(path);
            }
            Err(e) => {
                let message = e.to_string();
                let short = message
                    .split_once(": ")
                    .map(|(_, m)| m.to_string())
                    .unwrap_or(message);
                self.errors.insert(path.to_string(), short);
            }
        }
    }

    /// Draw the form. Returns the paths changed this frame.
    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        cfg: &mut ExperimentConfig,
        problems: &[Problem],
    ) -> Vec<String> {
        let mut changed = Vec::new();
        let fields = Self::fields(cfg);
        let mut sections: Vec<Section> = Vec::new();
        for f in &fields {
            let s = section_of(&f.0);
            match sections.last_mut() {
                Some((name, v)) if *name == s => v.push(f),
                _ => sections.push((s, vec![f])),
            }
        }
        // Three columns, sections kept in order and split near-evenly by size.
        let total: usize = sections.iter().map(|(_, f)| f.len() + 2).sum();
        let mut columns: Vec<Vec<Section>> = vec![Vec::new(); 3];
        let mut filled = 0;
        for sec in sections {
            let col = (filled * 3 / total.max(1)).min(2);
            filled += sec.1.len() + 2;
            columns[col].push(sec);
        }
        ui.columns(3, |cols| {
            for (ui, sections) in cols.iter_mut().zip(columns) {
                for (section, fields) in sections {
                    self.section(ui, cfg, section, &fields, problems, &mut changed);
                }
            }
        });
        changed
    }

    fn section(
        &mut self,
        ui: &mut egui::Ui,
        cfg: &mut ExperimentConfig,
        section: &str,
        fields: &[&(String, toml::Value)],
        problems: &[Problem],
        changed: &mut Vec<String>,
    ) {
        {
            let title = if section.is_empty() {
                "experiment"
            } else {
                section
            };
            let bad = fields
                .iter()
                .any(|(p, _)| problems.iter().any(|q| &q.field == p));
            let header = if bad {
                egui::RichText::new(format!("{title} (check)")).color(ui.visuals().error_fg_color)
            } else {
                egui::RichText::new(title)
            };
            egui::CollapsingHeader::new(header)
                .id_salt(title)
                .default_open(true)
                .show(ui, |ui| {
                    egui::Grid::new(("form", title))
                        .num_columns(3)
                        .spacing([12.0, 4.0])
                        .show(ui, |ui| {
                            for (path, value) in fields {
                                if self.field(ui, cfg, path, value, problems) {
                                    changed.push(path.clone());
                                }
                                ui.end_row();
                            }
                        });
                });
        }
    }

    fn field(
        &mut self,
        ui: &mut egui::Ui,
        cfg: &mut ExperimentConfig,
        path: &str,
        value: &toml::Value,
        problems: &[Problem],
    ) -> bool {
        let key = path.rsplit('.').next().unwrap_or(path);
        let label = ui.label(key).on_hover_text(path);
        let mut changed = false;
        match (value, choices(path)) {
            (toml::Value::Boolean(b), _) => {
                let mut on = *b;
                let r = ui.checkbox(&mut on, "").labelled_by(label.id);
                if r.changed() {
                    self.set_text(cfg, path, &on.to_string());
                    changed = true;
                }
            }
            (toml::Value::String(s), Some(options)) => {
                let mut chosen = s.clone();
                egui::ComboBox::from_id_salt(path)
                    .selected_text(&chosen)
                    .show_ui(ui, |ui| {
                        for o in options {
                            ui.selectable_value(&mut chosen, o.to_string(), *o);
                        }
                    })
                    .response
                    .labelled_by(label.id);
                if chosen != *s {
                    self.set_text(cfg, path, &chosen);
                    changed = true;
                }
            }
            _ => {
                let mut text = self
                    .texts
                    .get(path)
                    .cloned()
                    .unwrap_or_else(|| leaf_text(value));
                let r = ui.add_sized(
                    [110.0, 20.0],
                    egui::TextEdit::singleline(&mut text).id_salt(path),
                );
                let r = r.accessible_name(path);
                if r.changed() {
                    self.set_text(cfg, path, &text);
                    changed = true;
                }
            }
        }
        let msgs: Vec<&str> = problems
            .iter()
            .filter(|p| p.field == path)
            .map(|p| p.message.as_str())
            .collect();
        if let (true, Some(values)) = (msgs.is_empty(), self.sweeps.get(path)) {
            ui.label(format!("sweep: {} values", values.len()))
                .on_hover_text("Start queues one run per combination of the swept values");
        } else if msgs.is_empty() {
            if sampling_only(path) {
                ui.weak("live")
                    .on_hover_text("applies to sampling at once, no restart");
            } else {
                ui.label("");
            }
        } else {
            super::widgets::problem(ui, msgs.join("; "));
        }
        changed
    }
}
