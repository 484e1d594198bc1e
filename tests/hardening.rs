//! Hostile input through the command line, and faults during checkpoint
//! writes: a bad value is exit 2 with a line naming it, never a panic, an
//! abort or a hang; a crash or a failed write loses nothing.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{bin, latentlab, stderr, tiny_train_command};

/// Exit 2, no panic, and a line naming `field`.
fn refused(o: &Output, field: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.lines().any(|l| l.trim_start().starts_with(field)),
        "no line names {field}: {err}"
    );
}

#[test]
fn unbounded_or_zero_sizes_are_refused_by_info() {
    for (set, field) in [
        ("unet.channels=[16,0,64]", "unet.channels"),
        ("unet.time_dim=100000", "unet.time_dim"),
        ("unet.heads=9223372036854775807", "unet.heads"),
        ("unet.head_dim=9223372036854775807", "unet.head_dim"),
        (
            "autoencoder.latent_shape=[4611686018427387904,4,4]",
            "autoencoder.latent_shape",
        ),
        (
            "diffusion_training.batch_size=0",
            "diffusion_training.batch_size",
        ),
    ] {
        let o = latentlab(&["info", "--preset", "quick", "--set", set]);
        refused(&o, field);
    }
}

/// The quick preset's config.toml with one line replaced.
fn run_dir_with(dir: &Path, from: &str, to: &str) {
    let text = latentlab::config::ExperimentConfig::preset("quick")
        .unwrap()
        .to_toml();
    assert!(text.contains(from), "{from}");
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("config.toml"), text.replace(from, to)).unwrap();
}

#[test]
fn a_run_whose_config_toml_is_bad_is_refused_by_sample_and_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    run_dir_with(&run, "channels = [16, 32, 64]", "channels = [16, 0, 64]");
    let run_s = run.to_str().unwrap();
    let out = tmp.path().join("out");
    let o = latentlab(&["sample", "--run", run_s, "--out", out.to_str().unwrap()]);
    refused(&o, "unet.channels");
    assert!(stderr(&o).contains("config.toml"), "{}", stderr(&o));
    let o = latentlab(&["train", "--resume", run_s]);
    refused(&o, "unet.channels");
    assert!(!out.exists(), "nothing was written");
}

