//! Samplers: determinism with a seed, frame capture, the fixed last step
//! (no noise added at t = 0), and DPM-Solver++ against closed forms.

mod common;

use latentlab::config::{SamplerKind, VarianceKind};
use latentlab::diffusion::NoiseSchedule;
use latentlab::diffusion::sampler::{Capture, SampleRequest, sample, sample_with, to_vec};
use latentlab::model::Unet;

fn setup() -> (Unet, NoiseSchedule) {
    let cfg = common::tiny_config();
    let device = common::device();
    let unet = latentlab::model::params::seeded(&device, 3, || Unet::new(&cfg.unet, 1, &device));
    (unet, NoiseSchedule::new(&cfg.diffusion))
}

fn request(sampler: SamplerKind, seed: u64) -> SampleRequest {
    SampleRequest {
        n: 3,
        sampler,
        steps: 10,
        eta: 0.0,
        variance: VarianceKind::Beta,
        seed,
        clip_x0: None,
        capture: Capture::None,
        initial: None,
        solver_order: 2,
        timesteps: None,
        classes: None,
        guidance: 1.0,
    }
}

fn run(
    unet: &Unet,
    s: &NoiseSchedule,
    req: &SampleRequest,
) -> (Vec<f32>, Vec<latentlab::diffusion::Frame>) {
    let out = sample(unet, s, [1, 4, 4], req, &common::device(), &mut |_, _| true).unwrap();
    (to_vec(out.latents), out.frames)
}

#[test]
fn ddim_eta0_is_deterministic_for_a_seed_and_for_given_noise() {
    let (unet, s) = setup();
    let a = run(&unet, &s, &request(SamplerKind::Ddim, 11)).0;
    assert_eq!(a, run(&unet, &s, &request(SamplerKind::Ddim, 11)).0);
    assert_ne!(a, run(&unet, &s, &request(SamplerKind::Ddim, 12)).0);
    // With η = 0 the only randomness is x_T: the same x_T under another seed
    // gives the same samples.
    let noise = latentlab::rng::Rng::derive(11, "sampling").normals(3 * 16);
    let mut given = request(SamplerKind::Ddim, 99);
    given.initial = Some(noise);
    assert_eq!(a, run(&unet, &s, &given).0);
}

#[test]
fn ddpm_repeats_with_a_seed_and_varies_across_seeds() {
    let (unet, s) = setup();
    let mut req = request(SamplerKind::Ddpm, 4);
    req.variance = VarianceKind::Posterior;
    let a = run(&unet, &s, &req).0;
    assert_eq!(a, run(&unet, &s, &req).0);
    req.seed = 5;
    assert_ne!(a, run(&unet, &s, &req).0);
}

#[test]
fn frames_cover_the_visited_steps_and_the_last_step_adds_no_noise() {
    let (unet, s) = setup();
    let mut req = request(SamplerKind::Ddpm, 4);
    req.capture = Capture::All;
    let (out, frames) = run(&unet, &s, &req);
    assert_eq!(frames.len(), 100);
    assert_eq!(frames.first().unwrap().t, 99);
    assert_eq!(frames.last().unwrap().t, 0);
    // At t = 0 the posterior mean equals the model's x̂0, so without noise the
    // sample is exactly the last frame's prediction.
    let last = &frames.last().unwrap().x0_pred;
    for (a, b) in out.iter().zip(last) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }

    let mut ddim = request(SamplerKind::Ddim, 4);
    ddim.capture = Capture::At([99, 0, 50].into_iter().collect());
    let (out, frames) = run(&unet, &s, &ddim);
    let ts: Vec<usize> = frames.iter().map(|f| f.t).collect();
    assert_eq!(ts, [99, 0], "DDIM-10 visits 99 and 0 but not 50");
    assert_eq!(frames[0].x_t.len(), 3 * 16);
    for (a, b) in out.iter().zip(&frames[1].x0_pred) {
        assert!((a - b).abs() < 1e-5);
    }
}

#[test]
fn sampling_can_be_cancelled() {
    let (unet, s) = setup();
    let mut calls = 0;
    let result = sample(
        &unet,
        &s,
        [1, 4, 4],
        &request(SamplerKind::Ddim, 1),
        &common::device(),
        &mut |done, total| {
            calls += 1;
            assert_eq!(total, 10);
            done < 3
        },
    );
    assert!(result.is_err());
    assert_eq!(calls, 3);
}

#[test]
fn clipping_bounds_every_x0_estimate_and_the_result() {
    let (unet, s) = setup();
    let mut req = request(SamplerKind::Ddim, 8);
    req.clip_x0 = Some(0.05);
    req.capture = Capture::All;
    let (out, frames) = run(&unet, &s, &req);
    assert!(
        frames
            .iter()
            .all(|f| f.x0_pred.iter().all(|v| v.abs() <= 0.05 + 1e-6))
    );
    // DDIM's last step returns x̂0 itself.
    assert!(out.iter().all(|v| v.abs() <= 0.05 + 1e-5), "{out:?}");
    req.clip_x0 = None;
    let (free, _) = run(&unet, &s, &req);
    assert!(
        free.iter().any(|v| v.abs() > 0.05),
        "an untrained model's samples exceed the bound"
    );
}

