//! The workbench driven through egui_kittest, as a person would: the real
//! `App` with an injected synthetic dataset (nothing is downloaded), plus
//! snapshot images of every panel in the deterministic demo state.
#![cfg(feature = "gui")]

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::window::{harness, step_until};
use egui_kittest::kittest::{NodeT, Queryable};
use egui_kittest::{Harness, SnapshotOptions};
use latentlab::ui::{App, AppOptions, Injected, Tab};

/// The Experiment panel with a small synthetic dataset injected.
fn small_form(presets_dir: Option<PathBuf>) -> Harness<'static, App> {
    harness(
        AppOptions {
            presets_dir,
            dialogs: false,
            fresh_settings: true,
            injected: Some(Injected {
                data: common::synthetic_dataset(32, 16),
                device: common::device(),
                backend: "flex".into(),
            }),
            ..Default::default()
        },
        Tab::Experiment,
    )
}

fn demo(tab: Tab, runs_dir: Option<PathBuf>) -> Harness<'static, App> {
    harness(
        AppOptions {
            demo: true,
            dialogs: false,
            fresh_settings: true,
            runs_dir,
            ..Default::default()
        },
        tab,
    )
}

#[test]
fn starting_a_tiny_config_feeds_the_loss_plot() {
    let runs = tempfile::tempdir().unwrap();
    let opts = AppOptions {
        runs_dir: Some(runs.path().to_path_buf()),
        dialogs: false,
        fresh_settings: true,
        injected: Some(Injected {
            data: common::synthetic_dataset(256, 64),
            device: common::device(),
            backend: "flex".into(),
        }),
        ..Default::default()
    };
    let mut h = harness(opts, Tab::Experiment);
    let cfg = common::tiny_config();
    h.state_mut().panels.experiment.form.reset(&cfg);
    h.state_mut().config = cfg;
    h.run();
    assert!(!h.get_by_label("Start").accesskit_node().is_disabled());
    h.get_by_label("Start").click();
    let got = step_until(&mut h, 120, |a| !a.session.curves.ae.is_empty());
    assert!(
        got,
        "no loss points arrived: {:?} {:?}",
        h.state().session.status,
        h.state().messages
    );
    h.get_by_label("Loss").click();
    h.step();
    h.step();
    let n = h.state().session.curves.ae.len();
    h.get_by_label_contains(&format!("autoencoder loss · {n} points"));
    assert!(h.state().session.curves.ae.iter().all(|p| p.1.is_finite()));
    // Stop saves a checkpoint; the app stays usable afterwards.
    h.get_by_label("Experiment").click();
    h.step();
    h.get_by_label("Stop").click();
    assert!(
        step_until(&mut h, 120, |a| !a.training()),
        "the run did not stop"
    );
    assert!(
        h.state().session.status.contains("Stopped"),
        "{}",
        h.state().session.status
    );
    let run_dir = h.state().session.run_dir.clone().unwrap();
    assert!(run_dir.join("checkpoint").is_dir());
}

#[test]
fn an_invalid_hyper_parameter_disables_start_and_says_why() {
    let mut h = small_form(None);
    h.run();
    assert!(!h.get_by_label("Start").accesskit_node().is_disabled());
    h.get_by_label("ae_training.lr")
        .set_text_value_accesskit("0");
    h.run();
    assert!(h.get_by_label("Start").accesskit_node().is_disabled());
    h.get_by_label_contains("Cannot start: ae_training.lr: 0 is outside the allowed range (0, 1)");
    // Text that is not a number is reported as such, next to its field.
    h.get_by_label("ae_training.batch_size")
        .set_text_value_accesskit("many");
    h.run();
    assert!(h.get_by_label("Start").accesskit_node().is_disabled());
    h.get_by_label_contains("ae_training.batch_size:");
    // Fixing both enables Start again.
    h.get_by_label("ae_training.lr")
        .set_text_value_accesskit("0.001");
    h.get_by_label("ae_training.batch_size")
        .set_text_value_accesskit("64");
    h.run();
    assert!(!h.get_by_label("Start").accesskit_node().is_disabled());
    assert_eq!(h.state().config.ae_training.batch_size, 64);
}

