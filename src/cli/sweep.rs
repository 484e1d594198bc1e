//! `latentlab sweep`: train a grid of runs, one after another or N at a
//! time, or write a Slurm array job that trains them on a cluster; and
//! `latentlab sweep-point`, which trains one grid point (what both run).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Args;

use super::train::{TrainArgs, run as train};
use super::{BackendArgs, CliError, ConfigArgs};
use crate::config::ExperimentConfig;
use crate::run::status::RunStatus;
use crate::run::sweep::{Need, Sweep, need, parse_axis};

#[derive(Debug, Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// A swept key and its values: key=v1,v2,… (repeatable, up to 3 keys).
    /// Values split at top-level commas: 'unet.channels=[16,32],[32,64]'.
    #[arg(long, value_name = "KEY=V1,V2,…", required = true)]
    pub grid: Vec<String>,
    /// Where the sweep's directory goes (RUNS/<sweep-id>/).
    #[arg(long, value_name = "DIR", default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Runs trained at once; the CPU threads (--threads, default all) are
    /// split between them, and with --device cuda job k uses cuda:k.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub jobs: usize,
    /// Directory holding the dataset's IDX files.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Write a job script instead of training: `--emit slurm FILE` writes a
    /// Slurm array job, one task per grid point.
    #[arg(long, num_args = 2, value_names = ["KIND", "FILE"])]
    pub emit: Vec<String>,
    /// Slurm: CPUs per task.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub cpus_per_task: usize,
    /// Slurm: GPUs per task (default 1 with --device cuda…, else 0).
    #[arg(long, value_name = "N")]
    pub gpus: Option<usize>,
    /// Slurm: wall-time limit per task.
    #[arg(long, default_value = "04:00:00", value_name = "HH:MM:SS")]
    pub time: String,
    /// Slurm: the partition to submit to.
    #[arg(long, value_name = "NAME")]
    pub partition: Option<String>,
}