/// Four IDX files: `train` images and `test` images of noise.
fn idx_dir(dir: &Path, train: usize, test: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let images = |n: usize| {
        let mut b = vec![0, 0, 8, 3];
        for v in [n as u32, 28, 28] {
            b.extend(v.to_be_bytes());
        }
        b.extend((0..n * 784).map(|i| (i * 37 % 251) as u8));
        b
    };
    let labels = |n: usize| {
        let mut b = vec![0, 0, 8, 1];
        b.extend((n as u32).to_be_bytes());
        b.extend((0..n).map(|i| (i % 10) as u8));
        b
    };
    for (name, bytes) in [
        ("train-images-idx3-ubyte", images(train)),
        ("train-labels-idx1-ubyte", labels(train)),
        ("t10k-images-idx3-ubyte", images(test)),
        ("t10k-labels-idx1-ubyte", labels(test)),
    ] {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

fn tiny_train(cwd: &Path, extra: &[&str]) -> Output {
    tiny_train_command(cwd, extra).output().unwrap()
}

#[test]
fn a_run_name_cannot_escape_the_runs_directory_and_eval_needs_two_test_images() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path().join("a/b");
    std::fs::create_dir_all(&cwd).unwrap();
    let o = tiny_train(&cwd, &["--set", "name=\"../../x\""]);
    assert!(o.status.success(), "{}", stderr(&o));
    let runs: Vec<PathBuf> = std::fs::read_dir(cwd.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let name = runs[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("______x-"), "{name}");
    let outside: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(outside, ["a"], "nothing was written outside runs/");

    // cFID against a one-image test split: exit 2, before any sampling.
    let data = tmp.path().join("one-test-image");
    idx_dir(&data, 20, 1);
    let o = latentlab(&[
        "eval",
        "--run",
        runs[0].to_str().unwrap(),
        "--samples",
        "4",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--samples"), "{}", stderr(&o));
}

#[test]
fn a_huge_image_is_refused_before_it_is_decoded() {
    let tmp = tempfile::tempdir().unwrap();
    let big = tmp.path().join("big.png");
    image::GrayImage::new(12_000, 12_000).save(&big).unwrap();
    assert!(
        std::fs::metadata(&big).unwrap().len() < 1 << 20,
        "compresses well"
    );
    let b = big.to_str().unwrap();
    let o = latentlab(&["metrics", b, b]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("12000×12000") && err.contains("--max-pixels"),
        "{err}"
    );
}

#[cfg(feature = "gui")]
#[test]
fn bench_ui_refuses_a_duration_that_never_ends() {
    for v in ["nan", "inf", "-1"] {
        let arg = format!("--seconds={v}");
        let o = latentlab(&["bench-ui", &arg, "--phases", "headless"]);
        assert_eq!(o.status.code(), Some(2), "{v}: {}", stderr(&o));
        assert!(stderr(&o).contains("--seconds"), "{}", stderr(&o));
    }
}

const SHORT_RUN: &[&str] = &[
    "--set",
    "ae_training.max_steps=6",
    "--set",
    "diffusion_training.max_steps=6",
    "--set",
    "ae_training.batch_size=32",
    "--set",
    "diffusion_training.batch_size=32",
    "--set",
    "checkpoint.every_steps=2",
    "--set",
    "checkpoint.log_every=1",
];

/// A crash at every point of a checkpoint write (after each file, each
/// rename), one after another in the same run, resumes onto the curve of
/// the run that was never interrupted.
#[test]
fn crashes_at_every_point_of_a_checkpoint_write_resume_onto_the_same_curve() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    let w = whole.to_str().unwrap();
    let o = tiny_train(tmp.path(), &[&["--run-dir", w][..], SHORT_RUN].concat());
    assert!(o.status.success(), "{}", stderr(&o));

    let split = tmp.path().join("split");
    let s = split.to_str().unwrap();
    let mut crashes = 0;
    for point in 1..=12 {
        let o = if split.join("config.toml").exists() {
            bin()
                .args(["--threads", "1", "train", "--resume", s])
                .env("LATENTLAB_CRASH_AT", point.to_string())
                .output()
                .unwrap()
        } else {
            tiny_train_command(tmp.path(), &[&["--run-dir", s][..], SHORT_RUN].concat())
                .env("LATENTLAB_CRASH_AT", point.to_string())
                .output()
                .unwrap()
        };
        if o.status.success() {
            break;
        }
        // Killed (SIGABRT), not an error exit.
        assert_eq!(o.status.code(), None, "{}", stderr(&o));
        crashes += 1;
    }
    assert!(crashes >= 10, "only {crashes} crashes");
    let o = bin()
        .args(["--threads", "1", "train", "--resume", s])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let (a, b) = (common::logged_losses(&whole), common::logged_losses(&split));
    assert_eq!(a.len(), b.len(), "one line per step, no gaps or repeats");
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((&x.0, x.1), (&y.0, y.1));
        assert!(
            (x.2 - y.2).abs() <= 1e-6 * x.2.abs().max(1.0),
            "{x:?} vs {y:?}"
        );
    }
}

/// A checkpoint write that fails (EFBIG under a file-size limit) stops the
/// run with a message naming the file; the previous checkpoint is intact
/// and the run resumes from it.
#[cfg(unix)]
#[test]
fn a_failed_checkpoint_write_stops_the_run_and_keeps_the_last_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let r = run.to_str().unwrap();
    // 3 MiB: the autoencoder's files fit, the U-Net's optimiser state does not.
    let script = format!(
        "trap '' XFSZ; ulimit -f 3072; exec '{}' --threads 1 train --preset quick --run-dir '{r}' \
         --set ae_training.max_steps=2 --set diffusion_training.max_steps=2 \
         --set checkpoint.eval_images=10",
        env!("CARGO_BIN_EXE_latentlab")
    );
    let o = Command::new("bash")
        .args(["-c", &script])
        .env("LATENTLAB_NO_DOWNLOAD", "1")
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("File too large") && err.contains("checkpoint"),
        "{err}"
    );
    let state = std::fs::read_to_string(run.join("checkpoint/state.json")).unwrap();
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert_eq!(
        state["ae_done"], true,
        "the autoencoder's checkpoint is intact"
    );
    assert_eq!(state["diffusion_done"], false);
    // The run's status says so, and survives the process.
    let status = std::fs::read_to_string(run.join("status.json")).unwrap();
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["state"], "failed");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("File too large"),
        "{status}"
    );
    let o = latentlab(&["--threads", "1", "train", "--resume", r]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("resuming the diffusion stage"),
        "{}",
        stderr(&o)
    );
}

