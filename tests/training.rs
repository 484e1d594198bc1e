//! Training behaviour on a tiny config and synthetic data: losses fall,
//! runs repeat with a seed, checkpoints load back exactly, a stopped run
//! resumes onto the same loss curve, bad checkpoints are clear errors, and
//! a conditional model draws the class it is asked for.

mod common;

use std::path::Path;

use crossbeam_channel::unbounded;
use latentlab::config::ExperimentConfig;
use latentlab::pipeline::LatentDiffusion;
use latentlab::train::trainer::Outcome;
use latentlab::train::worker::{self, Start, TrainJob};
use latentlab::train::{Command, Event, Stage, Worker};

fn job(dir: &Path, cfg: Option<ExperimentConfig>) -> TrainJob {
    TrainJob {
        run_dir: dir.to_path_buf(),
        start: cfg.map_or(Start::Resume, Start::New),
        device: common::device(),
        backend_name: "flex".into(),
        data: common::synthetic_dataset(320, 40),
        origin: None,
    }
}

/// Train synchronously; returns the outcome and every event.
fn train(dir: &Path, cfg: Option<ExperimentConfig>) -> (Outcome, Vec<Event>) {
    let (tx, rx) = unbounded();
    let (_cmd_tx, cmd_rx) = unbounded();
    let outcome = worker::run(job(dir, cfg), tx, cmd_rx)
        .map_err(|(e, _)| e.to_string())
        .unwrap();
    (outcome, rx.try_iter().collect())
}

