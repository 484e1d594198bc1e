//! `latentlab runs`: every run in a runs directory with the status it kept,
//! including runs whose process died without a word.

mod common;

use common::{latentlab, stderr, tiny_train_command};

fn listed(runs: &str) -> Vec<serde_json::Value> {
    let o = latentlab(&["runs", "--runs-dir", runs, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn runs_lists_each_run_with_its_status_and_config() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let r = runs.to_str().unwrap();
    let o = tiny_train_command(tmp.path(), &["--runs-dir", r])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = listed(r);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let run = &rows[0];
    assert!(run["name"].as_str().unwrap().starts_with("quick-"), "{run}");
    assert_eq!(run["status"], "finished");
    assert_eq!(run["preset"], "quick");
    assert_eq!(run["dataset"], "mnist");
    assert_eq!(run["config"]["diffusion"]["schedule"], "cosine");
    assert_eq!(
        (run["ae_step"].as_u64(), run["diffusion_step"].as_u64()),
        (Some(2), Some(2))
    );
    // Reconstructions are scored when training ends; samples were not
    // asked for (final_samples=0).
    for key in ["psnr", "ssim", "ssim_gaussian"] {
        assert!(
            run[key].as_f64().is_some_and(f64::is_finite),
            "{key}: {run}"
        );
    }
    for key in ["cfid", "confidence", "class_entropy"] {
        assert!(run[key].is_null(), "{key}: not scored");
    }

    // A run that says it is running but stopped beating long ago died.
    let dir = runs.join(run["name"].as_str().unwrap());
    let path = dir.join("status.json");
    let mut status: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    status["state"] = "running".into();
    status["heartbeat"] = 1_000.into();
    std::fs::write(&path, status.to_string()).unwrap();
    assert_eq!(listed(r)[0]["status"], "interrupted");

    // The table names it too; a missing directory is exit 2.
    let o = latentlab(&["runs", "--runs-dir", r]);
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("interrupted") && table.contains("quick-"),
        "{table}"
    );
    let o = latentlab(&["runs", "--runs-dir", "/no/such/runs"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_finished_run_keeps_its_final_scores_and_eval_never_replaces_them() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let runs = tmp.path().join("runs");
    let r = runs.to_str().unwrap();
    // A quick classifier in a private cache, so the run scores with it.
    let o = common::bin()
        .env("LATENTLAB_CACHE_DIR", &cache)
        .args([
            "--threads",
            "1",
            "classifier",
            "train",
            "--dataset",
            "mnist",
        ])
        .args(["--epochs", "1"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = tiny_train_command(tmp.path(), &["--runs-dir", r])
        .env("LATENTLAB_CACHE_DIR", &cache)
        .args(["--set", "checkpoint.final_samples=24"])
        .args(["--set", "sampling.steps=5"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("scores kept in eval.json"),
        "{}",
        stderr(&o)
    );
    let row = &listed(r)[0];
    let dir = runs.join(row["name"].as_str().unwrap());
    let text = std::fs::read_to_string(dir.join("eval.json")).unwrap();
    let kept: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(kept["n_samples"], 24);
    assert_eq!(kept["test_images"], 1000, "the whole test split");
    assert_eq!(
        (kept["sampler"].as_str(), kept["steps"].as_u64()),
        (Some("dpmpp"), Some(5))
    );
    assert_eq!(kept["seed"], 0);
    assert_eq!(
        kept["classifier"]["epochs"], 1,
        "the cached classifier scored it"
    );
    for key in [
        "psnr",
        "ssim",
        "ssim_gaussian",
        "cfid",
        "confidence",
        "class_entropy",
    ] {
        assert_eq!(
            row[key], kept[key],
            "`runs --json` reports {key} from eval.json"
        );
        assert!(
            kept[key].as_f64().is_some_and(f64::is_finite),
            "{key}: {kept}"
        );
    }

    // `eval` with the same sampler, seed and count draws the same samples,
    // keeps its result under evals/ and leaves eval.json alone.
    let d = dir.to_str().unwrap();
    let o = common::bin()
        .env("LATENTLAB_CACHE_DIR", &cache)
        .args([
            "--threads",
            "1",
            "eval",
            "--run",
            d,
            "--samples",
            "24",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let close = |k: &str| (v[k].as_f64().unwrap() - kept[k].as_f64().unwrap()).abs() < 1e-6;
    assert!(
        close("cfid") && close("confidence") && close("psnr"),
        "{v} vs {kept}"
    );
    assert!(dir.join("evals/dpmpp-5-0.json").is_file());
    assert_eq!(
        std::fs::read_to_string(dir.join("eval.json")).unwrap(),
        text
    );

    // Resuming a finished run keeps the scores it has.
    let o = common::bin()
        .env("LATENTLAB_CACHE_DIR", &cache)
        .args(["--threads", "1", "train", "--resume", d])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(dir.join("eval.json")).unwrap(),
        text
    );
}

/// A run directory with a config and nothing trained.
fn bare_run(runs: &std::path::Path, name: &str, set: &[&str]) -> std::path::PathBuf {
    let mut cfg = common::tiny_config();
    for s in set {
        cfg.apply_override(s).unwrap();
    }
    let dir = runs.join(name);
    latentlab::run::RunDir::create(&dir, &cfg).unwrap();
    dir
}

#[test]
fn summaries_name_the_values_that_differ_and_the_history_in_order() {
    use latentlab::run::summary::differing_keys;
    use latentlab::run::{MediaKind, RunSummary};
    let tmp = tempfile::tempdir().unwrap();
    let a = bare_run(tmp.path(), "a", &["unet.channels=[8, 32]"]);
    let b = bare_run(tmp.path(), "b", &["ae_training.lr=1e-3"]);
    let media = a.join("media");
    std::fs::create_dir_all(&media).unwrap();
    for f in [
        "samples-epoch-002.png",
        "recon-epoch-010.png",
        "latent-epoch-002.json",
        "samples-epoch-001.png",
        "recon-epoch-002.png",
        "other.png",
    ] {
        std::fs::write(media.join(f), b"").unwrap();
    }
    let (ra, rb) = (RunSummary::read(&a, 0), RunSummary::read(&b, 0));
    assert_eq!(ra.values["unet.channels"], "[8, 32]");
    assert_eq!(
        differing_keys([&ra, &rb]),
        ["ae_training.lr", "unet.channels"]
    );
    assert!(differing_keys([&ra]).is_empty());
    // The history walks pictures only; latent maps are looked up by epoch.
    let history = ra.history();
    let order: Vec<(MediaKind, usize)> = history.iter().map(|m| (m.kind, m.epoch)).collect();
    assert_eq!(
        order,
        [
            (MediaKind::Reconstructions, 2),
            (MediaKind::Reconstructions, 10),
            (MediaKind::Samples, 1),
            (MediaKind::Samples, 2)
        ]
    );
    assert_eq!(ra.media_at(MediaKind::Reconstructions, 9).unwrap().epoch, 2);
    assert!(ra.media_at(MediaKind::Samples, 0).is_none());
    assert_eq!(ra.media_at(MediaKind::LatentMap, 9).unwrap().epoch, 2);
    assert_eq!(
        ra.status, "stopped",
        "no status, no checkpoint: not finished"
    );
}

#[test]
fn notes_renames_and_deletes_refuse_a_training_run() {
    use latentlab::run::manage;
    use latentlab::run::status::RunStatus;
    let tmp = tempfile::tempdir().unwrap();
    let dir = bare_run(tmp.path(), "r", &[]);
    manage::set_note(&dir, "lr too high?").unwrap();
    assert_eq!(
        latentlab::run::RunSummary::read(&dir, 0).note,
        "lr too high?"
    );

    // Held by a trainer (its lock): no rename, no delete.
    let held = latentlab::run::RunDir::open_for_training(&dir).unwrap();
    let e = manage::delete(&dir).unwrap_err().to_string();
    assert!(e.contains("another latentlab process is training"), "{e}");
    assert!(manage::rename(&dir, "s").is_err());
    drop(held);
    // A status that still beats (a trainer on another machine): refused too.
    RunStatus::running().write(&dir).unwrap();
    let e = manage::delete(&dir).unwrap_err().to_string();
    assert!(e.contains("is training"), "{e}");
    let mut st = RunStatus::running();
    st.state = latentlab::run::status::RunState::Stopped;
    st.write(&dir).unwrap();

    for bad in ["", "..", "a/b", "../x"] {
        assert!(manage::rename(&dir, bad).is_err(), "{bad:?}");
    }
    let renamed = manage::rename(&dir, "lr-3e-3").unwrap();
    assert_eq!(renamed, tmp.path().join("lr-3e-3"));
    assert!(!dir.exists() && renamed.join("note.txt").is_file());
    assert!(
        manage::delete(tmp.path()).is_err(),
        "not a run: never deleted"
    );
    manage::delete(&renamed).unwrap();
    assert!(!renamed.exists());
}
