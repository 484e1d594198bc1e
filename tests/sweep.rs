//! `latentlab sweep`: a grid of tiny runs trained locally (and resumed), a
//! bad grid refused before anything runs, and a Slurm array job whose task
//! body trains, then resumes, its grid point.

mod common;

use std::path::Path;

use common::{bin, stderr};

/// `latentlab sweep` over the quick preset cut to a few steps.
fn sweep(runs: &Path, extra: &[&str]) -> std::process::Command {
    let mut c = bin();
    c.args(["--threads", "2", "sweep", "--preset", "quick"])
        .args(["--set", "ae_training.max_steps=2"])
        .args(["--set", "diffusion_training.max_steps=2"])
        .args(["--set", "checkpoint.eval_images=10"])
        .args(["--set", "checkpoint.final_samples=0"])
        .arg("--runs-dir")
        .arg(runs)
        .args(extra);
    c
}

fn listed(runs: &Path) -> Vec<serde_json::Value> {
    let o = bin()
        .args(["runs", "--json", "--runs-dir"])
        .arg(runs)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Make a finished run look like one whose trainer died mid-run.
fn interrupt(run: &Path) {
    let path = run.join("status.json");
    let mut status: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    status["state"] = "running".into();
    status["heartbeat"] = 1_000.into();
    std::fs::write(&path, status.to_string()).unwrap();
}

#[test]
fn a_two_point_sweep_trains_both_runs_and_resumes_only_what_is_unfinished() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let grid = ["--grid", "diffusion_training.lr=1e-3,2e-3"];
    let o = sweep(&runs, &grid).args(["--jobs", "2"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("2 of 2 runs finished"),
        "{}",
        stderr(&o)
    );
    let rows = listed(&runs);
    assert_eq!(rows.len(), 2, "{rows:?}");
    let id = rows[0]["sweep"].as_str().unwrap().to_string();
    assert!(id.starts_with("quick-sweep-"), "{id}");
    let mut lrs: Vec<String> = rows
        .iter()
        .map(|r| {
            assert_eq!(r["sweep"], id.as_str());
            assert_eq!(r["status"], "finished");
            r["sweep_values"]["diffusion_training.lr"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    lrs.sort();
    assert_eq!(lrs, ["1e-3", "2e-3"]);
    let dir = runs.join(&id);
    let first = dir.join("000-lr=1e-3");
    let second = dir.join("001-lr=2e-3");
    // The run's config carries its grid value; each job logged on its own.
    let cfg = latentlab::config::ExperimentConfig::from_file(&second.join("config.toml")).unwrap();
    assert!((cfg.diffusion_training.lr - 2e-3).abs() < 1e-12);
    assert!(dir.join("logs/001-lr=2e-3.log").is_file());

    // The same command again: nothing to do.
    let state = std::fs::read(first.join("checkpoint/state.json")).unwrap();
    let o = sweep(&runs, &grid).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stderr(&o).matches("finished already; skipped").count(),
        2,
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read(first.join("checkpoint/state.json")).unwrap(),
        state
    );

    // An interrupted point is resumed; the finished one is left alone.
    interrupt(&second);
    let o = sweep(&runs, &grid).output().unwrap();
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("000-lr=1e-3: finished already; skipped"),
        "{err}"
    );
    assert!(err.contains("001-lr=2e-3: resuming"), "{err}");
    assert_eq!(
        listed(&runs)
            .iter()
            .filter(|r| r["status"] == "finished")
            .count(),
        2
    );
}

#[test]
fn a_bad_grid_value_is_exit_2_before_anything_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let o = sweep(
        &runs,
        &[
            "--grid",
            "unet.heads=2,0",
            "--grid",
            "ae_training.lr=1e-3,oops",
        ],
    )
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("nothing was started"), "{err}");
    assert!(err.contains("grid point 1 (ae_training.lr=oops)"), "{err}");
    assert!(err.contains("grid point 2: unet.heads"), "{err}");
    assert!(!runs.exists(), "no directory is made for a refused sweep");
    let o = sweep(&runs, &["--grid", "ae_training.lr=[1,2"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn the_slurm_script_passes_bash_n_and_its_task_trains_then_resumes_its_point() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let script = tmp.path().join("sweep.sbatch");
    let o = sweep(
        &runs,
        &["--grid", "ae_training.lr=1e-3,3e-3", "--time", "00:30:00"],
    )
    .arg("--emit")
    .arg("slurm")
    .arg(&script)
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&script).unwrap();
    for line in [
        "#SBATCH --array=0-1",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --time=00:30:00",
        "#SBATCH --signal=B:INT@120",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
    assert!(!text.contains("--gres"), "no GPU asked for a CPU sweep");
    let n = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(n.status.success(), "{}", String::from_utf8_lossy(&n.stderr));
    let rows = listed(&runs);
    assert!(rows.is_empty(), "emitting trains nothing: {rows:?}");
    let logs = text
        .lines()
        .find_map(|l| l.strip_prefix("#SBATCH --output="))
        .unwrap();
    let logs = Path::new(logs).parent().unwrap();
    assert!(
        logs.is_dir(),
        "Slurm needs {} before a task starts",
        logs.display()
    );

    let task = || {
        std::process::Command::new("bash")
            .arg(&script)
            .env("SLURM_ARRAY_TASK_ID", "1")
            .env("SLURM_CPUS_PER_TASK", "1")
            .env("LATENTLAB_NO_DOWNLOAD", "1")
            .output()
            .unwrap()
    };
    let o = task();
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = listed(&runs);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["status"], "finished");
    assert_eq!(rows[0]["sweep_values"]["ae_training.lr"], "3e-3");
    // A requeued task finds its run finished; a retried one resumes it.
    let o = task();
    assert!(stderr(&o).contains("finished already"), "{}", stderr(&o));
    let id = rows[0]["sweep"].as_str().unwrap();
    interrupt(&runs.join(id).join("001-lr=3e-3"));
    let o = task();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("resuming"), "{}", stderr(&o));
    assert_eq!(listed(&runs)[0]["status"], "finished");
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_every_running_job_with_a_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let grid = [
        "--grid",
        "ae_training.lr=1e-3,2e-3",
        "--set",
        "ae_training.max_steps=100000",
    ];
    let child = sweep(&runs, &grid)
        .args(["--jobs", "2", "--set", "checkpoint.log_every=1"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until both jobs have logged a step.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let logged = |runs: &Path| -> usize {
        latentlab::run::list_runs(runs)
            .iter()
            .filter(|d| {
                std::fs::read_to_string(d.join("losses.jsonl")).is_ok_and(|t| !t.is_empty())
            })
            .count()
    };
    while logged(&runs) < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the jobs never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.contains("run the same command again to resume"),
        "{err}"
    );
    let rows = listed(&runs);
    assert_eq!(rows.len(), 2);
    for r in &rows {
        assert_eq!(r["status"], "stopped", "each job saved and stopped: {r}");
        assert!(r["ae_step"].as_u64().unwrap() > 0, "with a checkpoint: {r}");
    }
    // Each job got one interrupt: it saved; none quit without saving.
    let id = rows[0]["sweep"].as_str().unwrap();
    for log in std::fs::read_dir(runs.join(id).join("logs")).unwrap() {
        let text = std::fs::read_to_string(log.unwrap().path()).unwrap();
        assert!(text.contains("saving a checkpoint first"), "{text}");
        assert!(!text.contains("aborted without saving"), "{text}");
    }
}
