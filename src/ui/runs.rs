//! Panel 7: every run in the runs directory as a table — status, dataset,
//! date, duration, backend, the hyper-parameters that differ among the runs
//! shown and their final scores — sortable, filterable, with hideable
//! columns. Selected runs overlay their loss curves in the Loss panel and
//! are compared below the table (run_compare.rs).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::panel::PanelCtx;
use super::run_compare::CompareView;
use super::run_sweep::SweepView;
use super::work::{self, RunChange};
use crate::run::summary::differing_keys;
use crate::run::{METRICS, RunSummary};

/// How often the table is read again while it shows, so runs training
/// elsewhere (the CLI, another machine) move along.
const REFRESH: Duration = Duration::from_secs(2);
const ROW_HEIGHT: f32 = 20.0;

/// A column of the table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Column {
    Name,
    Status,
    Dataset,
    Date,
    Duration,
    Backend,
    /// A config value by its dotted key.
    Key(String),
    /// A final score (`run::METRICS`).
    Metric(&'static str),
    Note,
}

impl Column {
    pub fn title(&self) -> String {
        match self {
            Column::Name => "name".into(),
            Column::Status => "status".into(),
            Column::Dataset => "dataset".into(),
            Column::Date => "started (UTC)".into(),
            Column::Duration => "duration".into(),
            Column::Backend => "backend".into(),
            Column::Key(k) => k.clone(),
            Column::Metric(m) => match *m {
                "ssim_gaussian" => "SSIM (gauss)".into(),
                "class_entropy" => "class entropy".into(),
                "class_accuracy" => "class accuracy".into(),
                "psnr" => "PSNR".into(),
                "ssim" => "SSIM".into(),
                "cfid" => "cFID".into(),
                other => other.into(),
            },
            Column::Note => "note".into(),
        }
    }

    fn width(&self) -> f32 {
        match self {
            Column::Name => 230.0,
            Column::Note => 160.0,
            Column::Date => 120.0,
            Column::Key(k) => (k.len() as f32 * 6.5).clamp(70.0, 170.0),
            _ => 80.0,
        }
    }

    /// The cell's text for `run`.
    pub fn text(&self, run: &RunSummary) -> String {
        match self {
            Column::Name => run.name.clone(),
            Column::Status => run.status.clone(),
            Column::Dataset => run.dataset.clone().unwrap_or_default(),
            Column::Date => run.started.map(date_text).unwrap_or_default(),
            Column::Duration => run.seconds.map(duration_text).unwrap_or_default(),
            Column::Backend => run.backend.clone().unwrap_or_default(),
            Column::Key(k) => run.values.get(k).cloned().unwrap_or_default(),
            Column::Metric(m) => {
                let digits = if matches!(*m, "psnr" | "cfid") { 2 } else { 4 };
                run.metric(m)
                    .map(|v| format!("{v:.digits$}"))
                    .unwrap_or_default()
            }
            Column::Note => run.note.lines().next().unwrap_or_default().to_string(),
        }
    }

    /// Order two runs by this column, numbers as numbers, descending when
    /// asked; missing values last either way.
    fn compare(&self, a: &RunSummary, b: &RunSummary, descending: bool) -> std::cmp::Ordering {
        let flip = |o: std::cmp::Ordering| if descending { o.reverse() } else { o };
        let num = |r: &RunSummary| -> Option<f64> {
            match self {
                Column::Date => r.started.map(|v| v as f64),
                Column::Duration => r.seconds.map(|v| v as f64),
                Column::Metric(m) => r.metric(m),
                Column::Key(k) => r.values.get(k)?.parse().ok(),
                _ => None,
            }
        };
        let (ta, tb) = (self.text(a), self.text(b));
        match (num(a), num(b)) {
            (Some(x), Some(y)) => flip(x.total_cmp(&y)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) if ta.is_empty() != tb.is_empty() => ta.is_empty().cmp(&tb.is_empty()),
            (None, None) => flip(ta.cmp(&tb)),
        }
    }
}

