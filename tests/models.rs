//! Model structure: the seed's exact parameter counts, shapes and ranges.

mod common;

use burn::module::Module;
use burn::prelude::*;
use latentlab::config::ExperimentConfig;
use latentlab::model::params::seeded;
use latentlab::model::unet::sinusoidal_embedding;
use latentlab::model::{Autoencoder, Unet};

#[test]
fn seed_models_have_the_seed_parameter_counts() {
    let cfg = ExperimentConfig::preset("seed").unwrap();
    let device = common::device();
    assert_eq!(
        Autoencoder::new(&cfg.autoencoder, &device).num_params(),
        224_945
    );
    assert_eq!(Unet::new(&cfg.unet, 1, &device).num_params(), 624_097);
}

#[test]
fn every_preset_builds_and_runs_a_forward_pass() {
    let device = common::device();
    for name in latentlab::config::preset_names() {
        let cfg = ExperimentConfig::preset(name).unwrap();
        assert!(cfg.validate().is_empty(), "{name}: {:?}", cfg.validate());
        let ae = Autoencoder::new(&cfg.autoencoder, &device);
        // The memory check's parameter counts are exact for every preset.
        let estimate = latentlab::config::MemoryEstimate::of(&cfg).unwrap();
        assert_eq!(estimate.ae_params, ae.num_params() as u64, "{name}");
        let unet = Unet::new(&cfg.unet, cfg.autoencoder.latent_shape[0], &device);
        assert_eq!(estimate.unet_params, unet.num_params() as u64, "{name}");
        let pixels: Vec<f32> = (0..2 * 784).map(|i| (i % 29) as f32 / 29.0).collect();
        let x = Tensor::<4>::from_data(TensorData::new(pixels, [2, 1, 28, 28]), &device);
        let z = ae.encode(x);
        assert_eq!(z.dims(), [2, cfg.autoencoder.latent_dim], "{name}");
        let y = ae.decode(z.clone());
        assert_eq!(y.dims(), [2, 1, 28, 28], "{name}");
        let v = latentlab::diffusion::sampler::to_vec(y);
        assert!(
            v.iter().all(|&p| p > 0.0 && p < 1.0),
            "{name}: decoder ends in a sigmoid"
        );
        let [c, h, w] = cfg.autoencoder.latent_shape;
        let unet = Unet::new(&cfg.unet, c, &device);
        let eps = unet.forward(z.reshape([2, c, h, w]), &[0, 999]);
        assert_eq!(eps.dims(), [2, c, h, w], "{name}");
    }
}

#[test]
fn time_embedding_is_half_sines_then_cosines() {
    let e = sinusoidal_embedding(&[0, 5], 16);
    assert_eq!(e.len(), 32);
    // t = 0: sin(0) = 0, cos(0) = 1.
    assert!(e[..8].iter().all(|&v| v == 0.0));
    assert!(e[8..16].iter().all(|&v| v == 1.0));
    // t = 5, first frequency is 1, last is 1/10000.
    assert!((e[16] - 5f32.sin()).abs() < 1e-6);
    assert!((e[16 + 7] - (5.0f64 * 1e-4).sin() as f32).abs() < 1e-7);
    assert!((e[24] - 5f32.cos()).abs() < 1e-6);
}

#[test]
fn same_seed_gives_the_same_initial_weights() {
    let cfg = common::tiny_config();
    let device = common::device();
    let weights = |seed| {
        let ae = seeded(&device, seed, || {
            Autoencoder::new(&cfg.autoencoder, &device)
        });
        latentlab::model::params::flat_params(&ae)
            .into_iter()
            .flat_map(latentlab::diffusion::sampler::to_vec)
            .collect::<Vec<f32>>()
    };
    assert_eq!(weights(7), weights(7));
    assert_ne!(weights(7), weights(8));
}
