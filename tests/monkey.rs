//! A seeded monkey: thousands of frames of random clicks, drags, key
//! presses and hostile text across every panel, with a tiny training run
//! going. Nothing may panic (on any thread), and the run must still stop
//! cleanly. Its own test binary, so it can own the process's environment:
//! home, config, presets and runs all live in a temporary directory.
#![cfg(feature = "gui")]

mod common;

use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use latentlab::config::ExperimentConfig;
use latentlab::rng::Rng;
use latentlab::ui::{App, AppOptions, Injected, Tab};

/// Random actions (one to three frames each): ~15 s here.
const FRAMES: usize = 10_000;
const SEED: u64 = 20261203;

static PANICS: AtomicUsize = AtomicUsize::new(0);

const HOSTILE_TEXT: &[&str] = &[
    "0",
    "-1",
    "nan",
    "inf",
    "-inf",
    "1e999",
    "9223372036854775807",
    "18446744073709551616",
    "[16,0,64]",
    "[]",
    "[0]",
    "[[1]]",
    "\"",
    "true",
    "../../x",
    "",
    "ééé✓\u{202e}",
    "0.5",
    "3",
    "64",
    "= 3",
    "{ a = 1 }",
];

const KEYS: &[egui::Key] = &[
    egui::Key::Tab,
    egui::Key::Enter,
    egui::Key::Escape,
    egui::Key::Space,
    egui::Key::Backspace,
    egui::Key::Delete,
    egui::Key::ArrowLeft,
    egui::Key::ArrowRight,
    egui::Key::ArrowUp,
    egui::Key::ArrowDown,
    egui::Key::Home,
    egui::Key::End,
    egui::Key::PageUp,
    egui::Key::PageDown,
    egui::Key::A,
    egui::Key::Num0,
];

fn pos(rng: &mut Rng) -> egui::Pos2 {
    egui::pos2(
        (rng.uniform() * 1280.0) as f32,
        (rng.uniform() * 800.0) as f32,
    )
}