/// "2026-12-03 10:15" from Unix seconds.
fn date_text(secs: u64) -> String {
    let stamp = crate::run::listing::stamp_of(secs);
    format!(
        "{}-{}-{} {}:{}",
        &stamp[0..4],
        &stamp[4..6],
        &stamp[6..8],
        &stamp[9..11],
        &stamp[11..13]
    )
}

fn duration_text(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s => format!("{:.1} h", s as f64 / 3600.0),
    }
}

pub struct RunsView {
    pub rows: Vec<RunSummary>,
    /// Rows shown: filtered and sorted indices into `rows`.
    shown: Vec<usize>,
    /// Hyper-parameters that differ among the rows shown.
    differing: Vec<String>,
    pub sort: Column,
    pub descending: bool,
    pub filter: String,
    pub hidden: BTreeSet<Column>,
    refreshing: bool,
    /// The latest read asked for; only its rows are shown.
    ticket: u64,
    last_refresh: Option<Instant>,
    /// The shown order is recomputed only when rows, filter or sort change.
    dirty: bool,
    pub compare: CompareView,
    pub sweep: SweepView,
}

impl Default for RunsView {
    fn default() -> Self {
        Self {
            rows: Vec::new(),
            shown: Vec::new(),
            differing: Vec::new(),
            sort: Column::Date,
            descending: true,
            filter: String::new(),
            hidden: BTreeSet::new(),
            refreshing: false,
            ticket: 0,
            last_refresh: None,
            dirty: true,
            compare: CompareView::default(),
            sweep: SweepView::default(),
        }
    }
}

impl RunsView {
    /// Rows read by request `ticket`; an older request's rows, overtaken
    /// by a change since, are dropped.
    pub fn on_summaries(&mut self, ticket: u64, rows: Vec<RunSummary>) {
        if ticket != self.ticket {
            return;
        }
        self.rows = rows;
        self.refreshing = false;
        self.dirty = true;
    }

    pub fn on_failed(&mut self, job: super::jobs::Job) {
        if job == super::jobs::Job::RunSummaries {
            self.refreshing = false;
        }
    }

    /// Read the runs again at the next frame, even if a read is under way
    /// (a run changed: that read may be out of date).
    pub fn refresh_now(&mut self) {
        self.last_refresh = None;
        self.refreshing = false;
    }

    /// Read the runs again now (after a change, or when asked).
    pub fn refresh(&mut self, cx: &PanelCtx<'_>) {
        if !self.refreshing {
            self.refreshing = true;
            self.ticket += 1;
            self.last_refresh = Some(Instant::now());
            work::summarize_runs(cx.jobs, cx.settings.runs_dir.clone(), self.ticket);
        }
    }

    /// The rows shown, in order.
    pub fn shown(&self) -> impl Iterator<Item = &RunSummary> {
        self.shown.iter().map(|&i| &self.rows[i])
    }

    pub fn columns(&self) -> Vec<Column> {
        let mut cols = vec![
            Column::Name,
            Column::Status,
            Column::Dataset,
            Column::Date,
            Column::Duration,
            Column::Backend,
        ];
        // Scores before the hyper-parameters: they are what runs are
        // compared by, and there may be many differing keys.
        cols.extend(METRICS.iter().map(|m| Column::Metric(m)));
        cols.extend(self.differing.iter().cloned().map(Column::Key));
        cols.push(Column::Note);
        cols
    }

    fn matches(&self, run: &RunSummary) -> bool {
        let needle = self.filter.trim().to_lowercase();
        if needle.is_empty() {
            return true;
        }
        let hay = [
            run.name.as_str(),
            run.status.as_str(),
            run.note.as_str(),
            run.dataset.as_deref().unwrap_or(""),
            run.origin.as_deref().unwrap_or(""),
        ];
        hay.iter().any(|h| h.to_lowercase().contains(&needle))
            || run
                .values
                .iter()
                .any(|(k, v)| format!("{k}={v}").to_lowercase().contains(&needle))
    }

