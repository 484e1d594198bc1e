//! The window-facing commands: the workbench (no sub-command), `screenshot`
//! and `bench-ui`. Without the `gui` feature they say how to run headless.

use std::path::PathBuf;

use clap::Args;

use super::{BackendArgs, CliError, ConfigArgs};

/// Options of the workbench window (used when no sub-command is given).
#[derive(Debug, Clone, Args)]
pub struct WindowArgs {
    /// Where the workbench keeps runs (default: the last one used, else ./runs).
    #[arg(long, value_name = "DIR")]
    pub runs_dir: Option<PathBuf>,
    /// Renderer of the window: glow (OpenGL, the default) or wgpu.
    #[arg(long, value_name = "glow|wgpu", default_value = "glow")]
    pub renderer: String,
}

#[derive(Debug, Args)]
pub struct ScreenshotArgs {
    /// Panel to show: experiment, loss, reconstructions, latent, denoising, samples or runs.
    #[arg(long)]
    pub panel: String,
    /// PNG file to write.
    #[arg(long, value_name = "FILE.png")]
    pub out: PathBuf,
    /// Overwrite OUT if it exists.
    #[arg(long)]
    pub force: bool,
    /// Window size in points, WIDTHxHEIGHT (the display must be as large).
    #[arg(long, default_value = "1280x800", value_name = "WxH")]
    pub size: String,
}

#[derive(Debug, Args)]
pub struct BenchUiArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Seconds measured in each phase (after the warm-up).
    #[arg(long, default_value_t = 20.0)]
    pub seconds: f64,
    /// Seconds of warm-up before measuring.
    #[arg(long, default_value_t = 5.0)]
    pub warmup: f64,
    /// Phases to run, in order: headless, reactive, fps60, uncapped, idle.
    #[arg(long, value_delimiter = ',', default_values_t = ["headless".to_string(), "reactive".into(), "fps60".into(), "uncapped".into(), "headless".into()])]
    pub phases: Vec<String>,
    /// Panel shown in the window phases (the loss plot is the busiest while training).
    #[arg(long, default_value = "loss")]
    pub panel: String,
    /// Fill the window's runs directory with N made-up runs first (what the
    /// Runs panel lists: `--panel runs --runs 200`).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub runs: usize,
    /// Run one phase in this process and print its result as JSON (used by the parent).
    #[arg(long, hide = true)]
    pub phase: Option<String>,
    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,
}

#[cfg(not(feature = "gui"))]
pub fn workbench(_: &WindowArgs, _: &BackendArgs) -> Result<(), CliError> {
    Err(CliError::usage(
        "this latentlab was built without the workbench window (feature `gui`); \
         run headless with `latentlab train --preset quick`, or rebuild with default features",
    ))
}

#[cfg(feature = "gui")]
fn renderer(name: &str) -> Result<crate::ui::RendererChoice, CliError> {
    match name {
        "glow" => Ok(crate::ui::RendererChoice::Glow),
        "wgpu" => Ok(crate::ui::RendererChoice::Wgpu),
        other => Err(CliError::usage(format!(
            "--renderer: unknown renderer '{other}'; use glow or wgpu"
        ))),
    }
}

/// Mesa's software OpenGL (llvmpipe: no GPU, or Xvfb) rasterises on worker
/// threads, one per core, which then compete with training. On the UI
/// thread it still holds 60 frames/s here and stays on the window's core
/// (measurements in docs/workbench.md). GPU drivers ignore the variable; a
/// value the user set is kept.
#[cfg(feature = "gui")]
fn prefer_inline_software_rendering() {
    if std::env::var_os("LP_NUM_THREADS").is_none() {
        // SAFETY: called before the window, the engine or any pool starts a
        // thread, so nothing reads the environment concurrently.
        unsafe { std::env::set_var("LP_NUM_THREADS", "0") };
    }
}

#[cfg(feature = "gui")]
pub fn workbench(args: &WindowArgs, b: &BackendArgs) -> Result<(), CliError> {
    prefer_inline_software_rendering();
    crate::backend::reserve_cpu_for_window();
    let renderer = renderer(&args.renderer)?;
    let kind = b.kind()?;
    crate::backend::set_threads(kind, crate::backend::threads_beside_window(b.threads));
    let opts = crate::ui::AppOptions {
        runs_dir: args.runs_dir.clone(),
        ..Default::default()
    };
    let device = (b.device != "auto").then(|| b.device.clone());
    crate::ui::run_workbench(opts, renderer, b.backend.clone(), device).map_err(CliError::failed)
}

#[cfg(feature = "gui")]
pub fn screenshot(args: ScreenshotArgs, window: &WindowArgs) -> Result<(), CliError> {
    prefer_inline_software_rendering();
    let names = crate::ui::Tab::ALL.map(|t| t.slug()).join(", ");
    let panel = crate::ui::Tab::parse(&args.panel).ok_or_else(|| {
        CliError::usage(format!(
            "--panel: unknown panel '{}'; use one of {names}",
            args.panel
        ))
    })?;
    let size = args
        .size
        .split_once('x')
        .and_then(|(w, h)| Some([w.parse::<f32>().ok()?, h.parse::<f32>().ok()?]))
        .filter(|[w, h]| (320.0..=8192.0).contains(w) && (240.0..=8192.0).contains(h))
        .ok_or_else(|| {
            CliError::usage(format!(
                "--size {}: expected WIDTHxHEIGHT between 320x240 and 8192x8192, e.g. 1280x800",
                args.size
            ))
        })?;
    crate::ui::screenshot(
        panel,
        &args.out,
        args.force,
        renderer(&window.renderer)?,
        size,
    )
    .map_err(CliError::failed)?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}