#[test]
fn scrubbing_the_timestep_changes_frame_and_label() {
    let mut h = demo(Tab::Denoising, None);
    h.run();
    assert_eq!(h.state().panels.denoise.frame, 0);
    h.get_by_label_contains("t = 999");
    // The slider, as a screen reader or a drag would set it.
    h.get_by_label("timestep").set_value_accesskit(10.0);
    h.run();
    assert_eq!(h.state().panels.denoise.frame, 10);
    let t10 = latentlab::diffusion::sampler::ddim_timesteps(1000, 50)[10];
    h.get_by_label_contains(&format!("t = {t10}"));
    // Arrow keys step one timestep.
    h.key_press(egui::Key::ArrowRight);
    h.run();
    assert_eq!(h.state().panels.denoise.frame, 11);
    let t11 = latentlab::diffusion::sampler::ddim_timesteps(1000, 50)[11];
    h.get_by_label_contains(&format!("t = {t11}"));
    h.key_press(egui::Key::ArrowLeft);
    h.key_press(egui::Key::ArrowLeft);
    h.run();
    assert_eq!(h.state().panels.denoise.frame, 9);
}

#[test]
fn exporting_a_png_writes_a_new_file_and_says_where() {
    let runs = tempfile::tempdir().unwrap();
    let mut h = demo(Tab::Samples, Some(runs.path().to_path_buf()));
    h.run();
    let mut written = Vec::new();
    for _ in 0..2 {
        h.get_by_label("Export PNG").click();
        let before = written.len();
        let found = step_until(&mut h, 30, |a| {
            a.messages
                .iter()
                .filter(|m| m.text.starts_with("Exported to "))
                .count()
                > before
        });
        assert!(found, "{:?}", h.state().messages);
        let msg = h
            .state()
            .messages
            .iter()
            .rev()
            .find(|m| m.text.starts_with("Exported to "))
            .unwrap();
        written.push(PathBuf::from(msg.text.trim_start_matches("Exported to ")));
    }
    assert_ne!(
        written[0], written[1],
        "a second export never replaces the first"
    );
    for path in &written {
        assert!(
            path.starts_with(runs.path().join("exports")),
            "{}",
            path.display()
        );
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let img = image::load_from_memory(&bytes).unwrap();
        assert!(img.width() > 100 && img.height() > 100);
    }
    assert_eq!(
        h.get_all_by_label_contains("Exported to ").count(),
        2,
        "the app says where each file went"
    );
}

fn tiny_app(runs: &std::path::Path) -> Harness<'static, App> {
    let opts = AppOptions {
        runs_dir: Some(runs.to_path_buf()),
        dialogs: false,
        fresh_settings: true,
        injected: Some(Injected {
            data: common::synthetic_dataset(256, 64),
            device: common::device(),
            backend: "flex".into(),
        }),
        ..Default::default()
    };
    let mut h = harness(opts, Tab::Experiment);
    let cfg = common::tiny_config();
    h.state_mut().panels.experiment.form.reset(&cfg);
    h.state_mut().config = cfg;
    h.run();
    h
}

