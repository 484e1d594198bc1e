//! Helpers shared by the sub-commands: device selection, dataset loading
//! with a download progress bar, and the progress-bar style.

use std::path::Path;

use burn::tensor::Device;
use indicatif::{ProgressBar, ProgressStyle};

use super::{BackendArgs, CliError};
use crate::backend::{self, BackendKind};
use crate::data::{self, Dataset, DatasetKind};

/// The backend and device named on the command line (defaults: flex, auto).
pub fn device(args: &BackendArgs) -> Result<(BackendKind, Device), CliError> {
    let kind = args.kind()?;
    backend::set_threads(kind, args.threads);
    let device = backend::select(kind, &args.device)?;
    Ok((kind, device))
}

/// Find and load a dataset, saying where it came from on stderr.
pub fn load_dataset(kind: DatasetKind, data_dir: Option<&Path>) -> Result<Dataset, CliError> {
    let bar = ProgressBar::hidden();
    let located = data::locate(kind, data_dir, true, &|p: data::DownloadProgress| {
        if bar.is_hidden() {
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            bar.set_style(bytes_style());
        }
        bar.set_length(p.total.unwrap_or(0));
        bar.set_position(p.done);
        bar.set_message(p.file.clone());
    })?;
    bar.finish_and_clear();
    let dataset = data::load(kind, &located)?;
    eprintln!("data: {}", located.describe());
    if let Some(note) = located.note() {
        eprintln!("note: {note}");
    }
    Ok(dataset)
}

pub fn steps_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{prefix:>12} [{bar:30}] {pos}/{len} {msg} ({elapsed} elapsed, eta {eta})",
    )
    .expect("valid template")
    .progress_chars("=> ")
}

fn bytes_style() -> ProgressStyle {
    ProgressStyle::with_template("downloading {msg} [{bar:30}] {bytes}/{total_bytes}")
        .expect("valid template")
        .progress_chars("=> ")
}

/// Print `value` as pretty JSON on stdout.
pub fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("JSON values serialise")
    );
}
