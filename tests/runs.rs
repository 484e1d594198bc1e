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
    for key in [
        "psnr",
        "ssim",
        "ssim_gaussian",
        "cfid",
        "confidence",
        "class_entropy",
    ] {
        assert!(run[key].is_null(), "{key}: not scored yet");
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