    fn reorder(&mut self) {
        let mut shown: Vec<usize> = (0..self.rows.len())
            .filter(|&i| self.matches(&self.rows[i]))
            .collect();
        self.differing = differing_keys(shown.iter().map(|&i| &self.rows[i]));
        let (sort, rows, descending) = (&self.sort, &self.rows, self.descending);
        shown.sort_by(|&a, &b| sort.compare(&rows[a], &rows[b], descending));
        self.shown = shown;
        self.dirty = false;
    }

    pub fn show(&mut self, cx: &mut PanelCtx<'_>, ui: &mut egui::Ui) {
        let due = self.last_refresh.is_none_or(|t| t.elapsed() >= REFRESH);
        if due {
            self.refresh(cx);
        }
        ui.ctx().request_repaint_after(REFRESH);
        if self.dirty {
            self.reorder();
        }
        self.toolbar(cx, ui);
        let table_height = (ui.available_height() * 0.45).max(120.0);
        ui.scope(|ui| {
            // Solid scroll bars: a floating one lies over the last row and
            // takes the clicks meant for its checkbox.
            ui.spacing_mut().scroll = egui::style::ScrollStyle::solid();
            self.table(cx, ui, table_height);
        });
        ui.separator();
        egui::ScrollArea::vertical()
            .id_salt("runs-compare")
            .show(ui, |ui| {
                let rows = &self.rows;
                let shown: Vec<&RunSummary> = self.shown.iter().map(|&i| &rows[i]).collect();
                let selected: Vec<&RunSummary> = rows
                    .iter()
                    .filter(|r| cx.settings.overlay.contains(&r.dir))
                    .collect();
                if shown.iter().any(|r| r.sweep.is_some()) {
                    egui::CollapsingHeader::new("Sweep")
                        .default_open(true)
                        .show(ui, |ui| self.sweep.show(ui, &shown));
                    ui.separator();
                }
                self.compare.show(cx, ui, &selected)
            });
    }