#[test]
fn a_finished_run_denoises_samples_and_interpolates_in_the_window() {
    let runs = tempfile::tempdir().unwrap();
    let mut h = tiny_app(runs.path());
    h.get_by_label("Start").click();
    assert!(
        step_until(&mut h, 300, |a| !a.training()),
        "the run did not finish"
    );
    assert!(
        h.state().session.status.starts_with("Finished"),
        "{}",
        h.state().session.status
    );
    assert!(h.state().session.can_sample);
    // Every panel has something from the run.
    assert_eq!(h.state().session.recons.len(), 2);
    assert!(h.state().session.preview.is_some());
    assert_eq!(h.state().session.curves.diffusion_epochs.len(), 3);

    h.get_by_label("Denoising").click();
    h.step();
    h.get_by_label("Generate").click();
    assert!(
        step_until(&mut h, 120, |a| a.panels.denoise.generated.is_some()),
        "{:?}",
        h.state().messages
    );
    let d = h.state().panels.denoise.generated.clone().unwrap();
    let cfg = &h.state().config;
    let steps = cfg
        .sampling
        .sampler
        .evaluations(cfg.sampling.steps, cfg.diffusion.timesteps);
    assert_eq!(
        (d.n, d.frames.len()),
        (8, steps),
        "8 samples, one frame per sampler step"
    );
    assert!(
        d.frames.windows(2).all(|w| w[0].t > w[1].t),
        "frames run from T down to 0"
    );

    h.get_by_label("Samples").click();
    h.state_mut().settings.samples_n = 6;
    h.step();
    h.get_by_label("Generate").click();
    assert!(
        step_until(&mut h, 120, |a| !a.panels.samples.images.is_empty()),
        "{:?}",
        h.state().messages
    );
    assert_eq!(h.state().panels.samples.images.len(), 6 * 784);
    assert!(
        h.state()
            .panels
            .samples
            .images
            .iter()
            .all(|v| (0.0..=1.0).contains(v))
    );
    h.state_mut().panels.samples.pick = [Some(0), Some(5)];
    h.state_mut().settings.interp_steps = 5;
    h.step();
    h.get_by_label("Interpolate").click();
    assert!(
        step_until(&mut h, 120, |a| !a.panels.samples.interpolation.is_empty()),
        "{:?}",
        h.state().messages
    );
    assert_eq!(h.state().panels.samples.interpolation.len(), 5 * 784);
    assert!(
        h.state().messages.iter().all(|m| !m.error),
        "{:?}",
        h.state().messages
    );
}

/// A tiny run started in the window, long in its autoencoder stage (no
/// checkpoint before it ends), with its first loss points in.
fn training_autoencoder(runs: &std::path::Path) -> Harness<'static, App> {
    let mut h = tiny_app(runs);
    let mut cfg = common::tiny_config();
    cfg.ae_training.epochs = 500;
    h.state_mut().config = cfg;
    h.get_by_label("Start").click();
    assert!(step_until(&mut h, 120, |a| !a.session.curves.ae.is_empty()));
    h
}

#[test]
fn closing_the_window_while_training_saves_a_checkpoint_first() {
    let runs = tempfile::tempdir().unwrap();
    let mut h = training_autoencoder(runs.path());
    h.input_mut()
        .viewports
        .entry(egui::ViewportId::ROOT)
        .or_default()
        .events
        .push(egui::ViewportEvent::Close);
    h.step();
    let commands = |h: &Harness<'static, App>| {
        h.output().viewport_output[&egui::ViewportId::ROOT]
            .commands
            .clone()
    };
    assert!(
        commands(&h).contains(&egui::ViewportCommand::CancelClose),
        "the close waits"
    );
    let mut closed = false;
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline && !closed {
        h.step();
        closed = commands(&h).contains(&egui::ViewportCommand::Close);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(closed, "the window closes once the checkpoint is saved");
    let run_dir = h.state().session.run_dir.clone().unwrap();
    assert!(run_dir.join("checkpoint/state.json").is_file());
    assert!(
        h.state().session.status.contains("Stopped"),
        "{}",
        h.state().session.status
    );
}

#[test]
fn resuming_a_run_in_the_window_continues_its_curve() {
    let runs = tempfile::tempdir().unwrap();
    let mut h = tiny_app(runs.path());
    let mut cfg = common::tiny_config();
    cfg.ae_training.epochs = 500;
    h.state_mut().config = cfg;
    h.get_by_label("Start").click();
    assert!(step_until(&mut h, 120, |a| a.session.curves.ae.len() >= 3));
    h.get_by_label("Stop").click();
    assert!(step_until(&mut h, 120, |a| !a.training()));
    let before = h.state().session.curves.ae.len();
    let dir = h.state().session.run_dir.clone().unwrap();
    h.state_mut().settings.resume_dir = dir.display().to_string();
    h.step();
    h.get_by_label("Resume run").click();
    let grown = step_until(&mut h, 120, |a| {
        !a.session.history_pending && a.session.curves.ae.len() > before + 2
    });
    assert!(
        grown,
        "{:?} {:?}",
        h.state().session.status,
        h.state().messages
    );
    assert!(
        h.state().session.status.starts_with("Resumed"),
        "{}",
        h.state().session.status
    );
    let steps: Vec<usize> = h.state().session.curves.ae.iter().map(|p| p.0).collect();
    assert_eq!(steps[0], 1, "the history before the stop is back");
    assert!(
        steps.windows(2).all(|w| w[0] < w[1]),
        "one curve, no repeats: {steps:?}"
    );
    h.get_by_label("Stop").click();
    assert!(step_until(&mut h, 120, |a| !a.training()));
}

