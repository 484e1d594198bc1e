//! One step of each seed model on flex, timed for kernel work: a sampling
//! step (U-Net forward), a U-Net and an autoencoder training step (forward
//! and backward, no optimizer). Each figure is the fastest and the median
//! of many runs; on a shared machine the fastest moves least, so compare
//! two builds by it, alternating them.
//!
//!   cargo bench --bench steps -- [--threads T] [--batch B] [--runs N] [--only forward|sample|unet|ae]
//!
//! `--only` times one step alone, for a profiler (`perf record`) to see it
//! without the others. `sample` (only when asked for) is a whole DDIM-50
//! run through the sampler, per step: the forward plus the sampler's own
//! arithmetic, as `latentlab bench` times it.
//!
//! `latentlab bench` measures whole-recipe throughput instead.

use std::time::Instant;

use burn::prelude::*;
use burn::tensor::Distribution;
use latentlab::backend::{BackendKind, on_compute_pool, select, set_threads, tune_allocator};
use latentlab::config::{ExperimentConfig, SamplerKind};
use latentlab::diffusion::NoiseSchedule;
use latentlab::diffusion::sampler::{SampleRequest, sample};
use latentlab::model::params::seeded;
use latentlab::model::{Autoencoder, Unet};

const DDIM_STEPS: usize = 50;

/// The number (at least `min`) after `name`, or `default`; anything else
/// ends the run with one line saying which flag was wrong.
fn arg(name: &str, default: usize, min: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    let Some(at) = args.iter().position(|a| a == name) else {
        return default;
    };
    match args.get(at + 1).map(|v| v.parse::<usize>()) {
        Some(Ok(v)) if v >= min => v,
        _ => {
            eprintln!("steps: {name} takes a number of at least {min} (default {default})");
            std::process::exit(2);
        }
    }
}

/// The step named after `--only` ("forward", "unet" or "ae"), if any.
fn only() -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == "--only")?;
    match args.get(at + 1).map(String::as_str) {
        Some(step @ ("forward" | "sample" | "unet" | "ae")) => Some(step.to_string()),
        _ => {
            eprintln!("steps: --only takes forward, sample, unet or ae");
            std::process::exit(2);
        }
    }
}

/// Fastest and median milliseconds of `runs` calls, after two warm-ups.
fn time(runs: usize, mut f: impl FnMut()) -> (f64, f64) {
    f();
    f();
    let mut ms: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    (ms[0], ms[ms.len() / 2])
}

fn report(what: &str, batch: usize, (fastest, median): (f64, f64)) {
    println!(
        "{what:<18} {fastest:>9.2} ms {median:>9.2} ms {:>9.0} i/s",
        batch as f64 * 1e3 / fastest
    );
}

fn main() {
    let (threads, batch, runs) = (
        arg("--threads", 1, 0),
        arg("--batch", 256, 1),
        arg("--runs", 20, 1),
    );
    let only = only();
    let wanted = |step: &str| only.as_deref().is_none_or(|o| o == step);
    tune_allocator();
    set_threads(BackendKind::Flex, threads);
    let device = select(BackendKind::Flex, "cpu").expect("flex is the default backend");
    let cfg = ExperimentConfig::preset("seed").expect("the seed preset");
    let [c, h, w] = cfg.autoencoder.latent_shape;
    let shown = match threads {
        0 => "all".to_string(),
        n => n.to_string(),
    };
    println!("flex, {shown} thread(s), batch {batch}, fastest / median of {runs}");
    println!(
        "{:<18} {:>12} {:>12} {:>13}",
        "step", "fastest", "median", "at fastest"
    );
    on_compute_pool(BackendKind::Flex, || {
        let ad = device.clone().autodiff();
        let unet = seeded(&ad, 1, || Unet::new(&cfg.unet, c, &ad));
        let steps: Vec<usize> = (0..batch).map(|i| i * 7 % 1000).collect();
        let latents =
            Tensor::<4>::random([batch, c, h, w], Distribution::Normal(0.0, 1.0), &device);

        if wanted("forward") {
            let sampler = unet.valid();
            report(
                "U-Net forward",
                batch,
                time(runs, || {
                    sampler.forward(latents.clone(), &steps).into_data();
                }),
            );
        }
        if only.as_deref() == Some("sample") {
            let sampler = unet.valid();
            let schedule = NoiseSchedule::new(&cfg.diffusion);
            let mut req = SampleRequest::from_config(&cfg.sampling, batch, 3, None);
            (req.sampler, req.steps) = (SamplerKind::Ddim, DDIM_STEPS);
            let (fastest, median) = time(runs, || {
                sample(
                    &sampler,
                    &schedule,
                    [c, h, w],
                    &req,
                    &device,
                    &mut |_, _| true,
                )
                .expect("never cancelled");
            });
            let per_step = |ms: f64| ms / DDIM_STEPS as f64;
            report(
                "DDIM-50, per step",
                batch,
                (per_step(fastest), per_step(median)),
            );
        }
        if wanted("unet") {
            report(
                "U-Net train",
                batch,
                time(runs, || {
                    let out = unet.forward(latents.clone().autodiff(), &steps);
                    let grads = (out.clone() * out).mean().backward();
                    drop(grads);
                }),
            );
        }
        if !wanted("ae") {
            return;
        }

        let ae = seeded(&ad, 2, || Autoencoder::new(&cfg.autoencoder, &ad));
        let images = Tensor::<4>::random([batch, 1, 28, 28], Distribution::Default, &device);
        report(
            "autoencoder train",
            batch,
            time(runs, || {
                let x = images.clone().autodiff();
                let out = ae.forward(x.clone());
                let grads = ((out - x).powi_scalar(2)).mean().backward();
                drop(grads);
            }),
        );
    });
}