/// `path` (relative ones taken from `cwd`) with `.` and `..` resolved
/// without touching the filesystem.
fn lexical(cwd: &Path, path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in cwd.join(path).components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Typed text may retarget the runs directory anywhere, as a person may;
/// the monkey puts it back before anything can be written outside `root`.
fn keep_runs_inside(h: &mut Harness<'static, App>, root: &Path, cwd: &Path, runs: &Path) -> bool {
    let inside = lexical(cwd, &h.state().settings.runs_dir).starts_with(root);
    if !inside {
        h.state_mut().settings.runs_dir = runs.to_path_buf();
    }
    !inside
}

/// The labels of every config field in the Experiment form: its dotted keys.
fn field_labels(cfg: &ExperimentConfig) -> Vec<String> {
    cfg.leaves().into_iter().map(|(key, _)| key).collect()
}

#[test]
fn a_seeded_monkey_cannot_take_the_workbench_down() {
    let tmp = tempfile::tempdir().unwrap();
    // Deep enough that a typed "../../x" still lands inside the temp dir.
    let cwd = tmp.path().join("1/2/3/4/cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    // SAFETY: this binary holds this one test, which sets its environment
    // before it starts any thread.
    unsafe {
        std::env::set_var("HOME", tmp.path().join("home"));
        std::env::set_var("XDG_CONFIG_HOME", tmp.path().join("config"));
        std::env::set_var("XDG_CACHE_HOME", tmp.path().join("cache"));
        std::env::set_var("XDG_DATA_HOME", tmp.path().join("data"));
    }
    std::env::set_current_dir(&cwd).unwrap();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));

    let root = tmp.path().canonicalize().unwrap();
    let cwd = root.join("1/2/3/4/cwd");
    let runs = cwd.join("runs");
    let presets = root.join("presets");
    let app_runs = runs.clone();
    // kittest panics on a character no font has; the window (egui's
    // default) draws a box, and typed text may hold anything.
    let mut h = Harness::builder()
        .with_size([1280.0, 800.0])
        .allow_missing_glyphs()
        .build_eframe(move |cc| {
            App::new(
                cc,
                AppOptions {
                    runs_dir: Some(app_runs),
                    presets_dir: Some(presets),
                    dialogs: false,
                    fresh_settings: true,
                    opaque: true,
                    injected: Some(Injected {
                        data: common::synthetic_dataset(256, 64),
                        device: common::device(),
                        backend: "flex".into(),
                    }),
                    ..Default::default()
                },
            )
        });
    // A tiny run long enough to train through the whole monkey.
    let mut cfg = common::tiny_config();
    cfg.diffusion_training.epochs = 10_000;
    cfg.checkpoint.every_steps = 50;
    h.state_mut().panels.experiment.form.reset(&cfg);
    h.state_mut().config = cfg.clone();
    h.run();
    h.get_by_label("Start").click();
    h.run();
    assert!(h.state().training(), "{:?}", h.state().messages);

    let labels = field_labels(&cfg);
    let mut rng = Rng::new(SEED);
    let began = Instant::now();
    let (mut typed_into_fields, mut runs_started, mut retargeted) = (0, 0, 0);
    let mut was_training = true;
    for frame in 0..FRAMES {
        // Keep a run going: when the monkey stopped it, start another.
        if frame % 500 == 0 && !h.state().training() {
            h.state_mut().settings.tab = Tab::Experiment;
            h.state_mut().panels.experiment.form.reset(&cfg);
            h.state_mut().config = cfg.clone();
            h.step();
            if let Some(start) = h.query_all_by_label("Start").next() {
                start.click();
            }
        }
        match rng.below(100) {
            0..=34 => {
                let p = pos(&mut rng);
                h.drag_at(p);
                h.step();
                h.drop_at(p);
            }
            35..=44 => {
                h.drag_at(pos(&mut rng));
                h.step();
                h.hover_at(pos(&mut rng));
                h.step();
                h.drop_at(pos(&mut rng));
            }
            45..=59 => h.key_press(KEYS[rng.below(KEYS.len())]),
            60..=74 => {
                let text = HOSTILE_TEXT[rng.below(HOSTILE_TEXT.len())];
                h.event(egui::Event::Text(text.to_string()));
            }
            75..=79 => h.event(egui::Event::MouseWheel {
                unit: egui::MouseWheelUnit::Point,
                delta: egui::vec2(0.0, (rng.uniform() as f32 - 0.5) * 400.0),
                phase: egui::TouchPhase::Move,
                source: egui::MouseWheelSource::Unknown,
                modifiers: egui::Modifiers::default(),
            }),
            80..=87 => {
                h.state_mut().settings.tab = Tab::ALL[rng.below(Tab::ALL.len())];
            }
            _ => {
                // Hostile text straight into a form field, as a screen
                // reader (or a paste) would set it.
                h.state_mut().settings.tab = Tab::Experiment;
                h.step();
                let label = &labels[rng.below(labels.len())];
                let text = HOSTILE_TEXT[rng.below(HOSTILE_TEXT.len())];
                if let Some(node) = h.query_all_by_label(label).next() {
                    node.set_text_value_accesskit(text);
                    typed_into_fields += 1;
                }
            }
        }
        h.step();
        retargeted += usize::from(keep_runs_inside(&mut h, &root, &cwd, &runs));
        assert_eq!(
            PANICS.load(Ordering::SeqCst),
            0,
            "a panic at frame {frame} (seed {SEED})"
        );
        let training = h.state().training();
        if was_training && !training {
            eprintln!(
                "monkey: the run ended at action {frame}: {}",
                h.state().session.status
            );
        }
        runs_started += usize::from(training && !was_training);
        was_training = training;
    }
    eprintln!(
        "monkey: {FRAMES} actions in {:.0?}; hostile text set in {typed_into_fields} form \
         fields; runs directory retargeted outside and put back {retargeted} times; \
         {runs_started} more runs started; still training: {was_training}",
        began.elapsed()
    );
    assert!(typed_into_fields > 100, "the form was reached");

    // Still alive, and still stops cleanly: a run still going saves a
    // checkpoint and ends.
    if h.state().training() {
        h.state_mut().command(latentlab::train::Command::Stop);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while h.state().training() && Instant::now() < deadline {
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!h.state().training(), "the run did not stop");
    h.step();
    assert_eq!(PANICS.load(Ordering::SeqCst), 0);
    let internal: Vec<_> = h
        .state()
        .messages
        .iter()
        .filter(|m| m.text.contains("internal error"))
        .collect();
    assert!(internal.is_empty(), "{internal:?}");
    // Nothing was written outside the temporary directory's tree: the
    // runs directory holds the runs, with their checkpoints.
    let run_dirs: Vec<_> = std::fs::read_dir(cwd.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!run_dirs.is_empty());
    assert!(
        run_dirs
            .iter()
            .any(|d| d.join("checkpoint/state.json").is_file()),
        "{run_dirs:?}"
    );
}