#[test]
fn settings_survive_a_restart() {
    use latentlab::ui::settings::Settings;
    let mut app = App::with_settings(
        Settings::default(),
        None,
        AppOptions {
            demo: true,
            fresh_settings: true,
            ..Default::default()
        },
    );
    app.settings.tab = Tab::Latent;
    app.settings.loss_ema = 0.5;
    app.config.ae_training.lr = 0.0042;
    app.sync_settings();
    let json = serde_json::to_string(&app.settings).unwrap();
    let restored: Settings = serde_json::from_str(&json).unwrap();
    let runs = tempfile::tempdir().unwrap();
    let again = App::with_settings(
        restored,
        None,
        AppOptions {
            dialogs: false,
            runs_dir: Some(runs.path().to_path_buf()),
            ..Default::default()
        },
    );
    assert_eq!(again.settings.tab, Tab::Latent);
    assert_eq!(again.settings.loss_ema, 0.5);
    assert_eq!(again.config.ae_training.lr, 0.0042);
    // Settings from an older or newer version fall back field by field.
    let partial: Settings = serde_json::from_str(r#"{"loss_log": false, "unknown": 1}"#).unwrap();
    assert!(!partial.loss_log);
    assert_eq!(partial.tab, Tab::Experiment);
}

#[test]
fn t_sne_streams_into_the_latent_map_and_can_be_cancelled() {
    use latentlab::ui::jobs::Subset;
    use latentlab::ui::work::Method;
    let mut h = demo(Tab::Latent, None);
    h.step();
    assert!(step_until(&mut h, 30, |a| a.jobs.busy() == 0));
    h.state_mut().panels.latent.subset = Subset::Batch;
    h.state_mut().settings.projection = Method::Tsne;
    h.state_mut().settings.tsne_epochs = 300;
    h.step();
    h.get_by_label("Project").click();
    let finished = |a: &App| {
        a.panels.latent.running.is_none()
            && a.panels
                .latent
                .maps
                .get(&Subset::Batch)
                .is_some_and(|m| m.method == Method::Tsne && m.done)
    };
    assert!(
        step_until(&mut h, 120, finished),
        "{:?}",
        h.state().messages
    );
    // Intermediate embeddings (one every 10 iterations) came before the final one.
    assert!(
        h.state().panels.latent.streamed >= 29,
        "{} snapshots",
        h.state().panels.latent.streamed
    );
    let map = &h.state().panels.latent.maps[&Subset::Batch];
    assert_eq!((map.points.len(), map.iteration), (64, 300));
    // A second, longer run is cancelled: the last snapshot stays, unfinished.
    h.state_mut().settings.tsne_epochs = 5000;
    h.step();
    h.get_by_label("Project").click();
    assert!(step_until(&mut h, 60, |a| a.panels.latent.maps
        [&Subset::Batch]
        .iteration
        < 5000
        && !a.panels.latent.maps[&Subset::Batch].done));
    h.get_by_label("Cancel").click();
    assert!(step_until(&mut h, 60, |a| a.jobs.busy() == 0
        && a.panels.latent.running.is_none()));
    assert!(!h.state().panels.latent.maps[&Subset::Batch].done);
}

fn snapshot_options() -> SnapshotOptions {
    // Software rasterisers differ slightly in anti-aliasing between versions.
    SnapshotOptions::new().threshold(1.0).max_failed_pixels(400)
}

fn snapshot(tab: Tab) {
    let mut h = demo(tab, None);
    // The demo's runs live in a fresh temporary directory; the pictures
    // show a fixed name instead of its random one.
    h.state_mut().settings.runs_dir = PathBuf::from("runs");
    h.step();
    // The latent panel projects on a job thread: wait for it.
    assert!(step_until(&mut h, 30, |a| a.jobs.busy() == 0));
    h.run();
    h.snapshot_options(format!("panel_{}", tab.slug()), &snapshot_options());
}

#[test]
fn snapshot_experiment() {
    snapshot(Tab::Experiment);
}

#[test]
fn snapshot_loss() {
    snapshot(Tab::Loss);
}

#[test]
fn snapshot_reconstructions() {
    snapshot(Tab::Reconstructions);
}

#[test]
fn snapshot_latent() {
    snapshot(Tab::Latent);
}

#[test]
fn snapshot_denoising() {
    snapshot(Tab::Denoising);
}

#[test]
fn snapshot_samples() {
    snapshot(Tab::Samples);
}

#[test]
fn a_selection_from_an_earlier_run_never_indexes_past_this_runs_latents() {
    let mut h = demo(Tab::Latent, None);
    h.step();
    assert!(step_until(&mut h, 30, |a| a.jobs.busy() == 0));
    let n = h.state().session.latents.as_ref().unwrap().labels.len();
    // What a point picked in a run with more evaluated test images leaves.
    h.state_mut().panels.latent.selected = Some(n + 500);
    h.run();
    assert_eq!(h.state().panels.latent.selected, None);
    h.get_by_label_contains("Click a point to see its image");
}

#[test]
fn saving_a_preset_under_a_taken_name_asks_before_replacing_it() {
    let presets = tempfile::tempdir().unwrap();
    let mut h = small_form(Some(presets.path().to_path_buf()));
    h.run();
    h.get_by_label("preset name")
        .set_text_value_accesskit("mine");
    h.run();
    h.get_by_label("Save as preset").click();
    h.run();
    let file = presets.path().join("mine.toml");
    let first = std::fs::read_to_string(&file).unwrap();
    h.get_by_label("ae_training.lr")
        .set_text_value_accesskit("0.0042");
    h.run();
    h.get_by_label("Save as preset").click();
    h.run();
    h.get_by_label_contains("You already have a preset named mine");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), first);
    h.get_by_label("Keep the existing preset").click();
    h.run();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), first);
    h.get_by_label("Save as preset").click();
    h.run();
    h.get_by_label("Replace preset").click();
    h.run();
    let replaced = std::fs::read_to_string(&file).unwrap();
    assert!(replaced.contains("lr = 0.0042"), "{replaced}");
}

