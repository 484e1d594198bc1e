//! `latentlab train`: run both stages headless with a progress bar and one
//! summary line per epoch. Ctrl-C saves a checkpoint and stops cleanly.

use std::path::PathBuf;

use clap::Args;
use indicatif::ProgressBar;

use super::common::{self, steps_style};
use super::{BackendArgs, CliError, ConfigArgs};
use crate::config::ExperimentConfig;
use crate::data::DatasetKind;
use crate::run::checkpoint::RunDir;
use crate::run::fresh_run_dir;
use crate::train::{Command, Event, Stage, Start, TrainJob, Worker};

#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Where to write the run (default: <runs-dir>/<name>-<UTC time>).
    #[arg(long, value_name = "DIR")]
    pub run_dir: Option<PathBuf>,
    /// Where new runs go (the window's default too, so its Runs list sees them).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "runs",
        conflicts_with = "run_dir"
    )]
    pub runs_dir: PathBuf,
    /// Dataset to train on, overriding the config's.
    #[arg(long, value_name = "mnist|fashion")]
    pub dataset: Option<DatasetKind>,
    /// Directory holding the four IDX files (raw or .gz).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Continue the run in DIR from its last checkpoint.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["preset", "config", "overrides", "run_dir", "runs_dir", "dataset"])]
    pub resume: Option<PathBuf>,
}

pub fn run(args: TrainArgs, backend_args: &BackendArgs) -> Result<(), CliError> {
    let (start, run_dir, dataset) = match &args.resume {
        Some(dir) => {
            let (_, cfg, _) = RunDir::open(dir)?;
            (Start::Resume, dir.clone(), cfg.dataset)
        }
        None => {
            let c = &args.config;
            let mut cfg =
                ExperimentConfig::load(c.preset.as_deref(), c.config.as_deref(), &c.overrides)?;
            if let Some(d) = args.dataset {
                cfg.dataset = d;
            }
            let dir = args
                .run_dir
                .clone()
                .unwrap_or_else(|| fresh_run_dir(&args.runs_dir, &cfg.name));
            if dir.join(crate::run::CONFIG).exists() {
                return Err(CliError::usage(format!(
                    "{} already holds a run; continue it with `latentlab train --resume {}` or pass another --run-dir",
                    dir.display(),
                    dir.display()
                )));
            }
            let dataset = cfg.dataset;
            (Start::New(cfg), dir, dataset)
        }
    };
    // What the run started from: the preset, else the config file
    // (`ExperimentConfig::load` falls back to quick).
    let c = &args.config;
    let origin = match (&args.resume, &c.preset, &c.config) {
        (Some(_), _, _) => None, // a resumed run keeps its own
        (None, _, Some(file)) => Some(file.display().to_string()),
        (None, Some(preset), None) => Some(preset.clone()),
        (None, None, None) => Some("quick".to_string()),
    };
    let (kind, device) = common::device(backend_args)?;
    let data = common::load_dataset(dataset, args.data_dir.as_deref())?;
    let worker = Worker::spawn(TrainJob {
        run_dir: run_dir.clone(),
        start,
        device,
        backend_name: kind.name().into(),
        data,
        origin,
    });
    let stop = worker.commands.clone();
    // A second Ctrl-C falls through to the default handler (kill).
    let presses = std::sync::atomic::AtomicUsize::new(0);
    let _ = ctrlc::set_handler(move || {
        if presses.fetch_add(1, std::sync::atomic::Ordering::SeqCst) > 0 {
            eprintln!("\naborted without saving");
            std::process::exit(130);
        }
        eprintln!("\nstopping: saving a checkpoint first (Ctrl-C again to abort)");
        let _ = stop.send(Command::Stop);
    });
    let result = watch(&worker);
    worker.join();
    result
}