#[test]
fn a_schedule_that_drives_alpha_bar_to_zero_is_refused_not_sampled_into_nan() {
    // β 1e-4 → 0.5 over 1000 steps: ᾱ_T underflows to 0 in f32, and DDIM
    // without x̂0 clipping divides by √ᾱ_T.
    let mut cfg = common::tiny_config();
    cfg.apply_override("diffusion.timesteps=1000").unwrap();
    cfg.apply_override("diffusion.beta_end=0.5").unwrap();
    let problems = cfg.validate();
    assert!(
        problems
            .iter()
            .any(|p| p.field == "diffusion.beta_end" && p.message.contains("√ᾱ_T")),
        "{problems:?}"
    );
    // The sampler itself reports divergence instead of returning NaN.
    let (unet, _) = setup();
    let s = NoiseSchedule::new(&cfg.diffusion);
    let req = request(SamplerKind::Ddim, 5);
    let err = sample(
        &unet,
        &s,
        [1, 4, 4],
        &req,
        &common::device(),
        &mut |_, _| true,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("NaN or infinite"), "{err}");
    // Starting noise of the wrong length is an error, not a panic.
    let mut wrong = request(SamplerKind::Ddim, 5);
    wrong.initial = Some(vec![0.0; 7]);
    let (unet, s) = setup();
    let err = sample(
        &unet,
        &s,
        [1, 4, 4],
        &wrong,
        &common::device(),
        &mut |_, _| true,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("7 values"), "{err}");
}

#[test]
fn a_capture_keeps_an_even_spread_within_its_cap() {
    let visits: Vec<usize> = (0..100_000).rev().collect();
    let Capture::At(kept) = Capture::spread(&visits, 1000) else {
        panic!("a set of timesteps")
    };
    assert_eq!(kept.len(), 1000);
    assert!(
        kept.contains(&99_999) && kept.contains(&0),
        "first and last"
    );
    let gaps: Vec<usize> = kept
        .iter()
        .zip(kept.iter().skip(1))
        .map(|(a, b)| b - a)
        .collect();
    assert!(gaps.iter().all(|&g| (99..=101).contains(&g)), "even");
    // Short chains keep every step.
    let Capture::At(all) = Capture::spread(&[9, 5, 0], 1000) else {
        panic!()
    };
    assert_eq!(all.len(), 3);
    // The window's budget: DDPM over 100,000 steps with 64 samples stays
    // within 256 MiB of frames; one sample keeps the 1,000-frame maximum.
    use latentlab::pipeline::{MAX_CAPTURE_BYTES, MAX_CAPTURE_FRAMES, PIXELS, capture_cap};
    let cap = capture_cap(64, 64);
    assert!(
        cap * 64 * 2 * (64 + PIXELS) * 4 <= MAX_CAPTURE_BYTES && cap > 100,
        "{cap}"
    );
    assert_eq!(capture_cap(1, 64), MAX_CAPTURE_FRAMES);
    // And the sampler captures exactly what was asked.
    let (unet, s) = setup();
    let mut req = request(SamplerKind::Ddpm, 1);
    let visits = latentlab::diffusion::sampler::visited_timesteps(&s, &req);
    req.capture = Capture::spread(&visits, 7);
    let frames = run(&unet, &s, &req).1;
    assert_eq!(frames.len(), 7);
    assert_eq!((frames[0].t, frames[6].t), (visits[0], 0));
}

/// Gaussian data N(μ, s²) in every dimension: the exact noise predictor is
/// known, ε̂ = (x_t − α·E[x0|x_t]) / σ with E[x0|x_t] = μ + α s² (x_t − αμ) /
/// (α² s² + σ²), so a sampler's output distribution must come out N(μ, s²).
fn gaussian_denoiser(
    schedule: &NoiseSchedule,
    mu: f32,
    s2: f32,
) -> impl Fn(burn::tensor::Tensor<4>, &[usize]) -> burn::tensor::Tensor<4> + '_ {
    move |x, t| {
        let ab = schedule.alpha_bars[t[0]] as f32;
        let (a, sig2) = (ab.sqrt(), 1.0 - ab);
        let x0 = (x.clone() - a * mu).mul_scalar(a * s2 / (a * a * s2 + sig2)) + mu;
        (x - x0.mul_scalar(a)).div_scalar(sig2.sqrt())
    }
}

