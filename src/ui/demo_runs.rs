//! A few made-up runs on disk for the Runs panel's demo: real configs,
//! statuses, scores, notes and per-epoch pictures (test digits, blurred
//! less each epoch), but no weights. They live in a scratch directory.

use std::path::{Path, PathBuf};

use super::demo::{blur, map_images};
use crate::config::ExperimentConfig;
use crate::data::Dataset;
use crate::export::{grid, png_bytes};
use crate::pipeline::{PIXELS, SIDE};
use crate::run::status::{RunState, RunStatus};
use crate::run::{FinalScores, MediaKind, RunDir, TrainState, manage};
use crate::train::Stage;

struct DemoRun {
    name: &'static str,
    preset: &'static str,
    set: &'static [&'static str],
    state: RunState,
    /// Minutes ago it started, and minutes it ran.
    started: u64,
    minutes: u64,
    /// PSNR and cFID of the made-up scores (none while running).
    scores: Option<(f64, f64)>,
    /// Autoencoder and diffusion epochs with pictures.
    epochs: (usize, usize),
    note: &'static str,
}

const RUNS: &[DemoRun] = &[
    DemoRun {
        name: "quick-baseline",
        preset: "quick",
        set: &[],
        state: RunState::Finished,
        started: 180,
        minutes: 8,
        scores: Some((24.31, 103.4)),
        epochs: (6, 12),
        note: "the preset as shipped",
    },
    DemoRun {
        name: "quick-lr-1e-3",
        preset: "quick",
        set: &["diffusion_training.lr=1e-3", "diffusion.ema_decay=0.999"],
        state: RunState::Finished,
        started: 150,
        minutes: 8,
        scores: Some((24.28, 81.7)),
        epochs: (6, 12),
        note: "lower U-Net lr with EMA: sharper digits",
    },
    DemoRun {
        name: "cosine-long",
        preset: "cosine",
        set: &[],
        state: RunState::Finished,
        started: 120,
        minutes: 19,
        scores: Some((25.02, 46.2)),
        epochs: (8, 12),
        note: "",
    },
    DemoRun {
        name: "quick-wide-unet",
        preset: "quick",
        set: &["unet.channels=[64, 128, 256]"],
        state: RunState::Running,
        started: 6,
        minutes: 6,
        scores: None,
        epochs: (6, 3),
        note: "",
    },
    DemoRun {
        name: "seed-lr-1e-2",
        preset: "seed",
        set: &["ae_training.lr=1e-2"],
        state: RunState::Failed,
        started: 60,
        minutes: 2,
        scores: None,
        epochs: (1, 0),
        note: "diverged: lr too high",
    },
];

/// Write the demo runs under `root` (emptied first); returns the runs to
/// select for the comparison.
pub fn write(root: &Path, data: &Dataset) -> std::io::Result<Vec<PathBuf>> {
    if root.exists() {
        std::fs::remove_dir_all(root)?;
    }
    for run in RUNS {
        write_run(&root.join(run.name), run, config(run)?, data)?;
    }
    write_sweep(root, data)?;
    Ok(vec![root.join(RUNS[0].name), root.join(RUNS[1].name)])
}

fn config(run: &DemoRun) -> std::io::Result<ExperimentConfig> {
    let mut cfg = ExperimentConfig::preset(run.preset).map_err(std::io::Error::other)?;
    for s in run.set {
        cfg.apply_override(s).map_err(std::io::Error::other)?;
    }
    Ok(cfg)
}

/// A finished 3 × 2 sweep over the U-Net's learning rate and widths, with
/// made-up scores that favour wider U-Nets and the middle rate.
fn write_sweep(root: &Path, data: &Dataset) -> std::io::Result<()> {
    use crate::run::sweep::{Sweep, parse_axis};
    let axes = [
        "diffusion_training.lr=1e-3,2e-3,4e-3",
        "unet.channels=[32,64,128],[64,128,256]",
    ]
    .iter()
    .map(|a| parse_axis(a).map_err(std::io::Error::other))
    .collect::<Result<Vec<_>, _>>()?;
    let base = ExperimentConfig::preset("quick").map_err(std::io::Error::other)?;
    let (sweep, configs) =
        Sweep::plan(&base, axes).map_err(|p| std::io::Error::other(p.join("; ")))?;
    let dir = sweep.dir(root);
    let io = |e: crate::run::CheckpointError| std::io::Error::other(e.to_string());
    sweep.write(&dir, &configs).map_err(io)?;
    for (p, cfg) in sweep.points.iter().zip(configs) {
        let (lr, wide) = (p.index / 2, p.index % 2);
        let cfid = 95.0 - 18.0 * wide as f64 - [0.0, 14.0, 4.0][lr] + 1.5 * p.index as f64;
        let run = DemoRun {
            name: "",
            preset: "quick",
            set: &[],
            state: RunState::Finished,
            started: 400 - 10 * p.index as u64,
            minutes: 8 + 3 * wide as u64,
            scores: Some((24.2 + 0.05 * p.index as f64, cfid)),
            epochs: (2, 2),
            note: "",
        };
        let run_dir = sweep.run_dir(&dir, p.index);
        sweep.membership(p.index).write(&run_dir).map_err(io)?;
        write_run(&run_dir, &run, cfg, data)?;
    }
    Ok(())
}