#[cfg(feature = "gui")]
pub fn bench_ui(args: BenchUiArgs, b: &BackendArgs) -> Result<(), CliError> {
    use crate::ui::bench::{self, Phase, PhaseResult};
    // NaN would never end a phase's timing loop; 0 s measures nothing.
    if args.runs > 0 && args.panel != "runs" {
        return Err(CliError::usage(
            "--runs: the made-up runs are listed by the Runs panel only; add --panel runs",
        ));
    }
    if args.runs > 10_000 {
        return Err(CliError::usage(format!(
            "--runs {}: at most 10000 made-up runs",
            args.runs
        )));
    }
    for (flag, value, min) in [
        ("--seconds", args.seconds, 0.1),
        ("--warmup", args.warmup, 0.0),
    ] {
        if !(min..=3600.0).contains(&value) {
            return Err(CliError::usage(format!(
                "{flag} {value}: must be a number of seconds in {min}..=3600"
            )));
        }
    }
    prefer_inline_software_rendering();
    match &args.phase {
        Some(name) => {
            let phase = Phase::parse(name)
                .ok_or_else(|| CliError::usage(format!("--phase: unknown phase '{name}'")))?;
            // Every phase, headless included, trains on the CPUs the window leaves.
            crate::backend::reserve_cpu_for_window();
            let c = &args.config;
            let mut overrides: Vec<String> = bench::BENCH_OVERRIDES
                .iter()
                .map(|s| s.to_string())
                .collect();
            overrides.extend(c.overrides.iter().cloned());
            let preset = c.preset.as_deref().or(if c.config.is_none() {
                Some("quick")
            } else {
                None
            });
            let cfg =
                crate::config::ExperimentConfig::load(preset, c.config.as_deref(), &overrides)?;
            let (kind, device) = super::common::device(b)?;
            let located = crate::data::locate(cfg.dataset, None, false, &|_| {})?;
            let data = crate::data::load(cfg.dataset, &located)?;
            let inj = bench::injected(data, kind, device);
            let r = match phase {
                Phase::Headless => bench::run_headless(cfg, inj, args.warmup, args.seconds),
                other => {
                    let tab = crate::ui::Tab::parse(&args.panel).ok_or_else(|| {
                        CliError::usage(format!("--panel: unknown panel '{}'", args.panel))
                    })?;
                    bench::run_window(other, tab, cfg, inj, args.warmup, args.seconds, args.runs)
                }
            }
            .map_err(CliError::failed)?;
            println!("{}", serde_json::to_string(&r).expect("results serialise"));
            Ok(())
        }
        None => {
            let exe = std::env::current_exe().map_err(|e| CliError::failed(e.to_string()))?;
            // Every phase, headless included, trains on the threads the
            // window would: the comparison is the window's cost alone.
            let threads = crate::backend::threads_beside_window(b.threads);
            eprintln!("bench-ui: training on {threads} thread(s) in every phase");
            let mut results: Vec<PhaseResult> = Vec::new();
            for phase in &args.phases {
                Phase::parse(phase)
                    .ok_or_else(|| CliError::usage(format!("--phases: unknown phase '{phase}'")))?;
                eprintln!(
                    "bench-ui: phase {phase} ({:.0} s warm-up + {:.0} s)…",
                    args.warmup, args.seconds
                );
                let mut cmd = std::process::Command::new(&exe);
                cmd.arg("bench-ui")
                    .args(["--phase", phase])
                    .args(["--seconds", &args.seconds.to_string()])
                    .args(["--warmup", &args.warmup.to_string()])
                    .args(["--panel", &args.panel])
                    .args(["--runs", &args.runs.to_string()])
                    .args(["--device", &b.device, "--threads", &threads.to_string()]);
                if let Some(name) = &b.backend {
                    cmd.args(["--backend", name]);
                }
                if let Some(p) = &args.config.preset {
                    cmd.args(["--preset", p]);
                }
                if let Some(f) = &args.config.config {
                    cmd.arg("--config").arg(f);
                }
                for o in &args.config.overrides {
                    cmd.args(["--set", o]);
                }
                let out = cmd.output().map_err(|e| CliError::failed(e.to_string()))?;
                let stdout = String::from_utf8_lossy(&out.stdout);
                let line = stdout.lines().rev().find(|l| l.starts_with('{'));
                match line.and_then(|l| serde_json::from_str::<PhaseResult>(l).ok()) {
                    Some(r) if out.status.success() => results.push(r),
                    _ => {
                        return Err(CliError::failed(format!(
                            "phase {phase} failed: {}",
                            String::from_utf8_lossy(&out.stderr).trim()
                        )));
                    }
                }
            }
            if args.json {
                super::common::print_json(
                    &serde_json::to_value(&results).expect("results serialise"),
                );
            } else {
                print!("{}", bench::report(&results));
            }
            Ok(())
        }
    }
}