/// A window sampling while the trainer saves must get both models from one
/// checkpoint: never the autoencoder of one and the U-Net of the next.
#[test]
fn a_reader_never_mixes_the_models_of_two_checkpoints() {
    use latentlab::diffusion::sampler::to_vec;
    use latentlab::model::params::{flat_params, seeded};
    use latentlab::model::{Autoencoder, Unet};
    use latentlab::pipeline::LatentDiffusion;
    use latentlab::run::checkpoint::{CheckpointParts, RunDir, TrainState};

    let cfg = common::tiny_config();
    let models = move |k: u64| {
        let device = common::device();
        (
            seeded(&device, k, || Autoencoder::new(&cfg.autoencoder, &device)),
            seeded(&device, 100 + k, || Unet::new(&cfg.unet, 1, &device)),
        )
    };
    let first = |params: Vec<burn::tensor::Tensor<1>>| to_vec(params[0].clone())[0];
    let expected: Vec<(f32, f32)> = (0..2)
        .map(|k| {
            let (ae, unet) = models(k);
            (first(flat_params(&ae)), first(flat_params(&unet)))
        })
        .collect();
    assert_ne!(expected[0], expected[1]);

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let run = RunDir::create(&dir, &common::tiny_config()).unwrap();
    let save = move |run: &RunDir, pairs: &[(Autoencoder, Unet)], i: usize| {
        let mut state = TrainState::fresh("flex");
        state.diffusion_step = i;
        let (ae, unet) = &pairs[i % 2];
        run.save(CheckpointParts {
            state: &state,
            autoencoder: ae,
            ae_optim: None,
            unet: Some(unet),
            unet_optim: None,
            unet_ema: None::<&Unet>,
        })
        .unwrap();
    };
    let pairs = vec![models(0), models(1)];
    save(&run, &pairs, 0);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut i = 1;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                save(&run, &pairs, i);
                i += 1;
            }
            i
        })
    };
    let device = common::device();
    let (mut loads, mut busy) = (0, 0);
    let began = std::time::Instant::now();
    while began.elapsed() < std::time::Duration::from_secs(3) {
        match LatentDiffusion::load(&dir, &device) {
            Ok(m) => {
                let got = (first(flat_params(&m.ae)), first(flat_params(&m.unet)));
                assert_eq!(
                    got,
                    expected[m.state.diffusion_step % 2],
                    "models of two checkpoints mixed (state step {})",
                    m.state.diffusion_step
                );
                loads += 1;
            }
            // A trainer saving without pause can outrun the retries; that is
            // an error that says so, never a mix.
            Err(e) => {
                assert!(e.to_string().contains("kept changing"), "{e}");
                busy += 1;
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let saves = writer.join().unwrap();
    eprintln!("{loads} consistent loads, {busy} refused as busy, during {saves} saves");
    assert!(loads >= 20 && saves >= 20, "{loads} loads, {saves} saves");
}
