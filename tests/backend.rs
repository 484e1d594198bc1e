//! Backend selection, and the same training code on every backend this
//! build has (CI builds once with `--features tch` too).

mod common;

use burn::module::Module;
use latentlab::backend::{self, BackendKind};
use latentlab::model::Autoencoder;
use latentlab::train::trainer::Outcome;
use latentlab::train::worker::{self, Start, TrainJob};

#[test]
fn devices_are_parsed_and_unknown_ones_rejected() {
    assert!(BackendKind::parse("metal").is_err());
    let err = backend::select(backend::default_backend(), "gpu")
        .unwrap_err()
        .to_string();
    assert!(err.contains("expected auto, cpu, cuda or cuda:N"), "{err}");
    let err = backend::select(backend::default_backend(), "cuda:x")
        .unwrap_err()
        .to_string();
    assert!(err.contains("cuda:N"), "{err}");
    #[cfg(feature = "flex")]
    {
        assert!(backend::select(BackendKind::Flex, "cpu").is_ok());
        let err = backend::select(BackendKind::Flex, "cuda")
            .unwrap_err()
            .to_string();
        assert!(err.contains("--backend tch"), "{err}");
    }
    #[cfg(not(feature = "tch"))]
    {
        let err = backend::select(BackendKind::Tch, "cpu")
            .unwrap_err()
            .to_string();
        assert!(err.contains("--features tch"), "{err}");
    }
    #[cfg(feature = "tch")]
    if !backend::cuda_available() {
        let err = backend::select(BackendKind::Tch, "cuda:0")
            .unwrap_err()
            .to_string();
        assert!(err.contains("sees 0 CUDA device"), "{err}");
    }
}

/// Every compiled backend (and CUDA when present) builds the seed models
/// and trains a few steps of both stages with falling losses.
#[test]
fn every_backend_trains_the_tiny_config() {
    let mut targets: Vec<(BackendKind, &str)> = backend::available()
        .into_iter()
        .map(|b| (b, "cpu"))
        .collect();
    if backend::cuda_available() {
        targets.push((BackendKind::Tch, "cuda"));
    }
    for (kind, dev) in targets {
        let device = backend::select(kind, dev).unwrap();
        let cfg = latentlab::config::ExperimentConfig::preset("seed").unwrap();
        assert_eq!(
            Autoencoder::new(&cfg.autoencoder, &device).num_params(),
            224_945
        );
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        let (_c, crx) = crossbeam_channel::unbounded();
        let job = TrainJob {
            run_dir: dir.path().to_path_buf(),
            start: Start::New(common::tiny_config()),
            device,
            backend_name: kind.name().into(),
            data: common::synthetic_dataset(320, 40),
            origin: None,
        };
        let outcome = worker::run(job, tx, crx)
            .map_err(|(e, _)| e.to_string())
            .unwrap();
        assert_eq!(outcome, Outcome::Finished, "{kind:?} {dev}");
        let losses: Vec<f32> = rx
            .try_iter()
            .filter_map(|e| match e {
                latentlab::train::Event::Losses {
                    stage: latentlab::train::Stage::Autoencoder,
                    points,
                } => Some(points),
                _ => None,
            })
            .flatten()
            .map(|p| p.1)
            .collect();
        let head: f32 = losses[..5].iter().sum();
        let tail: f32 = losses[losses.len() - 5..].iter().sum();
        assert!(tail < 0.7 * head, "{kind:?} {dev}: {losses:?}");
    }
}
