//! The workbench driven through egui_kittest, as a person would: the real
//! `App` with an injected synthetic dataset (nothing is downloaded), plus
//! snapshot images of every panel in the deterministic demo state.
#![cfg(feature = "gui")]

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use egui_kittest::kittest::{NodeT, Queryable};
use egui_kittest::{Harness, SnapshotOptions};
use latentlab::ui::{App, AppOptions, Injected, Tab};

fn harness(opts: AppOptions, tab: Tab) -> Harness<'static, App> {
    Harness::builder()
        .with_size([1280.0, 800.0])
        .with_max_steps(50)
        .build_eframe(move |cc| {
            let mut app = App::new(cc, opts);
            app.settings.tab = tab;
            app
        })
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

/// Step frames (real time passing) until `done` holds or `secs` pass.
fn step_until(h: &mut Harness<'static, App>, secs: u64, done: impl Fn(&App) -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        h.step();
        if done(h.state()) {
            h.step();
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
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
    h.state_mut().form.reset(&cfg);
    h.state_mut().config = cfg;
    h.run();
    assert!(!h.get_by_label("Start").accesskit_node().is_disabled());
    h.get_by_label("Start").click();
    let got = step_until(&mut h, 120, |a| !a.session.curves.ae.is_empty());
    assert!(got, "no loss points arrived: {:?} {:?}", h.state().session.status, h.state().messages);
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
    assert!(step_until(&mut h, 120, |a| !a.training()), "the run did not stop");
    assert!(h.state().session.status.contains("Stopped"), "{}", h.state().session.status);
    let run_dir = h.state().session.run_dir.clone().unwrap();
    assert!(run_dir.join("checkpoint").is_dir());
}

#[test]
fn an_invalid_hyper_parameter_disables_start_and_says_why() {
    let mut h = harness(
        AppOptions {
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
    );
    h.run();
    assert!(!h.get_by_label("Start").accesskit_node().is_disabled());
    h.get_by_label("ae_training.lr").set_text_value_accesskit("0");
    h.run();
    assert!(h.get_by_label("Start").accesskit_node().is_disabled());
    h.get_by_label_contains("Cannot start: ae_training.lr: must be in (0, 1)");
    // Text that is not a number is reported as such, next to its field.
    h.get_by_label("ae_training.batch_size").set_text_value_accesskit("many");
    h.run();
    assert!(h.get_by_label("Start").accesskit_node().is_disabled());
    h.get_by_label_contains("ae_training.batch_size:");
    // Fixing both enables Start again.
    h.get_by_label("ae_training.lr").set_text_value_accesskit("0.001");
    h.get_by_label("ae_training.batch_size").set_text_value_accesskit("64");
    h.run();
    assert!(!h.get_by_label("Start").accesskit_node().is_disabled());
    assert_eq!(h.state().config.ae_training.batch_size, 64);
}

#[test]
fn scrubbing_the_timestep_changes_frame_and_label() {
    let mut h = demo(Tab::Denoising, None);
    h.run();
    assert_eq!(h.state().denoise.frame, 0);
    h.get_by_label_contains("t = 999");
    // The slider, as a screen reader or a drag would set it.
    h.get_by_label("timestep").set_value_accesskit(10.0);
    h.run();
    assert_eq!(h.state().denoise.frame, 10);
    let t10 = latentlab::diffusion::sampler::ddim_timesteps(1000, 50)[10];
    h.get_by_label_contains(&format!("t = {t10}"));
    // Arrow keys step one timestep.
    h.key_press(egui::Key::ArrowRight);
    h.run();
    assert_eq!(h.state().denoise.frame, 11);
    let t11 = latentlab::diffusion::sampler::ddim_timesteps(1000, 50)[11];
    h.get_by_label_contains(&format!("t = {t11}"));
    h.key_press(egui::Key::ArrowLeft);
    h.key_press(egui::Key::ArrowLeft);
    h.run();
    assert_eq!(h.state().denoise.frame, 9);
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
            a.messages.iter().filter(|m| m.text.starts_with("Exported to ")).count() > before
        });
        assert!(found, "{:?}", h.state().messages);
        let msg = h.state().messages.iter().rev().find(|m| m.text.starts_with("Exported to ")).unwrap();
        written.push(PathBuf::from(msg.text.trim_start_matches("Exported to ")));
    }
    assert_ne!(written[0], written[1], "a second export never replaces the first");
    for path in &written {
        assert!(path.starts_with(runs.path().join("exports")), "{}", path.display());
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let img = image::load_from_memory(&bytes).unwrap();
        assert!(img.width() > 100 && img.height() > 100);
    }
    assert_eq!(h.get_all_by_label_contains("Exported to ").count(), 2, "the app says where each file went");
}

fn snapshot_options() -> SnapshotOptions {
    // Software rasterisers differ slightly in anti-aliasing between versions.
    SnapshotOptions::new().threshold(1.0).max_failed_pixels(400)
}

fn snapshot(tab: Tab) {
    let mut h = demo(tab, None);
    h.run();
    // The latent panel projects on a job thread: wait for it.
    assert!(step_until(&mut h, 30, |a| a.jobs.busy() == 0));
    h.run();
    h.snapshot_options(&format!("panel_{}", tab.slug()), &snapshot_options());
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