/// `n` demo runs under `root` (the Runs panel's benchmark), cycling
/// through the demo's kinds of run.
pub fn write_many(root: &Path, data: &Dataset, n: usize) -> std::io::Result<()> {
    for i in 0..n {
        let run = &RUNS[i % RUNS.len()];
        write_run(
            &root.join(format!("{}-{i:04}", run.name)),
            run,
            config(run)?,
            data,
        )?;
    }
    Ok(())
}

fn write_run(
    dir: &Path,
    run: &DemoRun,
    cfg: ExperimentConfig,
    data: &Dataset,
) -> std::io::Result<()> {
    let io = |e: crate::run::CheckpointError| std::io::Error::other(e.to_string());
    let now = crate::run::status::now_secs();
    let originals = Dataset::to_f32(&data.test_images[..8 * PIXELS]);
    let digits = Dataset::to_f32(&data.test_images[200 * PIXELS..216 * PIXELS]);
    let rd = RunDir::create(dir, &cfg).map_err(io)?;
    let mut state = TrainState::fresh("flex");
    state.ae_step = run.epochs.0 * 71;
    state.diffusion_step = run.epochs.1 * 36;
    state.stage = if run.epochs.1 > 0 {
        Stage::Diffusion
    } else {
        Stage::Autoencoder
    };
    let checkpoint = dir.join(crate::run::CHECKPOINT);
    std::fs::create_dir_all(&checkpoint)?;
    let text = serde_json::to_string_pretty(&state).map_err(std::io::Error::other)?;
    std::fs::write(checkpoint.join(crate::run::STATE), text)?;
    let started = now - run.started * 60;
    RunStatus {
        state: run.state,
        message: (run.state == RunState::Failed)
            .then(|| "the autoencoder loss became NaN at step 112; training stopped".to_string()),
        started,
        heartbeat: if run.state == RunState::Running {
            now
        } else {
            started + run.minutes * 60
        },
        origin: Some(run.preset.into()),
    }
    .write(dir)
    .map_err(io)?;
    if let Some((psnr, cfid)) = run.scores {
        demo_scores(psnr, cfid).keep(dir).map_err(io)?;
    }
    manage::set_note(dir, run.note).map_err(io)?;
    let quality = |e: usize, of: usize| 1.0 - e as f32 / (of as f32 + 1.0);
    for e in 1..=run.epochs.0 {
        let blurred = map_images(&originals, |img| mix(img, quality(e, run.epochs.0)));
        let picture = grid(&[originals.clone(), blurred].concat(), SIDE, 8, 2, 1);
        rd.keep_media(
            &MediaKind::Reconstructions.file_name(e),
            &png_bytes(&picture),
        )
        .map_err(io)?;
    }
    for e in 1..=run.epochs.1 {
        // Worse-scored runs stay blurrier.
        let floor = run.scores.map_or(0.5, |(_, cfid)| (cfid / 200.0) as f32);
        let soft = floor + (1.0 - floor) * quality(e, run.epochs.1);
        let samples = map_images(&digits, |img| mix(img, soft));
        let picture = grid(&samples, SIDE, 8, 2, 1);
        rd.keep_media(&MediaKind::Samples.file_name(e), &png_bytes(&picture))
            .map_err(io)?;
    }
    Ok(())
}

/// An image blurred by `amount` (0 sharp, 1 blurred through).
fn mix(img: &[f32], amount: f32) -> Vec<f32> {
    blur(img, 2)
        .into_iter()
        .zip(img)
        .map(|(b, &o)| amount * b + (1.0 - amount) * o)
        .collect()
}

fn demo_scores(psnr: f64, cfid: f64) -> FinalScores {
    FinalScores {
        psnr,
        ssim: 0.89 + (psnr - 24.0) * 0.02,
        ssim_gaussian: 0.91 + (psnr - 24.0) * 0.02,
        test_images: 1000,
        dataset: "offline MNIST subset (demo data)".into(),
        cfid: Some(cfid),
        confidence: Some(0.95 - cfid / 2000.0),
        class_entropy: Some(0.99),
        n_samples: 1000,
        sampler: "ddim".into(),
        steps: 50,
        seed: 0,
        classifier: None,
        guidance: None,
        class_accuracy: None,
        date: crate::run::utc_stamp(),
    }
}