#[test]
fn frame_timing_stops_growing_at_its_cap() {
    let mut h = demo(Tab::Experiment, None);
    h.step();
    let cap = latentlab::ui::app::FrameStats::CAP;
    h.state_mut().frame_stats.intervals = vec![0.01; cap];
    h.state_mut().frame_stats.ui_times = vec![0.01; cap];
    h.step();
    h.step();
    let s = &h.state().frame_stats;
    assert_eq!((s.intervals.len(), s.ui_times.len()), (cap, cap));
}

#[test]
fn a_zero_channel_typed_into_the_form_disables_start_instead_of_crashing() {
    let mut h = small_form(None);
    h.run();
    // This value panicked the UI thread in validation (remainder by zero).
    h.get_by_label("unet.channels")
        .set_text_value_accesskit("[16,0,64]");
    h.run();
    assert!(h.get_by_label("Start").accesskit_node().is_disabled());
    h.get_by_label_contains("unet.channels: entry 0 of [16, 0, 64] is outside the allowed range");
    h.get_by_label("unet.time_dim")
        .set_text_value_accesskit("100000");
    h.run();
    h.get_by_label_contains("unet.time_dim: 100000 must be an even number");
}

#[test]
fn a_window_torn_down_mid_run_still_saves_a_checkpoint() {
    // What a panic unwinding through the UI thread does to the app: it is
    // dropped without on_exit. The run must still stop with a checkpoint.
    let runs = tempfile::tempdir().unwrap();
    let h = training_autoencoder(runs.path());
    let run_dir = h.state().session.run_dir.clone().unwrap();
    assert!(!run_dir.join("checkpoint/state.json").exists(), "none yet");
    drop(h);
    let state = std::fs::read_to_string(run_dir.join("checkpoint/state.json")).unwrap();
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert!(state["ae_step"].as_u64().unwrap() > 0, "{state}");
}

