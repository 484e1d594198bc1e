//! `latentlab bench-ui`: training throughput with and without the window,
//! and the window's frame rate while training. Each phase runs in a child
//! process (winit allows one event loop per process), all on the same config
//! and data; the parent prints the comparison.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::app::{App, AppOptions, Injected};
use crate::config::ExperimentConfig;
use crate::data::Dataset;
use crate::train::{Command, Event, Start, TrainJob, Worker};

/// Settings that keep the measured window inside one steady stage.
pub const BENCH_OVERRIDES: &[&str] = &[
    "ae_training.epochs=200",
    "checkpoint.log_every=5",
    "checkpoint.every_steps=0",
    "checkpoint.eval_images=500",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Headless,
    /// The window as a person uses it: redrawn when the worker reports.
    Reactive,
    /// The window redrawn at 60 frames per second throughout.
    Fps60,
    /// The window redrawn as fast as it can.
    Uncapped,
    /// The window redrawn as fast as it can, with no training: what a frame costs.
    Idle,
}

impl Phase {
    pub fn parse(s: &str) -> Option<Phase> {
        Some(match s {
            "headless" => Phase::Headless,
            "reactive" => Phase::Reactive,
            "fps60" => Phase::Fps60,
            "uncapped" => Phase::Uncapped,
            "idle" => Phase::Idle,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Phase::Headless => "headless",
            Phase::Reactive => "reactive",
            Phase::Fps60 => "fps60",
            Phase::Uncapped => "uncapped",
            Phase::Idle => "idle",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PhaseResult {
    pub phase: String,
    pub images_per_sec: f64,
    pub seconds: f64,
    pub frames: usize,
    pub fps: f64,
    /// Time spent building each frame's UI (ms): median, 95th percentile.
    pub ui_ms_p50: f64,
    pub ui_ms_p95: f64,
    /// Time between frames (ms), 95th percentile.
    pub interval_ms_p95: f64,
    /// With `--runs N`: ms from the window's start until the Runs panel
    /// listed all N runs.
    #[serde(default)]
    pub runs_listed_ms: Option<f64>,
}

/// Training progress samples: (seconds since start, steps done).
#[derive(Default)]
struct Meter {
    samples: Vec<(f64, usize)>,
}

impl Meter {
    fn rate(&self, warmup: f64, batch: usize) -> f64 {
        let Some(&first) = self.samples.iter().find(|s| s.0 >= warmup) else {
            return 0.0;
        };
        let Some(&last) = self.samples.last() else {
            return 0.0;
        };
        if last.0 <= first.0 {
            return 0.0;
        }
        (last.1 - first.1) as f64 * batch as f64 / (last.0 - first.0)
    }
}

fn percentile(v: &[f32], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f32::total_cmp);
    s[((s.len() - 1) as f64 * p).round() as usize] as f64 * 1000.0
}

pub fn run_headless(
    cfg: ExperimentConfig,
    inj: Injected,
    warmup: f64,
    seconds: f64,
) -> Result<PhaseResult, String> {
    let dir = tempdir()?;
    let batch = cfg.ae_training.batch_size;
    let worker = Worker::spawn(TrainJob {
        run_dir: dir.join("run"),
        start: Start::New(cfg),
        device: inj.device,
        backend_name: inj.backend,
        data: inj.data,
        origin: None,
    });
    let began = Instant::now();
    let mut meter = Meter::default();
    let mut stopped = false;
    loop {
        match worker.events.recv_timeout(Duration::from_millis(50)) {
            Ok(Event::Progress(p)) => meter.samples.push((began.elapsed().as_secs_f64(), p.step)),
            Ok(Event::Stopped { .. } | Event::Finished { .. }) => break,
            Ok(Event::Failed { message, .. }) => return Err(message),
            _ => {}
        }
        if !stopped && began.elapsed().as_secs_f64() > warmup + seconds {
            stopped = true;
            worker.send(Command::Stop);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(PhaseResult {
        phase: Phase::Headless.name().into(),
        images_per_sec: meter.rate(warmup, batch),
        seconds,
        ..Default::default()
    })
}

fn tempdir() -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("latentlab-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

struct BenchApp {
    app: App,
    began: Instant,
    warmup: f64,
    seconds: f64,
    meter: Meter,
    /// Frame-stat indices at the start and end of the measured window.
    window: (Option<usize>, Option<usize>),
    stopping: bool,
    batch: usize,
    result: Arc<Mutex<Option<PhaseResult>>>,
    phase: Phase,
    /// Made-up runs in the runs directory, and when the Runs panel had them all.
    runs: usize,
    runs_listed: Option<f64>,
}

impl eframe::App for BenchApp {
    fn logic(&mut self, ctx: &egui::Context, frame: &mut eframe::Frame) {
        self.app.logic(ctx, frame);
        let t = self.began.elapsed().as_secs_f64();
        if self.runs > 0
            && self.runs_listed.is_none()
            && self.app.panels.runs.rows.len() >= self.runs
        {
            self.runs_listed = Some(t * 1000.0);
        }
        if let Some(p) = &self.app.session.progress
            && self.meter.samples.last().is_none_or(|s| s.1 != p.step)
            && !self.stopping
        {
            self.meter.samples.push((t, p.step));
        }
        let stats = &self.app.frame_stats;
        if t >= self.warmup && self.window.0.is_none() {
            self.window.0 = Some(stats.intervals.len());
        }
        if t >= self.warmup + self.seconds && !self.stopping {
            self.stopping = true;
            self.window.1 = Some(stats.intervals.len());
            let (a, b) = (self.window.0.unwrap_or(0), self.window.1.unwrap_or(0));
            let intervals = &stats.intervals[a..b.max(a)];
            let ui_times = &stats.ui_times[a.min(stats.ui_times.len())
                ..b.min(stats.ui_times.len()).max(a.min(stats.ui_times.len()))];
            let secs: f32 = intervals.iter().sum();
            let result = PhaseResult {
                phase: self.phase.name().into(),
                images_per_sec: self.meter.rate(self.warmup, self.batch),
                seconds: self.seconds,
                frames: intervals.len(),
                fps: intervals.len() as f64 / (secs as f64).max(1e-9),
                ui_ms_p50: percentile(ui_times, 0.5),
                ui_ms_p95: percentile(ui_times, 0.95),
                interval_ms_p95: percentile(intervals, 0.95),
                runs_listed_ms: self.runs_listed,
            };
            if let Ok(mut r) = self.result.lock() {
                *r = Some(result);
            }
            self.app.command(Command::Stop);
        }
        if self.stopping && !self.app.training() {
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        self.app.ui(ui, frame);
    }

    fn clear_color(&self, visuals: &egui::Visuals) -> [f32; 4] {
        self.app.clear_color(visuals)
    }
}

pub fn run_window(
    phase: Phase,
    tab: super::Tab,
    cfg: ExperimentConfig,
    inj: Injected,
    warmup: f64,
    seconds: f64,
    runs: usize,
) -> Result<PhaseResult, String> {
    if !super::display_available() {
        return Err(super::NO_DISPLAY.into());
    }
    let dir = tempdir()?;
    if runs > 0 {
        super::demo_runs::write_many(&dir, &inj.data, runs)
            .map_err(|e| format!("writing {runs} made-up runs in {}: {e}", dir.display()))?;
    }
    let result = Arc::new(Mutex::new(None));
    let shared = result.clone();
    let repaint = match phase {
        Phase::Reactive | Phase::Headless => None,
        Phase::Fps60 => Some(Duration::from_micros(16_000)),
        Phase::Uncapped | Phase::Idle => Some(Duration::ZERO),
    };
    let batch = cfg.ae_training.batch_size;
    let runs_dir = dir.clone();
    eframe::run_native(
        super::TITLE,
        super::native_options(false, super::RendererChoice::Glow),
        Box::new(move |cc| {
            let opts = AppOptions {
                runs_dir: Some(runs_dir),
                dialogs: false,
                injected: Some(inj),
                fresh_settings: true,
                repaint,
                ..Default::default()
            };
            let mut app = App::new(cc, opts);
            app.panels.experiment.form.reset(&cfg);
            app.config = cfg;
            app.settings.tab = tab;
            if phase == Phase::Idle {
                // Something to draw: the demo curves.
                super::demo::fill(&mut app);
            } else {
                app.start_new();
            }
            Ok(Box::new(BenchApp {
                app,
                began: Instant::now(),
                warmup,
                seconds,
                meter: Meter::default(),
                window: (None, None),
                stopping: false,
                batch,
                result: shared,
                phase,
                runs,
                runs_listed: None,
            }))
        }),
    )
    .map_err(|e| format!("cannot open the window: {e}"))?;
    let _ = std::fs::remove_dir_all(&dir);
    let r = result.lock().map_err(|_| "poisoned".to_string())?.take();
    r.ok_or_else(|| "the window closed before the measurement ended".into())
}

/// Mean headless throughput and each window phase's overhead against it.
pub fn report(results: &[PhaseResult]) -> String {
    let headless: Vec<f64> = results
        .iter()
        .filter(|r| r.phase == "headless")
        .map(|r| r.images_per_sec)
        .collect();
    let base = headless.iter().sum::<f64>() / headless.len().max(1) as f64;
    // Other load on the machine drifts: compare each window phase with the
    // headless runs right before and after it, when there are any.
    let neighbours = |i: usize| -> f64 {
        let is_h = |r: &&PhaseResult| r.phase == "headless";
        let before = results[..i]
            .iter()
            .rev()
            .find(is_h)
            .map(|r| r.images_per_sec);
        let after = results[i + 1..].iter().find(is_h).map(|r| r.images_per_sec);
        match (before, after) {
            (Some(a), Some(b)) => (a + b) / 2.0,
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => base,
        }
    };
    let mut s = format!(
        "{:<10} {:>12} {:>10} {:>12} {:>8} {:>10} {:>10} {:>12}\n",
        "phase",
        "train img/s",
        "overhead",
        "vs adjacent",
        "fps",
        "ui p50 ms",
        "ui p95 ms",
        "frame p95 ms"
    );
    for (i, r) in results.iter().enumerate() {
        let measured = r.phase != "headless" && r.phase != "idle" && base > 0.0;
        let overhead = if measured {
            format!("{:+.1}%", (1.0 - r.images_per_sec / base) * 100.0)
        } else {
            "-".to_string()
        };
        let adjacent = if measured {
            format!("{:+.1}%", (1.0 - r.images_per_sec / neighbours(i)) * 100.0)
        } else {
            "-".to_string()
        };
        let (fps, p50, p95, iv) = if r.frames == 0 {
            ("-".into(), "-".into(), "-".into(), "-".into())
        } else {
            (
                format!("{:.1}", r.fps),
                format!("{:.2}", r.ui_ms_p50),
                format!("{:.2}", r.ui_ms_p95),
                format!("{:.1}", r.interval_ms_p95),
            )
        };
        s.push_str(&format!(
            "{:<10} {:>12.0} {:>10} {:>12} {:>8} {:>10} {:>10} {:>12}\n",
            r.phase, r.images_per_sec, overhead, adjacent, fps, p50, p95, iv
        ));
    }
    if !headless.is_empty() {
        s.push_str(&format!(
            "headless mean: {base:.0} img/s over {} run(s)\n",
            headless.len()
        ));
    }
    for r in results {
        if let Some(ms) = r.runs_listed_ms {
            s.push_str(&format!(
                "{}: the Runs panel listed every run {ms:.0} ms after the window opened\n",
                r.phase
            ));
        }
    }
    s
}

pub fn injected(
    data: Dataset,
    backend: crate::backend::BackendKind,
    device: burn::tensor::Device,
) -> Injected {
    Injected {
        data,
        device,
        backend: backend.name().into(),
    }
}
