//! `latentlab runs`: the runs in a runs directory, with their status, as a
//! table or as JSON.

use std::path::PathBuf;

use clap::Args;

use super::{CliError, common};
use crate::run::status::now_secs;
use crate::run::{METRICS, RunSummary, list_runs};

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// The runs directory (where `train` puts new runs).
    #[arg(long, value_name = "DIR", default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Print JSON: a list of objects with name, status, message, dataset,
    /// preset, backend, started, seconds, note, config, ae_step,
    /// diffusion_step, and the metrics psnr, ssim, ssim_gaussian, cfid,
    /// confidence, class_entropy, class_accuracy (null: not scored).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: RunsArgs) -> Result<(), CliError> {
    if !args.runs_dir.is_dir() {
        return Err(CliError::usage(format!(
            "{} is not a directory; pass the --runs-dir that `latentlab train` wrote to",
            args.runs_dir.display()
        )));
    }
    let now = now_secs();
    let rows: Vec<serde_json::Value> = list_runs(&args.runs_dir)
        .iter()
        .map(|dir| describe(dir, now))
        .collect();
    if args.json {
        common::print_json(&serde_json::Value::Array(rows));
        return Ok(());
    }
    println!(
        "{:<40} {:<12} {:<8} {:>9} {:>10} {:>8} {:>7} {:>8}",
        "NAME", "STATUS", "DATASET", "AE STEPS", "UNET STEPS", "PSNR", "SSIM", "cFID"
    );
    for r in &rows {
        let text = |k: &str| r[k].as_str().unwrap_or("-").to_string();
        let num = |k: &str| r[k].as_u64().map_or("-".into(), |n| n.to_string());
        let score = |k: &str, digits: usize| {
            r[k].as_f64()
                .map_or("-".into(), |v| format!("{v:.digits$}"))
        };
        println!(
            "{:<40} {:<12} {:<8} {:>9} {:>10} {:>8} {:>7} {:>8}",
            text("name"),
            text("status"),
            text("dataset"),
            num("ae_step"),
            num("diffusion_step"),
            score("psnr", 2),
            score("ssim", 4),
            score("cfid", 2)
        );
    }
    Ok(())
}

/// One run as a JSON object; an unreadable run still gets a row saying why.
fn describe(dir: &std::path::Path, now: u64) -> serde_json::Value {
    let run = RunSummary::read(dir, now);
    let mut row = serde_json::json!({
        "name": run.name,
        "status": run.status,
        "message": run.message,
        "preset": run.origin,
        "dataset": run.dataset,
        "backend": run.backend,
        "started": run.started,
        "seconds": run.seconds,
        "note": run.note,
        "config": run.config.as_ref().and_then(|c| serde_json::to_value(c).ok()),
        "sweep": run.sweep.as_ref().map(|m| m.sweep.clone()),
        "sweep_values": run.sweep.as_ref().map(|m| serde_json::to_value(&m.values).unwrap_or_default()),
        "ae_step": run.ae_step,
        "diffusion_step": run.diffusion_step,
    });
    for key in METRICS {
        row[key] = run.metric(key).into();
    }
    if let Some(problem) = &run.scores_problem {
        row["scores_problem"] = problem.as_str().into();
    }
    row
}