    fn toolbar(&mut self, cx: &mut PanelCtx<'_>, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            ui.label(format!(
                "{} of {} runs in {}",
                self.shown.len(),
                self.rows.len(),
                cx.settings.runs_dir.display()
            ));
            ui.separator();
            let filter = ui
                .add(
                    egui::TextEdit::singleline(&mut self.filter)
                        .hint_text("filter: name, status, note, key=value")
                        .desired_width(220.0),
                )
                .accessible_name("filter runs");
            if filter.changed() {
                self.dirty = true;
            }
            ui.menu_button("Columns", |ui| {
                for col in self.columns() {
                    let mut on = !self.hidden.contains(&col);
                    if ui.checkbox(&mut on, col.title()).changed() {
                        if on {
                            self.hidden.remove(&col);
                        } else {
                            self.hidden.insert(col);
                        }
                    }
                }
            });
            if ui.button("Refresh").clicked() {
                self.refresh(cx);
            }
            if !cx.settings.overlay.is_empty() && ui.button("Clear selection").clicked() {
                cx.settings.overlay.clear();
            }
        });
    }

    fn table(&mut self, cx: &mut PanelCtx<'_>, ui: &mut egui::Ui, height: f32) {
        let cols: Vec<Column> = self
            .columns()
            .into_iter()
            .filter(|c| !self.hidden.contains(c))
            .collect();
        if self.rows.is_empty() {
            self.header(ui, &cols);
            ui.weak(if self.refreshing {
                "Reading the runs…".to_string()
            } else {
                format!(
                    "No runs in {} yet: start one on the Experiment panel, or with \
                     `latentlab train --runs-dir {}`",
                    cx.settings.runs_dir.display(),
                    cx.settings.runs_dir.display()
                )
            });
            return;
        }
        let shown = self.shown.clone();
        // Row 0 is the header, drawn first in whatever is visible, so it
        // stays on top while the rows scroll under it.
        egui::ScrollArea::both()
            .id_salt("runs-table")
            .max_height(height)
            .auto_shrink([false, true])
            .show_rows(ui, ROW_HEIGHT, shown.len() + 1, |ui, range| {
                self.header(ui, &cols);
                let rows = range.start..(range.end - 1).min(shown.len());
                for &i in &shown[rows] {
                    self.row(cx, ui, &cols, i);
                }
            });
    }

    fn header(&mut self, ui: &mut egui::Ui, cols: &[Column]) {
        ui.horizontal(|ui| {
            ui.add_sized([24.0, ROW_HEIGHT], egui::Label::new(""));
            for col in cols {
                let arrow = match (&self.sort == col, self.descending) {
                    (true, true) => " v",
                    (true, false) => " ^",
                    _ => "",
                };
                let title = format!("{}{arrow}", col.title());
                let head = ui.add_sized(
                    [col.width(), ROW_HEIGHT],
                    egui::Button::new(egui::RichText::new(title).strong()).frame(false),
                );
                if head.on_hover_text("Sort by this column").clicked() {
                    if self.sort == *col {
                        self.descending = !self.descending;
                    } else {
                        self.sort = col.clone();
                        self.descending = false;
                    }
                    self.dirty = true;
                }
            }
        });
    }

    fn row(&self, cx: &mut PanelCtx<'_>, ui: &mut egui::Ui, cols: &[Column], i: usize) {
        let run = &self.rows[i];
        ui.horizontal(|ui| {
            let mut on = cx.settings.overlay.contains(&run.dir);
            let pick = ui.add_sized([24.0, ROW_HEIGHT], egui::Checkbox::without_text(&mut on));
            let label = format!("select {}", run.name);
            pick.widget_info(|| egui::WidgetInfo::selected(egui::Role::CheckBox, true, on, &label));
            let pick = pick.on_hover_text(format!(
                "Select {}: its loss overlays the Loss panel and it joins the comparison below",
                run.name
            ));
            if pick.changed() {
                select(cx, &run.dir, on);
            }
            for col in cols {
                let cell = egui::Label::new(col.text(run)).truncate();
                let r = ui.add_sized([col.width(), ROW_HEIGHT], cell);
                if *col == Column::Status
                    && let Some(m) = &run.message
                {
                    r.on_hover_text(m);
                }
            }
        });
    }
}

/// Select or unselect a run: the Loss panel overlays what is selected.
pub fn select(cx: &mut PanelCtx<'_>, dir: &PathBuf, on: bool) {
    if on {
        if !cx.settings.overlay.contains(dir) {
            cx.settings.overlay.push(dir.clone());
            work::load_curves(cx.jobs, dir.clone());
        }
    } else {
        cx.settings.overlay.retain(|d| d != dir);
    }
}

/// Ask for a change to a run; the table is read again when it is done.
pub fn change(cx: &PanelCtx<'_>, dir: PathBuf, what: RunChange) {
    work::change_run(cx.jobs, dir, what);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &str, psnr: Option<f64>) -> RunSummary {
        let mut r = RunSummary::read(std::path::Path::new(name), 0);
        r.scores = psnr.map(|psnr| crate::run::FinalScores {
            psnr,
            ssim: 0.0,
            ssim_gaussian: 0.0,
            test_images: 1,
            dataset: String::new(),
            cfid: None,
            confidence: None,
            class_entropy: None,
            n_samples: 0,
            sampler: String::new(),
            steps: 0,
            seed: 0,
            classifier: None,
            guidance: None,
            class_accuracy: None,
            date: String::new(),
        });
        r
    }

    #[test]
    fn unscored_runs_sort_last_in_both_directions() {
        let rows = [run("a", Some(20.0)), run("b", None), run("c", Some(25.0))];
        let col = Column::Metric("psnr");
        for (descending, want) in [(false, ["a", "c", "b"]), (true, ["c", "a", "b"])] {
            let mut order: Vec<&RunSummary> = rows.iter().collect();
            order.sort_by(|x, y| col.compare(x, y, descending));
            let names: Vec<&str> = order.iter().map(|r| r.name.as_str()).collect();
            assert_eq!(names, want, "descending: {descending}");
        }
    }
}
