//! Samplers: determinism with a seed, frame capture, and the fixed last
//! step (no noise added at t = 0).

mod common;

use latentlab::config::{SamplerKind, VarianceKind};
use latentlab::diffusion::NoiseSchedule;
use latentlab::diffusion::sampler::{Capture, SampleRequest, sample, to_vec};
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
    let visits = latentlab::diffusion::sampler::visited_timesteps(s.len(), &req);
    req.capture = Capture::spread(&visits, 7);
    let frames = run(&unet, &s, &req).1;
    assert_eq!(frames.len(), 7);
    assert_eq!((frames[0].t, frames[6].t), (visits[0], 0));
}