/// Print the event stream until the run ends.
fn watch(worker: &Worker) -> Result<(), CliError> {
    let mut bar: Option<(Stage, ProgressBar)> = None;
    let mut scoring = String::new();
    // Print above the bar; without a terminal the bar is hidden and drops
    // its println, so write the line directly (logs keep every epoch).
    let say = |bar: &Option<(Stage, ProgressBar)>, line: String| match bar {
        Some((_, b)) if !b.is_hidden() => b.println(line),
        _ => eprintln!("{line}"),
    };
    for event in worker.events.iter() {
        match event {
            Event::RunStarted {
                run_dir,
                backend,
                dataset,
                train_images,
                test_images,
                resumed_at,
                config,
            } => {
                eprintln!(
                    "run: {} ({}) on {backend}; {train_images} train / {test_images} test images from {dataset}",
                    run_dir.display(),
                    config.name
                );
                if let Some((stage, step)) = resumed_at {
                    eprintln!("resuming the {} stage at step {step}", stage.name());
                }
            }
            Event::Progress(p) => {
                if bar.as_ref().map(|(s, _)| *s) != Some(p.stage) {
                    if let Some((_, b)) = bar.take() {
                        b.finish_and_clear();
                    }
                    let b = ProgressBar::new(p.total_steps as u64).with_style(steps_style());
                    b.set_prefix(p.stage.name());
                    bar = Some((p.stage, b));
                }
                if let Some((_, b)) = &bar {
                    b.set_position(p.step as u64);
                    b.set_message(format!(
                        "epoch {}/{} · {:.0} img/s",
                        p.epoch, p.epochs, p.images_per_sec
                    ));
                }
            }
            Event::EpochSummary {
                stage,
                epoch,
                mean_loss,
                seconds,
                eval,
            } => {
                let metrics = eval
                    .map(|e| {
                        format!(
                            " · test PSNR {:.2} dB · SSIM {:.4} · SSIM(gauss) {:.4} over {} images",
                            e.psnr, e.ssim, e.ssim_gaussian, e.images
                        )
                    })
                    .unwrap_or_default();
                say(
                    &bar,
                    format!(
                        "{:>11} epoch {epoch:>3}: loss {mean_loss:.5} · {seconds:.1} s{metrics}",
                        stage.name()
                    ),
                );
            }
            Event::CheckpointSaved { .. } => {}
            Event::StageFinished { stage } => {
                if let Some((_, b)) = bar.take() {
                    b.finish_and_clear();
                }
                eprintln!("{} stage finished", stage.name());
            }
            Event::Stopped { checkpoint } => {
                if let Some((_, b)) = bar.take() {
                    b.finish_and_clear();
                }
                match checkpoint {
                    Some(p) => eprintln!(
                        "stopped; checkpoint in {} — continue with `latentlab train --resume {}`",
                        p.display(),
                        p.parent().unwrap_or(&p).display()
                    ),
                    None => eprintln!("stopped before the first checkpoint"),
                }
                return Ok(());
            }
            Event::Scoring { what, done, total } => {
                if what != scoring {
                    say(&bar, format!("scoring the run: {what}"));
                    scoring = what.clone();
                }
                // One bar per scoring step (classifier, sampling, …).
                let fresh =
                    |b: &ProgressBar| b.prefix() == "scoring" && b.length() == Some(total as u64);
                if let Some((_, b)) = bar.take_if(|(_, b)| !fresh(b)) {
                    b.finish_and_clear();
                }
                let b = &bar
                    .get_or_insert_with(|| {
                        let b = ProgressBar::new(total as u64).with_style(steps_style());
                        b.set_prefix("scoring");
                        (Stage::Diffusion, b)
                    })
                    .1;
                b.set_message(what);
                b.set_position(done as u64);
            }
            Event::Finished {
                run_dir,
                seconds,
                scores,
                unscored,
            } => {
                if let Some((_, b)) = bar.take() {
                    b.finish_and_clear();
                }
                if let Some(s) = scores {
                    eprintln!("{}", scores_line(&s));
                }
                if let Some(why) = unscored {
                    eprintln!("not scored: {why}");
                }
                eprintln!(
                    "finished in {seconds:.0} s; run in {} — try `latentlab sample --run {} --n 16 --out samples`",
                    run_dir.display(),
                    run_dir.display()
                );
                return Ok(());
            }
            Event::Failed {
                message,
                checkpoint,
            } => {
                if let Some((_, b)) = bar.take() {
                    b.abandon();
                }
                let kept = checkpoint
                    .map(|p| format!(" (last good checkpoint: {})", p.display()))
                    .unwrap_or_default();
                return Err(CliError::failed(format!("{message}{kept}")));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The final scores in one line, as `latentlab eval` words them.
fn scores_line(s: &crate::run::FinalScores) -> String {
    let mut line = format!(
        "scores kept in eval.json: PSNR {:.3} dB · SSIM {:.4} · SSIM(gauss) {:.4} over {} test images",
        s.psnr, s.ssim, s.ssim_gaussian, s.test_images
    );
    if let (Some(cfid), Some(conf), Some(ent)) = (s.cfid, s.confidence, s.class_entropy) {
        line += &format!(
            "; {} samples ({}-{}, seed {}): cFID {cfid:.3} · confidence {conf:.4} · class entropy {ent:.4}",
            s.n_samples, s.sampler, s.steps, s.seed
        );
    }
    line
}