fn losses(events: &[Event], stage: Stage) -> Vec<(usize, f32)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Losses { stage: s, points } if *s == stage => Some(points.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn mean(v: &[(usize, f32)]) -> f64 {
    v.iter().map(|p| p.1 as f64).sum::<f64>() / v.len() as f64
}

#[test]
fn both_losses_fall_and_the_run_reports_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (outcome, events) = train(dir.path(), Some(common::tiny_config()));
    assert_eq!(outcome, Outcome::Finished);

    // 320 images / batch 32 = 10 steps per epoch: 2 AE epochs, 3 diffusion epochs.
    let ae = losses(&events, Stage::Autoencoder);
    let diff = losses(&events, Stage::Diffusion);
    assert_eq!(
        ae.iter().map(|p| p.0).collect::<Vec<_>>(),
        (1..=20).collect::<Vec<_>>()
    );
    assert_eq!(diff.len(), 30);
    assert!(mean(&ae[15..]) < 0.7 * mean(&ae[..5]), "AE loss {:?}", ae);
    assert!(
        mean(&diff[24..]) < 0.85 * mean(&diff[..6]),
        "diffusion loss {:?}",
        diff
    );

    let recon: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Reconstructions {
                mean,
                originals,
                reconstructions,
                metrics,
                ..
            } => Some((*mean, originals.len(), reconstructions.len(), metrics.len())),
            _ => None,
        })
        .collect();
    assert_eq!(recon.len(), 2, "one reconstruction report per AE epoch");
    let (last, o, r, m) = recon[1];
    assert_eq!((o, r, m), (16 * 784, 16 * 784, 16));
    assert_eq!(last.images, 40, "the whole test split is scored");
    assert!(
        last.ssim > recon[0].0.ssim - 0.05 && last.psnr > 5.0,
        "{last:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Latents { dim: 16, labels, .. } if labels.len() == 40))
    );
    let samples = events
        .iter()
        .filter(|e| matches!(e, Event::Samples { .. }))
        .count();
    assert_eq!(samples, 3, "a preview per diffusion epoch");
    assert!(matches!(events.last(), Some(Event::Finished { .. })));
    // The run keeps a small picture (and latent map) of each epoch for its history.
    let mut media: Vec<String> = std::fs::read_dir(dir.path().join("media"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    media.sort();
    assert_eq!(
        media,
        [
            "latent-epoch-001.json",
            "latent-epoch-002.json",
            "recon-epoch-001.png",
            "recon-epoch-002.png",
            "samples-epoch-001.png",
            "samples-epoch-002.png",
            "samples-epoch-003.png"
        ]
    );
    let recon = image::open(dir.path().join("media/recon-epoch-002.png")).unwrap();
    assert_eq!((recon.width(), recon.height()), (16 * 30 + 2, 2 * 30 + 2));

    // The log on disk holds the same curve the events carried.
    let logged = common::logged_losses(dir.path());
    assert_eq!(logged.len(), 50);
    assert_eq!(logged[0].1, 1);
    assert!((logged[0].2 - ae[0].1 as f64).abs() < 1e-6);
    // The run samples after loading from disk.
    let model = LatentDiffusion::load(dir.path(), &common::device()).unwrap();
    let (images, _) = model
        .generate(&model.default_request(3, 1), &mut |_, _| true)
        .unwrap();
    assert_eq!(images.len(), 3 * 784);
    assert!(images.iter().all(|v| (0.0..=1.0).contains(v)));
}

#[test]
fn the_same_seed_repeats_the_same_losses() {
    let mut cfg = common::tiny_config();
    cfg.ae_training.max_steps = 8;
    cfg.diffusion_training.max_steps = 8;
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    train(a.path(), Some(cfg.clone()));
    train(b.path(), Some(cfg.clone()));
    assert_eq!(
        common::logged_losses(a.path()),
        common::logged_losses(b.path())
    );
    cfg.seed += 1;
    let c = tempfile::tempdir().unwrap();
    train(c.path(), Some(cfg));
    assert_ne!(
        common::logged_losses(a.path()),
        common::logged_losses(c.path())
    );
}

#[test]
fn a_stopped_run_resumes_onto_the_uninterrupted_curve() {
    let mut cfg = common::tiny_config();
    cfg.diffusion_training.epochs = 6;
    cfg.diffusion.ema_decay = 0.9; // the EMA weights must survive the restart too
    let whole = tempfile::tempdir().unwrap();
    let (outcome, _) = train(whole.path(), Some(cfg.clone()));
    assert_eq!(outcome, Outcome::Finished);

    // Stop once the diffusion stage is under way; the worker stops between
    // two steps, saves a checkpoint and says where.
    let split = tempfile::tempdir().unwrap();
    let worker = Worker::spawn(job(split.path(), Some(cfg)));
    let mut stopped_at = None;
    for event in worker.events.iter() {
        match event {
            Event::Losses {
                stage: Stage::Diffusion,
                ..
            } => worker.send(Command::Stop),
            Event::Stopped { checkpoint } => {
                assert!(checkpoint.is_some());
                stopped_at = Some(());
                break;
            }
            Event::Finished { .. } | Event::Failed { .. } => break,
            _ => {}
        }
    }
    worker.join();
    assert!(stopped_at.is_some(), "the run stopped before finishing");
    let partial = common::logged_losses(split.path());
    assert!(partial.len() < common::logged_losses(whole.path()).len());

    let (outcome, events) = train(split.path(), None);
    assert_eq!(outcome, Outcome::Finished);
    assert!(events.iter().any(|e| matches!(
        e,
        Event::RunStarted {
            resumed_at: Some((Stage::Diffusion, _)),
            ..
        }
    )));
    let (a, b) = (
        common::logged_losses(whole.path()),
        common::logged_losses(split.path()),
    );
    assert_eq!(
        a.len(),
        b.len(),
        "one log line per step, no gaps or repeats"
    );
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((&x.0, x.1), (&y.0, y.1));
        assert!(
            (x.2 - y.2).abs() <= 1e-6 * x.2.abs().max(1.0),
            "step {} of {}: {} vs {}",
            x.1,
            x.0,
            x.2,
            y.2
        );
    }
    // The epoch summaries agree too, including the epoch that was cut.
    let epochs = |dir: &Path| -> Vec<(String, u64, f64)> {
        std::fs::read_to_string(dir.join("epochs.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let stage = v["stage"].as_str().unwrap().to_string();
                (
                    stage,
                    v["epoch"].as_u64().unwrap(),
                    v["mean_loss"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    let (ea, eb) = (epochs(whole.path()), epochs(split.path()));
    assert_eq!(ea.len(), eb.len());
    for (x, y) in ea.iter().zip(&eb) {
        assert_eq!((&x.0, x.1), (&y.0, y.1));
        assert!(
            (x.2 - y.2).abs() <= 1e-6 * x.2.abs().max(1.0),
            "{x:?} vs {y:?}"
        );
    }
    // Same final weights: identical samples from both runs.
    let device = common::device();
    let sample = |dir: &Path| {
        let m = LatentDiffusion::load(dir, &device).unwrap();
        m.generate(&m.default_request(2, 5), &mut |_, _| true)
            .unwrap()
            .0
    };
    let (sa, sb) = (sample(whole.path()), sample(split.path()));
    assert!(sa.iter().zip(&sb).all(|(x, y)| (x - y).abs() < 1e-5));
}

#[test]
fn a_run_directory_is_not_overwritten_and_resume_needs_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::tiny_config();
    cfg.ae_training.max_steps = 2;
    cfg.diffusion_training.max_steps = 2;
    train(dir.path(), Some(cfg.clone()));
    let (tx, _rx) = unbounded();
    let (_c, crx) = unbounded();
    let err = worker::run(job(dir.path(), Some(cfg)), tx, crx)
        .unwrap_err()
        .0
        .to_string();
    assert!(
        err.contains("already holds a run") && err.contains("--resume"),
        "{err}"
    );
    let empty = tempfile::tempdir().unwrap();
    let (tx, _rx) = unbounded();
    let (_c, crx) = unbounded();
    let err = worker::run(job(empty.path(), None), tx, crx)
        .unwrap_err()
        .0
        .to_string();
    assert!(err.contains("no config.toml"), "{err}");
}

/// Two trainers on one run directory would interleave their checkpoints:
/// the second is refused while the first holds the run, and readers are not.
#[test]
fn a_run_being_trained_cannot_be_trained_twice() {
    use latentlab::run::checkpoint::RunDir;
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let cfg = common::tiny_config();
    let first = RunDir::create(&run, &cfg).unwrap();
    for second in [
        RunDir::open_for_training(&run).map(|_| ()),
        RunDir::create(&run, &cfg).map(|_| ()),
    ] {
        let err = second.unwrap_err().to_string();
        assert!(
            err.contains("another latentlab process is training this run")
                || err.contains("already holds a run"),
            "{err}"
        );
    }
    let err = RunDir::open_for_training(&run).unwrap_err().to_string();
    assert!(err.contains("train.lock"), "{err}");
    RunDir::open(&run).expect("a reader does not need the lock");
    drop(first);
    RunDir::open_for_training(&run).expect("the lock goes with the first trainer");
}

#[test]
fn damaged_or_mismatched_checkpoints_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::tiny_config();
    cfg.ae_training.max_steps = 2;
    cfg.diffusion_training.max_steps = 2;
    train(dir.path(), Some(cfg));
    let device = common::device();
    assert!(LatentDiffusion::load(dir.path(), &device).is_ok());

    // A config edited into an invalid one names the file and the field.
    let cfg_path = dir.path().join("config.toml");
    let original = std::fs::read_to_string(&cfg_path).unwrap();
    let mut broken = ExperimentConfig::from_file(&cfg_path).unwrap();
    broken.diffusion_training.batch_size = 0;
    std::fs::write(&cfg_path, broken.to_toml()).unwrap();
    let err = LatentDiffusion::load(dir.path(), &device)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("config.toml") && err.contains("diffusion_training.batch_size"),
        "{err}"
    );
    std::fs::write(&cfg_path, &original).unwrap();

    // A config that no longer matches the weights.
    let mut wider = ExperimentConfig::from_file(&cfg_path).unwrap();
    wider.autoencoder.channels = vec![8, 24];
    std::fs::write(&cfg_path, wider.to_toml()).unwrap();
    let err = LatentDiffusion::load(dir.path(), &device)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("autoencoder.bpk") && err.contains("different model configuration"),
        "{err}"
    );
    std::fs::write(&cfg_path, &original).unwrap();

    // A truncated weights file.
    let weights = dir.path().join("checkpoint/unet.bpk");
    let bytes = std::fs::read(&weights).unwrap();
    let ema = dir.path().join("checkpoint/unet_ema.bpk");
    let _ = std::fs::remove_file(&ema);
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    let err = LatentDiffusion::load(dir.path(), &device)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("unet.bpk") && err.contains("damaged"), "{err}");
}