#[derive(Debug, Args)]
pub struct SweepPointArgs {
    /// The sweep's directory (RUNS/<sweep-id>).
    #[arg(long, value_name = "DIR")]
    pub sweep: PathBuf,
    /// The grid point to train (0-based; Slurm's array task id).
    #[arg(long, value_name = "I")]
    pub index: usize,
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// Plan the sweep (every point validated), write it, then train or emit.
pub fn run(args: SweepArgs, b: &BackendArgs) -> Result<(), CliError> {
    if !(1..=64).contains(&args.jobs) {
        return Err(CliError::usage(format!(
            "--jobs {}: must be 1 to 64",
            args.jobs
        )));
    }
    let c = &args.config;
    let base = ExperimentConfig::load(c.preset.as_deref(), c.config.as_deref(), &c.overrides)?;
    let axes = args
        .grid
        .iter()
        .map(|g| parse_axis(g))
        .collect::<Result<Vec<_>, _>>()
        .map_err(CliError::usage)?;
    let (mut sweep, configs) = Sweep::plan(&base, axes).map_err(|problems| {
        CliError::usage(format!(
            "the sweep has {} problem(s); nothing was started:\n{}",
            problems.len(),
            problems
                .iter()
                .map(|p| format!("  {p}"))
                .collect::<Vec<_>>()
                .join("\n")
        ))
    })?;
    sweep.adopt_existing(&args.runs_dir);
    let dir = sweep.dir(&args.runs_dir);
    sweep.write(&dir, &configs)?;
    eprintln!(
        "sweep {}: {} runs in {}",
        sweep.id,
        sweep.points.len(),
        dir.display()
    );
    match args.emit.as_slice() {
        [] => run_queue(&sweep, &dir, &args, b),
        [kind, file] if kind == "slurm" => {
            // Slurm opens each task's output file before the script runs.
            let logs = dir.join("logs");
            std::fs::create_dir_all(&logs)
                .map_err(|e| CliError::failed(format!("{}: {e}", logs.display())))?;
            let script = slurm_script(&sweep, &dir, &args, b)?;
            let file = PathBuf::from(file);
            crate::run::write_atomic(&file, script.as_bytes())?;
            eprintln!(
                "wrote {}; submit it with `sbatch {}` (each task resumes its run if it already \
                 has a checkpoint)",
                file.display(),
                file.display()
            );
            Ok(())
        }
        [kind, _] => Err(CliError::usage(format!(
            "--emit {kind}: the one job script latentlab writes is `slurm`"
        ))),
        _ => unreachable!("clap takes exactly two values"),
    }
}

/// Train the points that need it, `--jobs` at a time, each in a child
/// process (`sweep-point`); a failed point is reported and the next starts.
fn run_queue(sweep: &Sweep, dir: &Path, args: &SweepArgs, b: &BackendArgs) -> Result<(), CliError> {
    let exe = std::env::current_exe().map_err(|e| CliError::failed(e.to_string()))?;
    let mut queue = VecDeque::new();
    for p in &sweep.points {
        match need(&sweep.run_dir(dir, p.index)) {
            Need::Done => eprintln!("  {}: finished already; skipped", p.name),
            Need::Elsewhere => eprintln!("  {}: being trained by another process; skipped", p.name),
            Need::Train => queue.push_back(p.index),
        }
    }
    let total = match b.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let per_job = (total / args.jobs).max(1);
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    // Ctrl-C: every running job is asked to save a checkpoint and stop; the
    // queue starts nothing new and waits for them.
    let _ = ctrlc::set_handler(move || {
        if !flag.swap(true, Ordering::SeqCst) {
            eprintln!("\nstopping the sweep: every running job saves a checkpoint first");
        }
    });
    let logs = dir.join("logs");
    // Dropped on any early return: its jobs are stopped, never orphaned.
    let mut running = Running(Vec::new());
    let mut failed = Vec::new();
    let mut forwarded = false;
    while !(running.0.is_empty() && (queue.is_empty() || stop.load(Ordering::SeqCst))) {
        while running.0.len() < args.jobs && !stop.load(Ordering::SeqCst) {
            let Some(index) = queue.pop_front() else {
                break;
            };
            let slot = (0..args.jobs)
                .find(|s| running.0.iter().all(|r| r.1 != *s))
                .unwrap_or(0);
            let mut cmd = std::process::Command::new(&exe);
            cmd.args(["--threads", &per_job.to_string()]);
            if let Some(name) = &b.backend {
                cmd.args(["--backend", name]);
            }
            let device = match b.device.as_str() {
                "cuda" if args.jobs > 1 => format!("cuda:{slot}"),
                other => other.to_string(),
            };
            cmd.args([
                "--device",
                &device,
                "sweep-point",
                "--index",
                &index.to_string(),
            ])
            .arg("--sweep")
            .arg(dir);
            if let Some(d) = &args.data_dir {
                cmd.arg("--data-dir").arg(d);
            }
            let name = &sweep.points[index].name;
            if args.jobs > 1 {
                // Several progress bars at once are unreadable: each job
                // writes to its own log.
                std::fs::create_dir_all(&logs).map_err(|e| CliError::failed(e.to_string()))?;
                let log = std::fs::File::create(logs.join(format!("{name}.log")))
                    .map_err(|e| CliError::failed(e.to_string()))?;
                let err = log
                    .try_clone()
                    .map_err(|e| CliError::failed(e.to_string()))?;
                cmd.stdout(Stdio::from(log)).stderr(Stdio::from(err));
                eprintln!("  {name}: started (log in {})", logs.display());
            } else {
                eprintln!("  {name}: training");
            }
            // Its own process group: the terminal's Ctrl-C reaches only
            // this process, which passes exactly one on to each job (a
            // second would make a job quit without saving).
            #[cfg(unix)]
            std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
            let child = cmd.spawn().map_err(|e| CliError::failed(e.to_string()))?;
            running.0.push((index, slot, child));
        }
        std::thread::sleep(Duration::from_millis(100));
        if stop.load(Ordering::SeqCst) && !forwarded {
            forwarded = true;
            for (_, _, child) in &running.0 {
                interrupt(child);
            }
        }
        let mut k = 0;
        while k < running.0.len() {
            match running.0[k].2.try_wait() {
                Ok(None) => k += 1,
                Ok(Some(status)) => {
                    let (index, _, _) = running.0.remove(k);
                    let name = &sweep.points[index].name;
                    match status.code() {
                        Some(0) if need(&sweep.run_dir(dir, index)) == Need::Done => {
                            eprintln!("  {name}: finished")
                        }
                        Some(0) => eprintln!("  {name}: stopped; run the sweep again to resume it"),
                        _ => {
                            let why = RunStatus::read(&sweep.run_dir(dir, index))
                                .and_then(|s| s.message)
                                .unwrap_or_else(|| format!("exit status {status}"));
                            eprintln!("  {name}: failed: {why}");
                            failed.push(index);
                        }
                    }
                }
                Err(e) => return Err(CliError::failed(e.to_string())),
            }
        }
    }
    let done = sweep
        .points
        .iter()
        .filter(|p| need(&sweep.run_dir(dir, p.index)) == Need::Done)
        .count();
    eprintln!(
        "sweep {}: {done} of {} runs finished{}",
        sweep.id,
        sweep.points.len(),
        if failed.is_empty() {
            String::new()
        } else {
            format!(", {} failed", failed.len())
        }
    );
    if stop.load(Ordering::SeqCst) {
        return Err(CliError {
            code: 130,
            message: "stopped; run the same command again to resume the sweep".into(),
        });
    }
    if !failed.is_empty() {
        return Err(CliError::failed(format!(
            "{} run(s) failed (see above); run the same command again to retry them",
            failed.len()
        )));
    }
    Ok(())
}

/// Train one grid point: skip it when finished, resume it when its run
/// directory holds a run, start it otherwise.
pub fn run_point(args: SweepPointArgs, b: &BackendArgs) -> Result<(), CliError> {
    let sweep = Sweep::read(&args.sweep)
        .ok_or_else(|| {
            CliError::usage(format!(
                "{} holds no sweep.json; pass the directory `latentlab sweep` made",
                args.sweep.display()
            ))
        })?
        .map_err(CliError::usage)?;
    if args.index >= sweep.points.len() {
        return Err(CliError::usage(format!(
            "--index {}: the sweep has points 0 to {}",
            args.index,
            sweep.points.len() - 1
        )));
    }
    let run = sweep.run_dir(&args.sweep, args.index);
    let name = &sweep.points[args.index].name;
    match need(&run) {
        Need::Done => {
            eprintln!("{name}: finished already; nothing to do");
            return Ok(());
        }
        Need::Elsewhere => {
            return Err(CliError::failed(format!(
                "{}: another process is training it (its status beats)",
                run.display()
            )));
        }
        Need::Train => {}
    }
    sweep.membership(args.index).write(&run)?;
    let resume = run.join(crate::run::CONFIG).exists();
    if resume {
        eprintln!("{name}: resuming");
    }
    let train_args = TrainArgs {
        config: ConfigArgs {
            preset: None,
            config: (!resume).then(|| sweep.point_config(&args.sweep, args.index)),
            overrides: Vec::new(),
        },
        run_dir: (!resume).then(|| run.clone()),
        runs_dir: PathBuf::from("runs"),
        dataset: None,
        data_dir: args.data_dir,
        resume: resume.then_some(run),
    };
    train(train_args, b)
}

/// A Slurm array job: one task per grid point, each training (or resuming)
/// its own run in the shared sweep directory.
fn slurm_script(
    sweep: &Sweep,
    dir: &Path,
    args: &SweepArgs,
    b: &BackendArgs,
) -> Result<String, CliError> {
    let abs = |p: &Path| std::path::absolute(p).map_err(|e| CliError::failed(e.to_string()));
    let exe = std::env::current_exe().map_err(|e| CliError::failed(e.to_string()))?;
    let dir = abs(dir)?;
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let gpus = args
        .gpus
        .unwrap_or(if b.device.starts_with("cuda") { 1 } else { 0 });
    let mut s = String::from("#!/bin/bash\n");
    s += &format!("#SBATCH --job-name={}\n", sweep.id);
    s += &format!("#SBATCH --array=0-{}\n", sweep.points.len() - 1);
    s += &format!("#SBATCH --cpus-per-task={}\n", args.cpus_per_task);
    s += &format!("#SBATCH --time={}\n", args.time);
    // '%' would start a Slurm pattern.
    s += &format!(
        "#SBATCH --output={}/logs/%x-%a.out\n",
        dir.display().to_string().replace('%', "%%")
    );
    // SIGINT two minutes before the time limit: the task saves a checkpoint
    // and stops cleanly, and a requeued task resumes it.
    s += "#SBATCH --signal=B:INT@120\n";
    if gpus > 0 {
        s += &format!("#SBATCH --gres=gpu:{gpus}\n");
    }
    if let Some(p) = &args.partition {
        s += &format!("#SBATCH --partition={p}\n");
    }
    s += &format!(
        "# latentlab sweep {}: {} runs over {}\n",
        sweep.id,
        sweep.points.len(),
        sweep
            .axes
            .iter()
            .map(|a| a.key.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    s += "# A requeued or retried task resumes its run from its last checkpoint.\n";
    s += "set -euo pipefail\n";
    s += &format!(
        "mkdir -p {}\n",
        quote(&dir.join("logs").display().to_string())
    );
    s += &format!(
        "if [ -z \"${{LATENTLAB:-}}\" ]; then LATENTLAB={}; fi\n",
        quote(&exe.display().to_string())
    );
    let mut cmd = String::from("exec \"$LATENTLAB\" --threads \"${SLURM_CPUS_PER_TASK:-");
    cmd += &format!("{}}}\"", args.cpus_per_task);
    if let Some(name) = &b.backend {
        cmd += &format!(" --backend {}", quote(name));
    }
    // Slurm gives each task its own GPU, which CUDA numbers 0.
    let device = if b.device.starts_with("cuda") {
        "cuda"
    } else {
        b.device.as_str()
    };
    cmd += &format!(" --device {}", quote(device));
    cmd += &format!(
        " sweep-point --sweep {} --index \"$SLURM_ARRAY_TASK_ID\"",
        quote(&dir.display().to_string())
    );
    if let Some(d) = &args.data_dir {
        cmd += &format!(" --data-dir {}", quote(&abs(d)?.display().to_string()));
    }
    s += &cmd;
    s.push('\n');
    Ok(s)
}

/// The jobs running now. Dropped with jobs in it (an error cut the queue
/// short), it stops them with a checkpoint and waits for them.
struct Running(Vec<(usize, usize, Child)>);

impl Drop for Running {
    fn drop(&mut self) {
        for (_, _, child) in &self.0 {
            interrupt(child);
        }
        for (_, _, child) in &mut self.0 {
            let _ = child.wait();
        }
    }
}

/// Ask a job to stop as Ctrl-C would: it saves a checkpoint first.
fn interrupt(child: &Child) {
    #[cfg(unix)]
    // SAFETY: kill(2) on the pid of a child this process has not reaped.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
    #[cfg(not(unix))]
    let _ = child;
}