#[test]
fn loss_plots_without_data_say_what_they_wait_for() {
    let mut h = small_form(None);
    h.state_mut().settings.tab = Tab::Loss;
    h.run();
    h.get_by_label_contains("Start a run on the Experiment panel to see its loss here.");
    h.get_by_label_contains("Waiting for the diffusion stage");
}

#[test]
fn samples_come_from_the_live_model_during_the_diffusion_stage() {
    let runs = tempfile::tempdir().unwrap();
    let mut h = tiny_app(runs.path());
    let mut cfg = common::tiny_config();
    cfg.diffusion_training.epochs = 10_000; // no U-Net checkpoint before the end
    h.state_mut().config = cfg;
    h.get_by_label("Start").click();
    let in_diffusion = |a: &App| {
        a.session
            .progress
            .as_ref()
            .is_some_and(|p| p.stage == latentlab::train::Stage::Diffusion)
    };
    assert!(step_until(&mut h, 300, in_diffusion), "no diffusion stage");
    assert!(!h.state().session.can_sample, "no U-Net checkpoint yet");
    h.get_by_label("Samples").click();
    h.step();
    assert!(!h.get_by_label("Generate").accesskit_node().is_disabled());
    h.get_by_label("Generate").click();
    assert!(
        step_until(&mut h, 120, |a| !a.panels.samples.images.is_empty()),
        "{:?}",
        h.state().messages
    );
    assert!(h.state().training(), "training goes on while it samples");
    let images = &h.state().panels.samples.images;
    assert_eq!(images.len(), h.state().settings.samples_n * 784);
    assert!(images.iter().all(|v| (0.0..=1.0).contains(v)));
    let run_dir = h.state().session.run_dir.clone().unwrap();
    assert!(!run_dir.join("checkpoint/unet.bpk").exists());
}

#[test]
fn the_class_picker_and_guidance_slider_resample_a_conditional_run() {
    let runs = tempfile::tempdir().unwrap();
    let mut h = tiny_app(runs.path());
    let mut cfg = common::tiny_config();
    cfg.apply_override("unet.classes=10").unwrap();
    h.state_mut().panels.experiment.form.reset(&cfg);
    h.state_mut().config = cfg;
    h.run();
    h.get_by_label("Start").click();
    assert!(
        step_until(&mut h, 300, |a| !a.training()),
        "the run did not finish"
    );
    h.get_by_label("Samples").click();
    // Opening the panel may start jobs (checkpoint load, a first sample);
    // on a slow machine they outlast Harness::run's step budget.
    assert!(step_until(&mut h, 120, |a| a.jobs.busy() == 0
        && !a.panels.samples.busy));
    h.state_mut().settings.samples_n = 2;
    // Asking for one row per class resamples at once: 2 of each of 10.
    h.get_by_label("class").click();
    h.run();
    h.get_by_label("one row per class").click();
    assert!(step_until(&mut h, 120, |a| !a.panels.samples.busy
        && a.panels.samples.images.len() == 20 * 784));
    assert_eq!(h.state().panels.samples.cols, Some(2), "a row per class");
    h.get_by_label_contains("guidance 1");
    // Moving the guidance slider resamples with the new w.
    let ticket = h.state().panels.samples.ticket;
    h.get_by_role_and_label(egui::accesskit::Role::Slider, "guidance")
        .set_value_accesskit(4.0);
    assert!(step_until(&mut h, 120, |a| a.panels.samples.ticket
        > ticket
        && !a.panels.samples.busy));
    assert_eq!(h.state().config.sampling.guidance, 4.0);
    h.get_by_label_contains("guidance 4");
}
