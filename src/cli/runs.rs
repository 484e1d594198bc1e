//! `latentlab runs`: the runs in a runs directory, with their status, as a
//! table or as JSON.

use std::path::PathBuf;

use clap::Args;

use super::{CliError, common};
use crate::run::checkpoint::RunDir;
use crate::run::{FinalScores, METRICS, list_runs};
use crate::run::status::{RunStatus, now_secs};

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// The runs directory (where `train` puts new runs).
    #[arg(long, value_name = "DIR", default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Print JSON: a list of objects with name, status, message, dataset,
    /// preset, config, ae_step, diffusion_step, and the metrics psnr, ssim,
    /// ssim_gaussian, cfid, confidence, class_entropy (null: not scored).
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
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut row = serde_json::json!({ "name": name, "preset": null });
    let scores = FinalScores::read(dir);
    for key in METRICS {
        let value = scores.as_ref().and_then(|s| s.as_ref().ok()?.metric(key));
        row[key] = value.into();
    }
    if let Some(Err(problem)) = &scores {
        row["scores_problem"] = problem.as_str().into();
    }
    let status = RunStatus::read(dir);
    row["preset"] = status.as_ref().and_then(|s| s.origin.clone()).into();
    row["status"] = status.as_ref().map(|s| s.seen(now).name()).into();
    row["message"] = status.and_then(|s| s.message).into();
    match RunDir::open(dir) {
        Ok((_, cfg, state)) => {
            row["dataset"] = cfg.dataset.name().into();
            row["config"] = serde_json::to_value(&cfg).unwrap_or_default();
            row["ae_step"] = state.as_ref().map(|s| s.ae_step).into();
            row["diffusion_step"] = state.as_ref().map(|s| s.diffusion_step).into();
            if row["status"].is_null() {
                // Runs from before statuses were kept: what the checkpoint says.
                let done = state.as_ref().is_some_and(|s| s.diffusion_done);
                row["status"] = if done { "finished" } else { "stopped" }.into();
            }
        }
        Err(e) => {
            row["status"] = "unreadable".into();
            row["message"] = e.to_string().into();
        }
    }
    row
}