#[test]
fn checkpoints_carry_pytorch_named_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::tiny_config();
    cfg.ae_training.max_steps = 1;
    cfg.diffusion_training.max_steps = 1;
    train(dir.path(), Some(cfg));
    let bytes = std::fs::read(dir.path().join("checkpoint/autoencoder.safetensors")).unwrap();
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + len]).unwrap();
    let to_latent = &header["to_latent.weight"];
    // PyTorch's Linear layout is [out, in]: 16 latents from 16·7·7 features.
    assert_eq!(to_latent["shape"], serde_json::json!([16, 784]));
    assert_eq!(to_latent["dtype"], "F32");
    assert!(
        header
            .get("encoder.0.cabs.0.attention.squeeze.weight")
            .is_some()
    );
    let unet = std::fs::read(dir.path().join("checkpoint/unet.safetensors")).unwrap();
    let len = u64::from_le_bytes(unet[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&unet[8..8 + len]).unwrap();
    assert!(
        header.get("down.0.blocks.0.norm1.weight").is_some(),
        "GroupNorm gamma is named weight"
    );
}

#[test]
fn a_non_finite_loss_stops_the_stage_with_a_clear_error() {
    use burn::prelude::*;
    use latentlab::run::checkpoint::{RunDir, TrainState};
    use latentlab::train::trainer::{Ctx, DeviceData, LossBuffer, TrainError};

    let dir = tempfile::tempdir().unwrap();
    let cfg = common::tiny_config();
    let device = common::device();
    let (events, rx) = unbounded();
    let (_c, commands) = unbounded();
    let ctx = Ctx {
        run: RunDir::create(dir.path(), &cfg).unwrap(),
        cfg,
        state: TrainState::fresh("flex"),
        data: DeviceData::new(&common::synthetic_dataset(10, 10), &device),
        device: device.clone(),
        events,
        commands,
        last_checkpoint: None,
        loans: Vec::new(),
    };
    let mut buffer = LossBuffer::new(Stage::Diffusion);
    let value = |v: f32| Tensor::<1>::from_data(TensorData::new(vec![v], [1]), &device);
    buffer.push(1, value(0.5), 32);
    buffer.flush(&ctx).unwrap();
    buffer.push(2, value(0.4), 32);
    buffer.push(3, value(f32::NAN), 32);
    let err = buffer.flush(&ctx).unwrap_err();
    assert!(
        matches!(
            err,
            TrainError::NonFinite {
                step: 3,
                stage: "diffusion",
                ..
            }
        ),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains("last good checkpoint is kept") && message.contains("resume"),
        "{message}"
    );
    // Only the finite losses before the failure were reported.
    let reported: Vec<_> = rx
        .try_iter()
        .filter(|e| matches!(e, Event::Losses { .. }))
        .collect();
    assert_eq!(reported.len(), 1);
}

