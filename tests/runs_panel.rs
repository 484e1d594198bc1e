//! The Runs panel driven through egui_kittest: runs made by the CLI and by
//! the trainer appear in the table, sort and filter, overlay when selected,
//! walk through their history, and are never deleted while they train.
#![cfg(feature = "gui")]

mod common;

use std::path::{Path, PathBuf};

use common::window::{harness, step_until};
use common::{stderr, tiny_train_command};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use latentlab::ui::{App, AppOptions, Tab};

fn runs_window(runs: &Path) -> Harness<'static, App> {
    harness(
        AppOptions {
            runs_dir: Some(runs.to_path_buf()),
            dialogs: false,
            fresh_settings: true,
            ..Default::default()
        },
        Tab::Runs,
    )
}

fn cli_run(cwd: &Path, dir: &Path, extra: &[&str]) {
    let o = tiny_train_command(cwd, &["--run-dir", dir.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

fn shown_names(h: &Harness<'static, App>) -> Vec<String> {
    h.state()
        .panels
        .runs
        .shown()
        .map(|r| r.name.clone())
        .collect()
}

#[test]
fn the_table_lists_cli_runs_sorts_filters_and_overlays_the_selected() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    cli_run(tmp.path(), &runs.join("alpha"), &[]);
    cli_run(
        tmp.path(),
        &runs.join("beta"),
        &["--set", "diffusion_training.lr=1e-3"],
    );
    let mut h = runs_window(&runs);
    assert!(step_until(&mut h, 30, |a| a.panels.runs.rows.len() == 2));
    h.get_by_label("alpha");
    h.get_by_label("beta");
    // The one hyper-parameter that differs gets a column; shared ones don't.
    h.get_by_label("diffusion_training.lr");
    assert!(h.query_by_label("ae_training.lr").is_none());
    assert_eq!(h.get_all_by_label("finished").count(), 2);

    h.get_by_label("name").click();
    h.run();
    assert_eq!(shown_names(&h), ["alpha", "beta"]);
    h.get_by_label("name ^").click();
    h.run();
    assert_eq!(shown_names(&h), ["beta", "alpha"]);
    // Numbers sort as numbers: 1e-3 before 2e-3.
    h.get_by_label("diffusion_training.lr").click();
    h.run();
    assert_eq!(shown_names(&h), ["beta", "alpha"]);

    h.get_by_label("filter runs").click();
    h.get_by_label("filter runs").type_text("lr=0.001");
    h.run();
    assert_eq!(shown_names(&h), ["beta"]);
    assert!(h.query_by_label("alpha").is_none());
    h.get_by_label("filter runs").set_text_value_accesskit("");
    h.run();
    assert_eq!(shown_names(&h).len(), 2);

    // Selecting both overlays their curves and shows both sample grids.
    h.get_by_label("select alpha").click();
    h.run();
    h.get_by_label("select beta").click();
    h.run();
    assert_eq!(h.state().settings.overlay.len(), 2);
    assert!(step_until(&mut h, 30, |a| a.panels.loss.overlays.len() == 2));
    let selected = &h.state().settings.overlay;
    assert_eq!(selected.len(), 2);
    assert!(selected.contains(&runs.join("alpha")) && selected.contains(&runs.join("beta")));
    h.get_by_label("2 selected");
    for run in ["alpha", "beta"] {
        let grid = runs.join(run).join("media/samples-epoch-001.png");
        assert!(
            h.state().textures.contains(&grid.display().to_string()),
            "{run}'s latest sample grid is shown"
        );
    }
    // The config diff names what differs, with each run's value.
    h.get_by_label("What differs");
    // Each value shows in the table and again in the diff.
    assert_eq!(
        h.get_all_by_label_contains("diffusion_training.lr").count(),
        2
    );
    assert_eq!(h.get_all_by_label("0.001").count(), 2);
    assert_eq!(h.get_all_by_label("0.002").count(), 2);
    h.get_by_label("Loss").click();
    h.run();
    // Both stages' plots draw both runs.
    for run in ["alpha", "beta"] {
        let legend = format!("{run} (smoothed)");
        assert_eq!(h.get_all_by_label(&legend).count(), 2, "{legend}");
    }
}

/// A tiny run trained in-process: 2 autoencoder epochs, 3 diffusion epochs.
fn trained_run(dir: &Path) {
    let (tx, _rx) = crossbeam_channel::unbounded();
    let (_c, crx) = crossbeam_channel::unbounded();
    let job = latentlab::train::TrainJob {
        run_dir: dir.to_path_buf(),
        start: latentlab::train::Start::New(common::tiny_config()),
        device: common::device(),
        backend_name: "flex".into(),
        data: common::synthetic_dataset(256, 64),
        origin: None,
    };
    latentlab::train::worker::run(job, tx, crx)
        .map_err(|(e, _)| e.to_string())
        .unwrap();
}

fn texture_shown(h: &Harness<'static, App>, path: &Path) -> bool {
    h.state().textures.contains(&path.display().to_string())
}

fn on_tab(h: &mut Harness<'static, App>, tab: &str) {
    h.get_by_label(tab).click();
    h.run();
}

#[test]
fn the_history_slider_walks_both_stages_and_the_image_panels_follow_it() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("tiny");
    trained_run(&run);
    let media = run.join("media");
    let mut h = runs_window(tmp.path());
    assert!(step_until(&mut h, 30, |a| a.panels.runs.rows.len() == 1));
    h.get_by_label("select tiny").click();
    h.run();
    assert_eq!(h.state().settings.overlay.len(), 1);
    // It opens at the end: the last samples. Until it moves, the image
    // panels stay on the live run.
    h.get_by_label("diffusion epoch 3 (5 of 5)");
    assert!(texture_shown(&h, &media.join("samples-epoch-003.png")));
    assert!(h.state().history.is_none());
    for _ in 0..3 {
        h.key_press(egui::Key::ArrowLeft);
        h.run();
    }
    // Back in the autoencoder stage: no samples yet.
    h.get_by_label("autoencoder epoch 2 (2 of 5)");
    h.get_by_label_contains("not yet: the diffusion stage");
    h.key_press(egui::Key::ArrowLeft);
    h.run();
    h.get_by_label("autoencoder epoch 1 (1 of 5)");
    assert!(texture_shown(&h, &media.join("recon-epoch-001.png")));

    // Every image panel shows the run as of that point.
    on_tab(&mut h, "Latent space");
    h.get_by_label("History of tiny at autoencoder epoch 1");
    h.get_by_label("PCA of 64 test images' latents after autoencoder epoch 1");
    on_tab(&mut h, "Samples");
    h.get_by_label_contains("not yet: the diffusion stage");
    on_tab(&mut h, "Runs");
    h.key_press(egui::Key::ArrowRight);
    h.key_press(egui::Key::ArrowRight);
    h.run();
    h.get_by_label("diffusion epoch 1 (3 of 5)");
    on_tab(&mut h, "Samples");
    h.get_by_label("History of tiny at diffusion epoch 1");
    assert!(texture_shown(&h, &media.join("samples-epoch-001.png")));
    // The reconstructions stay at the last autoencoder epoch.
    on_tab(&mut h, "Reconstructions");
    let point = h.state().history.clone().unwrap();
    assert_eq!(point.recon.unwrap().path, media.join("recon-epoch-002.png"));
    assert!(texture_shown(&h, &media.join("recon-epoch-002.png")));
    h.get_by_label("Back to live").click();
    h.run();
    assert!(h.state().history.is_none());
    h.get_by_label_contains("Reconstructions of test images appear");

    // One run: the compare view sets its first epoch against its last.
    on_tab(&mut h, "Runs");
    h.get_by_label("toggle").click();
    h.run();
    h.get_by_label("showing A").click();
    h.run();
    h.get_by_label("showing B");
}

#[test]
fn delete_asks_first_and_never_deletes_a_training_run() {
    use latentlab::run::status::{RunState, RunStatus};
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    cli_run(tmp.path(), &runs.join("done"), &[]);
    cli_run(tmp.path(), &runs.join("busy"), &[]);
    // "busy" trains in another process: it holds the lock and its status beats.
    let held = latentlab::run::RunDir::open_for_training(&runs.join("busy")).unwrap();
    RunStatus::running().write(&runs.join("busy")).unwrap();

    let mut h = runs_window(&runs);
    assert!(step_until(&mut h, 30, |a| a.panels.runs.rows.len() == 2));
    h.get_by_label("select busy").click();
    h.run();
    let delete = h.get_by_label("Delete run…");
    assert!(
        delete.accesskit_node().is_disabled(),
        "a training run cannot be deleted"
    );

    // Its status goes quiet but the lock is still held: asked, then refused.
    let mut st = RunStatus::running();
    st.state = RunState::Stopped;
    st.write(&runs.join("busy")).unwrap();
    h.state_mut().panels.runs.refresh_now();
    assert!(step_until(&mut h, 30, |a| a
        .panels
        .runs
        .rows
        .iter()
        .all(|r| !r.training())));
    h.get_by_label("Delete run…").click();
    h.run();
    h.get_by_label_contains("Delete the run busy");
    h.get_by_label("Delete").click();
    assert!(step_until(&mut h, 30, |a| a
        .messages
        .iter()
        .any(|m| m.error)));
    let said = &h.state().messages.last().unwrap().text;
    assert!(
        said.contains("another latentlab process is training"),
        "{said}"
    );
    assert!(runs.join("busy").join("config.toml").is_file());
    drop(held);

    // "done": Keep it keeps it; Delete deletes it and drops it from the selection.
    h.get_by_label("Clear selection").click();
    h.get_by_label("select done").click();
    h.run();
    h.get_by_label("Delete run…").click();
    h.run();
    h.get_by_label("Keep it").click();
    h.run();
    assert!(runs.join("done").is_dir());
    h.get_by_label("Delete run…").click();
    h.run();
    h.get_by_label("Delete").click();
    let done: PathBuf = runs.join("done");
    assert!(step_until(&mut h, 30, |a| !done.exists()
        && a.panels.runs.rows.len() == 1));
    assert!(h.state().settings.overlay.is_empty());
}

fn sweep_window(runs: &Path, settings: latentlab::ui::settings::Settings) -> Harness<'static, App> {
    let opts = AppOptions {
        runs_dir: Some(runs.to_path_buf()),
        dialogs: false,
        opaque: true,
        injected: Some(latentlab::ui::Injected {
            data: common::synthetic_dataset(256, 64),
            device: common::device(),
            backend: "flex".into(),
        }),
        ..Default::default()
    };
    Harness::builder()
        .with_size([1280.0, 800.0])
        .with_max_steps(50)
        .build_eframe(move |cc| {
            let mut app = App::with_settings(settings, Some(cc.egui_ctx.clone()), opts);
            app.settings.tab = Tab::Experiment;
            app
        })
}

