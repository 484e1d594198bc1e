//! Throughput measurements of the seed models: training images/s of each
//! model and sampling images/s, on synthetic data so no dataset is needed.
//! Each figure runs warm-up steps first and ends with a host read-back, so
//! queued device work is counted.

use std::time::Instant;

use burn::prelude::*;
use serde::Serialize;

use crate::config::{ExperimentConfig, SamplerKind, VarianceKind};
use crate::diffusion::NoiseSchedule;
use crate::diffusion::sampler::{Capture, SampleRequest, sample, to_vec};
use crate::model::params::seeded;
use crate::model::{Autoencoder, Unet};
use crate::rng::Rng;
use crate::train::optim::FusedAdam;
use crate::train::trainer::{index_tensor, mse};

#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    pub backend: String,
    pub batch: usize,
    pub ae_train_images_per_sec: f64,
    /// U-Net training with the frozen encoder's forward pass included.
    pub unet_train_images_per_sec: f64,
    pub ddim50_images_per_sec: f64,
    /// DPM-Solver++(2M) with 15 steps: about DDIM-50's quality.
    pub dpmpp15_images_per_sec: f64,
    /// DDPM with every one of the T steps (only with `full`).
    pub ddpm_images_per_sec: Option<f64>,
    /// flex only: the vector code its kernels ran ("avx512", "avx2",
    /// "baseline"), so a figure says which CPU path it measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub simd: Option<&'static str>,
}

pub struct BenchOptions {
    pub batch: usize,
    /// Seconds spent timing each training measurement.
    pub seconds: f64,
    pub full: bool,
}

fn uniform_images(n: usize, device: &Device) -> Tensor<4> {
    let mut rng = Rng::new(1);
    let v: Vec<f32> = (0..n * 784).map(|_| rng.uniform() as f32).collect();
    Tensor::from_data(TensorData::new(v, [n, 1, 28, 28]), device)
}

/// Run `step` for warm-up, then for about `seconds`; returns steps/s.
fn time_steps(seconds: f64, mut step: impl FnMut() -> Tensor<1>) -> f64 {
    for _ in 0..3 {
        to_vec(step());
    }
    let start = Instant::now();
    let mut steps = 0usize;
    loop {
        let loss = step();
        steps += 1;
        // Read back every few steps: keeps the queue bounded without
        // syncing each step (what the trainer does too).
        if steps.is_multiple_of(8) || start.elapsed().as_secs_f64() >= seconds {
            to_vec(loss);
            if start.elapsed().as_secs_f64() >= seconds {
                break;
            }
        }
    }
    steps as f64 / start.elapsed().as_secs_f64()
}

pub fn run(
    cfg: &ExperimentConfig,
    device: &Device,
    backend: &str,
    opts: &BenchOptions,
) -> BenchResult {
    let b = opts.batch;
    let ad = device.clone().autodiff();
    let data = uniform_images(b * 4, device);
    let [c, h, w] = cfg.autoencoder.latent_shape;
    let dim = c * h * w;
    let mut rng = Rng::new(2);
    let batch_idx = |rng: &mut Rng| -> Tensor<1, Int> {
        let idx: Vec<usize> = (0..b).map(|_| rng.below(b * 4)).collect();
        index_tensor(&idx, device)
    };

    let mut ae = seeded(&ad, cfg.seed, || Autoencoder::new(&cfg.autoencoder, &ad));
    let mut optim = FusedAdam::new(0.0);
    let ae_rate = time_steps(opts.seconds, || {
        let x = data.clone().select(0, batch_idx(&mut rng)).autodiff();
        let loss = mse(ae.clone().forward(x.clone()), x);
        ae = optim.step(1e-4, ae.clone(), &loss.backward()).0;
        loss.inner()
    }) * b as f64;

    let frozen = ae.valid();
    let schedule = NoiseSchedule::new(&cfg.diffusion);
    let mut unet = seeded(&ad, cfg.seed + 1, || Unet::new(&cfg.unet, c, &ad));
    let mut optim = FusedAdam::new(0.0);
    let unet_rate = time_steps(opts.seconds, || {
        let x0 = frozen
            .encode(data.clone().select(0, batch_idx(&mut rng)))
            .reshape([b, c, h, w]);
        let ts: Vec<usize> = (0..b).map(|_| rng.below(schedule.len())).collect();
        let noise =
            Tensor::<4>::from_data(TensorData::new(rng.normals(b * dim), [b, c, h, w]), device);
        let a: Vec<f32> = ts
            .iter()
            .map(|&t| schedule.alpha_bars[t].sqrt() as f32)
            .collect();
        let s: Vec<f32> = ts
            .iter()
            .map(|&t| (1.0 - schedule.alpha_bars[t]).sqrt() as f32)
            .collect();
        let coef = |v: Vec<f32>| Tensor::<4>::from_data(TensorData::new(v, [b, 1, 1, 1]), device);
        let x_t = x0 * coef(a) + noise.clone() * coef(s);
        let loss = mse(unet.forward(x_t.autodiff(), &ts), noise.autodiff());
        unet = optim.step(1e-3, unet.clone(), &loss.backward()).0;
        loss.inner()
    }) * b as f64;

    let sampler_net = unet.valid();
    let sample_rate = |sampler: SamplerKind, steps: usize| {
        let req = SampleRequest {
            n: b,
            sampler,
            steps,
            eta: 0.0,
            variance: VarianceKind::Beta,
            seed: 3,
            clip_x0: None,
            capture: Capture::None,
            initial: None,
            solver_order: 2,
            timesteps: None,
            classes: None,
            guidance: 1.0,
        };
        let run = |r: &SampleRequest| {
            sample(
                &sampler_net,
                &schedule,
                [c, h, w],
                r,
                device,
                &mut |_, _| true,
            )
            .expect("bench sampling is never cancelled")
        };
        let mut warm = req.clone();
        warm.steps = 2;
        warm.sampler = SamplerKind::Ddim;
        run(&warm);
        let start = Instant::now();
        let out = run(&req);
        to_vec(frozen.decode(out.latents));
        b as f64 / start.elapsed().as_secs_f64()
    };
    BenchResult {
        backend: backend.into(),
        batch: b,
        ae_train_images_per_sec: ae_rate,
        unet_train_images_per_sec: unet_rate,
        ddim50_images_per_sec: sample_rate(SamplerKind::Ddim, 50),
        dpmpp15_images_per_sec: sample_rate(SamplerKind::Dpmpp, 15),
        ddpm_images_per_sec: opts
            .full
            .then(|| sample_rate(SamplerKind::Ddpm, schedule.len())),
        simd: None,
    }
}
