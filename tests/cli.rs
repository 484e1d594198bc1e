//! The command line as a user meets it: exit codes, one line per problem,
//! errors that name the file or field, and the happy paths end to end.

mod common;

use std::path::Path;

use common::{latentlab, stderr};

#[test]
fn every_command_has_help() {
    for cmd in [
        "train", "sample", "eval", "denoise", "metrics", "info", "bench",
    ] {
        let o = latentlab(&[cmd, "--help"]);
        assert!(o.status.success(), "{cmd} --help");
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("Usage: latentlab"),
            "{cmd}"
        );
    }
}

#[test]
fn bad_arguments_exit_2() {
    let o = latentlab(&["train", "--preset", "nope"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown preset 'nope'") && stderr(&o).contains("seed, quick"));

    let o = latentlab(&["sample", "--n", "4"]);
    assert_eq!(o.status.code(), Some(2), "missing --run and --out");

    let o = latentlab(&["train", "--preset", "seed", "--backend", "cuda-magic"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown backend 'cuda-magic'"),
        "{}",
        stderr(&o)
    );

    let o = latentlab(&["train", "--preset", "seed", "--device", "cuda:0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("flex backend runs on the CPU only"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn an_invalid_config_lists_one_line_per_problem() {
    let dir = tempfile::tempdir().unwrap();
    let o = latentlab(&[
        "info",
        "--preset",
        "seed",
        "--set",
        "ae_training.lr=-1",
        "--set",
        "unet.heads=0",
        "--set",
        "sampling.eta=2",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("  ")).collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(
        err.contains("ae_training.lr: -1 is outside the allowed range (0, 1)"),
        "{err}"
    );
    assert!(
        err.contains("unet.heads") && err.contains("sampling.eta"),
        "{err}"
    );

    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "name = 3\n").unwrap();
    let o = latentlab(&["info", "--config", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("bad.toml"), "{}", stderr(&o));

    let o = latentlab(&["info", "--config", "/no/such/file.toml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("/no/such/file.toml"));
}

#[test]
fn info_reports_the_seed_parameter_counts_as_json() {
    let o = latentlab(&["info", "--preset", "seed", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["autoencoder_params"], 224_945);
    assert_eq!(v["unet_params"], 624_097);
    assert_eq!(v["latent_shape"], serde_json::json!([1, 8, 8]));
    assert!(v["dataset_source"].as_str().unwrap().contains("MNIST"));
}

#[test]
fn commands_on_a_missing_run_explain_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    for args in [
        vec!["sample", "--run", d, "--out", "/tmp/x"],
        vec!["eval", "--run", d],
        vec!["train", "--resume", d],
    ] {
        let o = latentlab(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&o).contains("not a latentlab run directory"),
            "{}",
            stderr(&o)
        );
    }
}

fn write_png(path: &Path, f: impl Fn(u32, u32) -> u8, side: u32) {
    image::GrayImage::from_fn(side, side, |x, y| image::Luma([f(x, y)]))
        .save(path)
        .unwrap();
}

#[test]
fn metrics_of_two_images() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, small) = (
        dir.path().join("a.png"),
        dir.path().join("b.png"),
        dir.path().join("s.png"),
    );
    write_png(&a, |x, y| ((x * 9 + y * 5) % 256) as u8, 28);
    write_png(&b, |x, y| ((x * 9 + y * 5) % 256) as u8 / 2, 28);
    write_png(&small, |_, _| 0, 8);
    let o = latentlab(&[
        "metrics",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let (psnr, ssim, gauss) = (
        v["psnr"].as_f64().unwrap(),
        v["ssim"].as_f64().unwrap(),
        v["ssim_gaussian"].as_f64().unwrap(),
    );
    assert!(psnr > 5.0 && psnr < 20.0, "{psnr}");
    assert!(ssim > 0.0 && ssim < 1.0 && gauss > 0.0 && gauss < 1.0);

    let same = latentlab(&[
        "metrics",
        a.to_str().unwrap(),
        a.to_str().unwrap(),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&same.stdout).unwrap();
    assert!(v["psnr"].is_null() && v["ssim"].as_f64().unwrap() == 1.0);

    let o = latentlab(&["metrics", a.to_str().unwrap(), small.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("must be the same size"));
    let o = latentlab(&["metrics", a.to_str().unwrap(), "/no/such.png"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("/no/such.png"));
}

#[test]
fn train_sample_eval_and_denoise_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    let o = latentlab(&[
        "train",
        "--preset",
        "quick",
        "--run-dir",
        run_s,
        "--set",
        "ae_training.max_steps=6",
        "--set",
        "diffusion_training.max_steps=4",
        "--set",
        "checkpoint.eval_images=50",
        "--set",
        "checkpoint.log_every=2",
        "--set",
        "checkpoint.final_samples=0",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("offline MNIST subset"),
        "says the subset is in use: {err}"
    );
    assert!(err.contains("autoencoder epoch   1"), "{err}");
    assert!(err.contains("finished"), "{err}");

    let out = dir.path().join("samples");
    let o = latentlab(&[
        "sample",
        "--run",
        run_s,
        "--n",
        "5",
        "--sampler",
        "ddim",
        "--steps",
        "5",
        "--seed",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for name in ["sample_0000.png", "sample_0004.png", "grid.png"] {
        assert!(out.join(name).exists(), "{name}");
    }
    let img = image::open(out.join("sample_0000.png")).unwrap();
    assert_eq!((img.width(), img.height()), (28, 28));
    // Nothing is overwritten without --force.
    let again = latentlab(&[
        "sample",
        "--run",
        run_s,
        "--n",
        "5",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("--force"));
    // DPM-Solver++ samples in few steps, and takes no η.
    let dpm = dir.path().join("dpm");
    let dpm_s = dpm.to_str().unwrap();
    let o = latentlab(&[
        "sample",
        "--run",
        run_s,
        "--n",
        "3",
        "--sampler",
        "dpmpp",
        "--steps",
        "5",
        "--out",
        dpm_s,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(dpm.join("sample_0002.png").exists());
    let o = latentlab(&[
        "sample",
        "--run",
        run_s,
        "--sampler",
        "dpmpp",
        "--eta",
        "0.5",
        "--out",
        dpm_s,
        "--force",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("DPM-Solver++ is deterministic"),
        "{}",
        stderr(&o)
    );
    // Classes and guidance need a class-conditional run.
    for flags in [["--class", "3"], ["--guidance", "2"]] {
        let mut args = vec!["sample", "--run", run_s, "--out", dpm_s, "--force"];
        args.extend(flags);
        let o = latentlab(&args);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("this run is unconditional"),
            "{}",
            stderr(&o)
        );
    }
    let bad_steps = latentlab(&[
        "sample",
        "--run",
        run_s,
        "--steps",
        "0",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(bad_steps.status.code(), Some(2));

    let o = latentlab(&["eval", "--run", run_s, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["test_images"], 1000, "the whole test split of the subset");
    // Kept beside the run, under a name of its own.
    let kept = std::fs::read_to_string(run.join("evals/reconstruction.json")).unwrap();
    let kept: serde_json::Value = serde_json::from_str(&kept).unwrap();
    assert_eq!(kept["psnr"], v["psnr"]);
    for key in ["psnr", "ssim", "ssim_gaussian"] {
        assert!(v[key].as_f64().is_some(), "{key}");
    }

    let gif = dir.path().join("d.gif");
    let o = latentlab(&[
        "denoise",
        "--run",
        run_s,
        "--n",
        "2",
        "--steps",
        "10",
        "--sampler",
        "ddim",
        "--out",
        gif.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = std::fs::read(&gif).unwrap();
    assert_eq!(&bytes[..6], b"GIF89a");
}

/// `bench --json` says which vector code flex's kernels ran, so a figure
/// names the CPU path it measured: AVX-512 only in a build with the
/// `avx512` feature on a CPU that has it (a build without it is how
/// `bench/compare.py --isa avx2` stands in for an AVX2-only laptop).
#[cfg(feature = "flex")]
#[test]
fn bench_reports_the_kernels_it_measured() {
    let o = latentlab(&[
        "--backend",
        "flex",
        "bench",
        "--json",
        "--batches",
        "2",
        "--seconds",
        "0.05",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).expect("bench --json");
    let row = &rows[0];
    assert_eq!(row["batch"], 2);
    assert!(
        row["ddim50_images_per_sec"]
            .as_f64()
            .is_some_and(|r| r > 0.0)
    );
    assert_eq!(row["simd"], expected_simd(), "{row}");
}

#[cfg(all(feature = "flex", target_arch = "x86_64"))]
fn expected_simd() -> &'static str {
    if cfg!(feature = "avx512") && std::is_x86_feature_detected!("avx512f") {
        "avx512"
    } else if std::is_x86_feature_detected!("avx2") {
        "avx2"
    } else {
        "baseline"
    }
}

#[cfg(all(feature = "flex", not(target_arch = "x86_64")))]
fn expected_simd() -> &'static str {
    "baseline"
}