#[test]
fn resuming_on_other_data_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::tiny_config();
    cfg.ae_training.max_steps = 2;
    cfg.diffusion_training.max_steps = 2;
    train(dir.path(), Some(cfg));
    let mut other = job(dir.path(), None);
    other.data = common::synthetic_dataset(300, 40);
    let (tx, _rx) = unbounded();
    let (_c, crx) = unbounded();
    let err = worker::run(other, tx, crx).unwrap_err().0.to_string();
    assert!(
        err.contains("was trained on") && err.contains("320 training images"),
        "{err}"
    );
    assert!(
        err.contains("300 training images") && err.contains("--data-dir"),
        "{err}"
    );
}

#[test]
fn a_reader_never_moves_checkpoints_and_finds_an_interrupted_save() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::tiny_config();
    cfg.ae_training.max_steps = 2;
    cfg.diffusion_training.max_steps = 2;
    train(dir.path(), Some(cfg));
    // As if a save stopped between its renames: only checkpoint.old remains.
    let (cur, old) = (
        dir.path().join("checkpoint"),
        dir.path().join("checkpoint.old"),
    );
    std::fs::rename(&cur, &old).unwrap();
    let device = common::device();
    assert!(LatentDiffusion::load(dir.path(), &device).is_ok());
    assert!(!cur.exists() && old.exists(), "reading renamed nothing");
    // The trainer puts it back when it resumes.
    let (outcome, _) = train(dir.path(), None);
    assert_eq!(outcome, Outcome::Finished);
    assert!(cur.join("state.json").exists() && !old.exists());
}

#[test]
fn a_stop_while_the_run_scores_itself_ends_it_unscored_at_once() {
    let mut cfg = common::tiny_config();
    // Scoring samples trains a classifier first: a Stop must not wait for it.
    cfg.checkpoint.final_samples = 2000;
    let dir = tempfile::tempdir().unwrap();
    let worker = Worker::spawn(job(dir.path(), Some(cfg)));
    let mut asked = None;
    let mut unscored_why = None;
    for event in worker.events.iter() {
        match event {
            Event::Scoring { .. } if asked.is_none() => {
                asked = Some(std::time::Instant::now());
                worker.send(Command::Stop);
            }
            Event::Finished { unscored, .. } => {
                unscored_why = unscored;
                break;
            }
            Event::Stopped { .. } | Event::Failed { .. } => break,
            _ => {}
        }
    }
    worker.join();
    let waited = asked.expect("the run started scoring").elapsed();
    assert!(
        waited.as_secs() < 30,
        "a Stop while scoring took {waited:?}"
    );
    let why = unscored_why.expect("a finished run that is not scored says why");
    assert!(why.contains("stopped while scoring"), "{why}");
    assert!(!dir.path().join("eval.json").exists());
    let status: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("status.json")).unwrap())
            .unwrap();
    // Stopped, so that a sweep (or a resume) comes back to score it.
    assert_eq!(status["state"], "stopped");
}