#[test]
fn a_field_with_several_values_queues_a_sweep_that_survives_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let mut h = sweep_window(&runs, Default::default());
    let cfg = common::tiny_config();
    h.state_mut().panels.experiment.form.reset(&cfg);
    h.state_mut().config = cfg;
    h.run();
    h.get_by_label("diffusion_training.lr")
        .set_text_value_accesskit("2e-3, 3e-3, 4e-3");
    h.run();
    h.get_by_label("sweep: 3 values");
    h.get_by_label("Start sweep (3 runs)").click();
    h.run();
    // The first trains (and stays queued until it finishes); the others
    // wait, and can be reordered or taken off.
    h.get_by_label("Queue: 3 run(s) to go");
    let names =
        |a: &App| -> Vec<String> { a.settings.queue.iter().map(|q| q.name.clone()).collect() };
    assert_eq!(
        names(h.state()),
        ["000-lr=2e-3", "001-lr=3e-3", "002-lr=4e-3"]
    );
    h.get_all_by_label("down").nth(1).unwrap().click();
    h.run();
    assert_eq!(
        names(h.state()),
        ["000-lr=2e-3", "002-lr=4e-3", "001-lr=3e-3"]
    );

    // Stop the running one: the queue waits, and is kept with the settings.
    h.get_by_label("Stop").click();
    assert!(step_until(&mut h, 60, |a| !a.training()));
    assert_eq!(
        h.state().settings.queue.len(),
        3,
        "a Stop holds the queue, stopped run first"
    );
    let saved = serde_json::to_string(&h.state().settings).unwrap();
    drop(h);

    // Next launch: asked first; continuing trains both queued runs.
    let settings = serde_json::from_str(&saved).unwrap();
    let mut h = sweep_window(&runs, settings);
    h.run();
    h.get_by_label_contains("3 sweep run(s) were still queued");
    assert!(!h.state().training(), "nothing starts before the answer");
    h.get_by_label("Continue queued runs").click();
    let done = |a: &App| a.settings.queue.is_empty() && !a.training();
    assert!(step_until(&mut h, 240, done), "{:?}", h.state().messages);
    let rows = latentlab::run::list_runs(&runs);
    let finished: Vec<String> = rows
        .iter()
        .filter_map(|d| {
            let s = latentlab::run::RunSummary::read(d, latentlab::run::status::now_secs());
            (s.status == "finished")
                .then(|| s.sweep.unwrap().values["diffusion_training.lr"].clone())
        })
        .collect();
    let mut finished = finished;
    finished.sort();
    assert_eq!(
        finished,
        ["2e-3", "3e-3", "4e-3"],
        "the stopped run resumed too"
    );
}
