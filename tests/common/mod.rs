//! Shared test fixtures: a tiny experiment config and a synthetic dataset
//! whose images have structure to learn (bars and blobs), so training tests
//! run in seconds on a CPU.
#![allow(dead_code)]

#[cfg(feature = "gui")]
pub mod window;

use latentlab::config::ExperimentConfig;
use latentlab::data::{Dataset, DatasetKind};

pub fn tiny_config() -> ExperimentConfig {
    let mut cfg = ExperimentConfig::preset("seed").expect("seed preset parses");
    for set in [
        "name=\"tiny\"",
        "autoencoder.channels=[8, 16]",
        "autoencoder.attention_reduction=4",
        "autoencoder.latent_dim=16",
        "autoencoder.latent_shape=[1, 4, 4]",
        "unet.channels=[8, 16]",
        "unet.down_blocks=[1, 1]",
        "unet.up_blocks=[0, 1]",
        "unet.attention=[false, true]",
        "unet.heads=2",
        "unet.time_dim=8",
        "unet.groups=4",
        "diffusion.timesteps=100",
        "sampling.steps=10",
        "ae_training.epochs=2",
        "ae_training.batch_size=32",
        "ae_training.lr=3e-3",
        "diffusion_training.epochs=3",
        "diffusion_training.batch_size=32",
        "diffusion_training.lr=2e-3",
        "checkpoint.every_steps=0",
        "checkpoint.log_every=4",
        // Scoring samples trains a classifier: only the tests of it do.
        "checkpoint.final_samples=0",
    ] {
        cfg.apply_override(set).expect("tiny override applies");
    }
    assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
    cfg
}

/// One 28×28 image: a bar at a class-dependent angle plus a blob.
fn image(i: usize) -> Vec<u8> {
    let class = i % 10;
    let angle = class as f64 * std::f64::consts::PI / 10.0;
    let (s, c) = angle.sin_cos();
    let (bx, by) = (8.0 + (i * 7 % 13) as f64, 8.0 + (i * 5 % 11) as f64);
    let mut px = vec![0u8; 784];
    for y in 0..28 {
        for x in 0..28 {
            let (dx, dy) = (x as f64 - 13.5, y as f64 - 13.5);
            let dist_line = (dx * s - dy * c).abs();
            let along = (dx * c + dy * s).abs();
            let bar = if dist_line < 1.8 && along < 10.0 {
                1.0
            } else {
                0.0
            };
            let blob = (-((x as f64 - bx).powi(2) + (y as f64 - by).powi(2)) / 8.0).exp();
            px[y * 28 + x] = ((bar + 0.7 * blob).min(1.0) * 255.0) as u8;
        }
    }
    px
}

pub fn synthetic_dataset(train: usize, test: usize) -> Dataset {
    let make = |range: std::ops::Range<usize>| -> (Vec<u8>, Vec<u8>) {
        let images = range.clone().flat_map(image).collect();
        let labels = range.map(|i| (i % 10) as u8).collect();
        (images, labels)
    };
    let (train_images, train_labels) = make(0..train);
    let (test_images, test_labels) = make(train..train + test);
    Dataset {
        kind: DatasetKind::Mnist,
        train_images,
        train_labels,
        test_images,
        test_labels,
        rows: 28,
        cols: 28,
        source: "synthetic test images".into(),
    }
}

pub fn device() -> burn::tensor::Device {
    burn::tensor::Device::default()
}

/// The rows of a run's losses.jsonl: (stage, step, loss).
pub fn logged_losses(dir: &std::path::Path) -> Vec<(String, u64, f64)> {
    std::fs::read_to_string(dir.join("losses.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["stage"].as_str().unwrap().to_string(),
                v["step"].as_u64().unwrap(),
                v["loss"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// The latentlab binary, with downloads off (tests use the offline data).
pub fn bin() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_latentlab"));
    c.env("LATENTLAB_NO_DOWNLOAD", "1");
    c
}

pub fn latentlab(args: &[&str]) -> std::process::Output {
    bin().args(args).output().expect("the binary runs")
}

pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `latentlab train` on the quick preset cut to a few steps, run in `cwd`,
/// with `extra` arguments after it (later `--set`s win).
pub fn tiny_train_command(cwd: &std::path::Path, extra: &[&str]) -> std::process::Command {
    let mut c = bin();
    c.current_dir(cwd)
        .args(["--threads", "1", "train", "--preset", "quick"])
        .args(["--set", "ae_training.max_steps=2"])
        .args(["--set", "diffusion_training.max_steps=2"])
        .args(["--set", "checkpoint.eval_images=10"])
        .args(["--set", "checkpoint.final_samples=0"])
        .args(extra);
    c
}