#[test]
fn a_conditional_run_previews_one_row_per_class() {
    let mut cfg = common::tiny_config();
    cfg.apply_override("unet.classes=10").unwrap();
    cfg.diffusion_training.epochs = 1;
    let dir = tempfile::tempdir().unwrap();
    let (outcome, events) = train(dir.path(), Some(cfg));
    assert_eq!(outcome, Outcome::Finished);
    let n = events
        .iter()
        .find_map(|e| match e {
            Event::Samples { images, .. } => Some(images.len() / 784),
            _ => None,
        })
        .unwrap();
    assert_eq!(n, 40, "four of each of ten classes");
    let grid = image::open(dir.path().join("media/samples-epoch-001.png")).unwrap();
    // Four 28-pixel cells with 2-pixel padding across, ten rows down.
    assert_eq!((grid.width(), grid.height()), (4 * 30 + 2, 10 * 30 + 2));
}

/// Two classes a glance tells apart: a bright square in the top-left
/// quadrant (class 0) or the bottom-right one (class 1), jittered.
fn two_square_dataset(train: usize, test: usize) -> latentlab::data::Dataset {
    let image = |i: usize| -> Vec<u8> {
        let (ox, oy) = if i.is_multiple_of(2) {
            (3, 3)
        } else {
            (15, 15)
        };
        let (jx, jy) = (i * 7 % 4, i * 5 % 4);
        let mut px = vec![0u8; 784];
        for y in oy + jy..oy + jy + 9 {
            for x in ox + jx..ox + jx + 9 {
                px[y * 28 + x] = 255;
            }
        }
        px
    };
    let make = |r: std::ops::Range<usize>| -> (Vec<u8>, Vec<u8>) {
        (
            r.clone().flat_map(image).collect(),
            r.map(|i| (i % 2) as u8).collect(),
        )
    };
    let mut data = common::synthetic_dataset(0, 0);
    (data.train_images, data.train_labels) = make(0..train);
    (data.test_images, data.test_labels) = make(train..train + test);
    data
}

#[test]
fn conditional_training_learns_to_draw_the_class_asked_for() {
    let mut cfg = common::tiny_config();
    for set in [
        "unet.classes=10",
        "diffusion.standardize_latents=true",
        "sampling.sampler=\"ddim\"",
        "ae_training.epochs=4",
        "diffusion_training.epochs=20",
    ] {
        cfg.apply_override(set).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let mut j = job(dir.path(), Some(cfg));
    j.data = two_square_dataset(320, 40);
    let (tx, rx) = unbounded();
    let (_cmd_tx, cmd_rx) = unbounded();
    let outcome = worker::run(j, tx, cmd_rx)
        .map_err(|(e, _)| e.to_string())
        .unwrap();
    drop(rx);
    assert_eq!(outcome, Outcome::Finished);

    let model = LatentDiffusion::load(dir.path(), &common::device()).unwrap();
    let per_class = 16;
    let mut req = model.default_request(2 * per_class, 7);
    req.classes = Some((0..2 * per_class).map(|i| i / per_class).collect());
    req.guidance = 3.0;
    let (images, _) = model.generate(&req, &mut |_, _| true).unwrap();
    // Which quadrant holds more light decides what a sample drew.
    let drew = |img: &[f32]| -> usize {
        let mass = |x0: usize, y0: usize| -> f32 {
            (y0..y0 + 14)
                .flat_map(|y| (x0..x0 + 14).map(move |x| (x, y)))
                .map(|(x, y)| img[y * 28 + x])
                .sum()
        };
        usize::from(mass(14, 14) > mass(0, 0))
    };
    let right = images
        .chunks(784)
        .enumerate()
        .filter(|(i, img)| drew(img) == i / per_class)
        .count();
    assert!(
        right >= 2 * per_class * 9 / 10,
        "{right} of {} samples drew the class asked for",
        2 * per_class
    );
}