fn moments(v: &[f32]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

fn gaussian_samples(
    schedule: &NoiseSchedule,
    sampler: SamplerKind,
    steps: usize,
    order: usize,
) -> Vec<f32> {
    let (mu, s2) = (0.7f32, 0.25f32);
    let eps = gaussian_denoiser(schedule, mu, s2);
    let mut req = request(sampler, 11);
    req.n = 4000;
    req.steps = steps;
    req.solver_order = order;
    let out = sample_with(
        &eps,
        schedule,
        [1, 1, 1],
        &req,
        &common::device(),
        &mut |_, _| true,
    )
    .unwrap();
    to_vec(out.latents)
}

#[test]
fn dpm_solver_samples_gaussian_data_with_the_right_mean_and_spread_in_few_steps() {
    let mut cfg = common::tiny_config().diffusion;
    cfg.timesteps = 1000;
    for schedule in [
        latentlab::config::BetaSchedule::Linear,
        latentlab::config::BetaSchedule::Cosine,
    ] {
        cfg.schedule = schedule;
        let sch = NoiseSchedule::new(&cfg);
        let err = |v: &[f32]| {
            let (m, s) = moments(v);
            ((m - 0.7).abs(), (s - 0.5).abs())
        };
        let (dm, ds) = err(&gaussian_samples(&sch, SamplerKind::Dpmpp, 15, 2));
        assert!(
            dm < 0.03 && ds < 0.025,
            "{schedule:?}: DPM-Solver++-15 mean error {dm}, std error {ds}"
        );
        // As close as DDIM gets in 50 steps, or closer.
        let (_, ddim50) = err(&gaussian_samples(&sch, SamplerKind::Ddim, 50, 2));
        assert!(
            ds < ddim50,
            "{schedule:?}: std error DPM-Solver++-15 {ds} vs DDIM-50 {ddim50}"
        );
        // At 10 steps it is closer than DDIM to the true spread.
        let (_, dpm) = err(&gaussian_samples(&sch, SamplerKind::Dpmpp, 10, 2));
        let (_, ddim) = err(&gaussian_samples(&sch, SamplerKind::Ddim, 10, 2));
        assert!(
            dpm < ddim,
            "{schedule:?}: std error DPM-Solver++ {dpm} vs DDIM {ddim} at 10 steps"
        );
    }
}

#[test]
fn first_order_dpm_solver_is_ddim_with_eta_zero_on_the_same_noise() {
    let (unet, schedule) = setup();
    for steps in [1, 4, 10] {
        let mut dpm = request(SamplerKind::Dpmpp, 5);
        dpm.solver_order = 1;
        dpm.steps = steps;
        let mut ddim = request(SamplerKind::Ddim, 5);
        // The same timesteps, DPM-Solver++'s own.
        ddim.timesteps = Some(latentlab::diffusion::sampler::visited_timesteps(
            &schedule, &dpm,
        ));
        let (a, _) = run(&unet, &schedule, &dpm);
        let (b, _) = run(&unet, &schedule, &ddim);
        let worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-4, "{steps} steps: differ by {worst}");
    }
    // Second order is a different (better) walk on the same noise.
    let (a, _) = run(&unet, &schedule, &request(SamplerKind::Dpmpp, 5));
    let (b, _) = run(&unet, &schedule, &request(SamplerKind::Ddim, 5));
    assert!(a.iter().zip(&b).any(|(x, y)| (x - y).abs() > 1e-3));
}

#[test]
fn guidance_zero_is_unconditional_one_is_conditional_and_more_extrapolates() {
    use latentlab::diffusion::sampler::guided_eps;
    let mut cfg = common::tiny_config();
    cfg.apply_override("unet.classes=10").unwrap();
    let device = common::device();
    let unet = latentlab::model::params::seeded(&device, 3, || Unet::new(&cfg.unet, 1, &device));
    assert_eq!(unet.classes(), 10);
    let x = burn::tensor::Tensor::<4>::from_data(
        burn::tensor::TensorData::new(latentlab::rng::Rng::new(1).normals(3 * 16), [3, 1, 4, 4]),
        &device,
    );
    let (t, classes) = ([5usize, 50, 90], [0usize, 1, 1]);
    let uncond = to_vec(unet.forward(x.clone(), &t));
    let cond = to_vec(unet.forward_classes(x.clone(), &t, Some(&classes)));
    assert!(
        uncond.iter().zip(&cond).any(|(a, b)| (a - b).abs() > 1e-6),
        "the class matters"
    );
    let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5);
    assert!(close(
        &to_vec(guided_eps(&unet, x.clone(), &t, Some(&classes), 0.0)),
        &uncond
    ));
    assert!(close(
        &to_vec(guided_eps(&unet, x.clone(), &t, Some(&classes), 1.0)),
        &cond
    ));
    // w = 3 in one doubled batch: ε_u + 3 (ε_c − ε_u).
    let guided = to_vec(guided_eps(&unet, x.clone(), &t, Some(&classes), 3.0));
    let want: Vec<f32> = uncond
        .iter()
        .zip(&cond)
        .map(|(u, c)| u + 3.0 * (c - u))
        .collect();
    assert!(close(&guided, &want));
    // Sampling with w = 0 is unconditional sampling with the same noise.
    let mut req = request(SamplerKind::Dpmpp, 4);
    req.classes = Some(vec![1, 1, 1]);
    req.guidance = 0.0;
    let (guided0, _) = run(&unet, &NoiseSchedule::new(&cfg.diffusion), &req);
    req.classes = None;
    let (plain, _) = run(&unet, &NoiseSchedule::new(&cfg.diffusion), &req);
    assert_eq!(guided0, plain);
}
