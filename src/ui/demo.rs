//! A deterministic demo state for screenshots and snapshot tests: real
//! digits from the embedded MNIST subset, with made-up curves, blurred
//! "reconstructions" (scored for real), pooled-pixel "latents" and noised
//! "denoising frames". Every panel says it is demo data.

use super::app::App;
use super::session::{Curves, Denoising, Latents, ReconEpoch};
use crate::data::{self, Dataset, DatasetKind, LocatedDataset};
use crate::diffusion::NoiseSchedule;
use crate::diffusion::sampler::ddim_timesteps;
use crate::metrics::ImageMetrics;
use crate::pipeline::{PIXELS, SIDE};
use crate::rng::Rng;
use crate::train::Stage;
use crate::train::events::{DecodedFrame, EvalSummary, Progress};

fn images(d: &Dataset, range: std::ops::Range<usize>) -> Vec<f32> {
    Dataset::to_f32(&d.test_images[range.start * PIXELS..range.end * PIXELS])
}

/// Box blur of radius `r` (0 = copy).
pub(super) fn blur(img: &[f32], r: usize) -> Vec<f32> {
    let r = r as isize;
    let s = SIDE as isize;
    (0..PIXELS)
        .map(|i| {
            let (x, y) = ((i % SIDE) as isize, (i / SIDE) as isize);
            let (mut sum, mut n) = (0f32, 0f32);
            for dy in -r..=r {
                for dx in -r..=r {
                    let (xx, yy) = (x + dx, y + dy);
                    if (0..s).contains(&xx) && (0..s).contains(&yy) {
                        sum += img[(yy * s + xx) as usize];
                        n += 1.0;
                    }
                }
            }
            sum / n
        })
        .collect()
}

pub(super) fn map_images(images: &[f32], f: impl Fn(&[f32]) -> Vec<f32>) -> Vec<f32> {
    images.chunks_exact(PIXELS).flat_map(f).collect()
}

fn curve(
    steps: usize,
    start: f32,
    floor: f32,
    tau: f32,
    noise: f32,
    seed: u64,
) -> Vec<(usize, f32)> {
    let mut rng = Rng::new(seed);
    (1..=steps)
        .map(|s| {
            let clean = floor + (start - floor) * (-(s as f32) / tau).exp();
            let jitter = 1.0 + noise * rng.normals(1)[0];
            (s, (clean * jitter).max(1e-4))
        })
        .collect()
}

fn epoch_means(points: &[(usize, f32)], per_epoch: usize) -> Vec<super::session::EpochMean> {
    points
        .chunks(per_epoch)
        .enumerate()
        .map(|(e, c)| super::session::EpochMean {
            epoch: e + 1,
            step: c.last().map_or(0, |p| p.0),
            mean: c.iter().map(|p| p.1 as f64).sum::<f64>() / c.len() as f64,
        })
        .collect()
}

fn recon_epoch(epoch: usize, originals: Vec<f32>, blurred: f32) -> ReconEpoch {
    let reconstructions = map_images(&originals, |img| {
        blur(img, 1)
            .into_iter()
            .zip(img)
            .map(|(b, &o)| blurred * b + (1.0 - blurred) * o)
            .collect()
    });
    let metrics: Vec<ImageMetrics> = originals
        .chunks_exact(PIXELS)
        .zip(reconstructions.chunks_exact(PIXELS))
        .map(|(a, b)| ImageMetrics::compute(a, b, SIDE, SIDE))
        .collect();
    let n = metrics.len() as f64;
    let mean = EvalSummary {
        psnr: metrics.iter().map(|m| m.psnr.min(100.0)).sum::<f64>() / n,
        ssim: metrics.iter().map(|m| m.ssim).sum::<f64>() / n,
        ssim_gaussian: metrics.iter().map(|m| m.ssim_gaussian).sum::<f64>() / n,
        images: metrics.len(),
    };
    ReconEpoch {
        epoch,
        originals,
        reconstructions,
        metrics,
        mean,
    }
}

/// 4×4 average pooling: 49 values per image, a stand-in for latents.
fn pooled(img: &[f32]) -> Vec<f32> {
    let mut out = vec![0f32; 49];
    for (i, &v) in img.iter().enumerate() {
        out[(i / SIDE / 4) * 7 + (i % SIDE) / 4] += v / 16.0;
    }
    out
}

fn frames(app: &App, clean: &[f32], n: usize) -> Vec<DecodedFrame> {
    let schedule = NoiseSchedule::new(&app.config.diffusion);
    let noise = Rng::new(5).normals(n * PIXELS);
    ddim_timesteps(schedule.len(), 50)
        .into_iter()
        .map(|t| {
            let ab = schedule.alpha_bars[t] as f32;
            let x_t = clean
                .iter()
                .zip(&noise)
                .map(|(&c, &z)| {
                    (ab.sqrt() * c + (1.0 - ab).sqrt() * z * 0.5 + 0.5 * (1.0 - ab.sqrt()))
                        .clamp(0.0, 1.0)
                })
                .collect();
            let r = ((1.0 - ab) * 3.0).round() as usize;
            let x0 = map_images(clean, |img| {
                blur(img, r)
                    .into_iter()
                    .map(|v| v * (0.4 + 0.6 * ab.sqrt()))
                    .collect()
            });
            DecodedFrame {
                t,
                x_t,
                x0_pred: x0,
            }
        })
        .collect()
}

pub fn fill(app: &mut App) {
    // The seed preset mirrors a published model, so it stays put: snapshots
    // of the demo do not move when the other presets are tuned.
    if let Ok(mut cfg) = crate::config::ExperimentConfig::preset("seed") {
        cfg.name = "demo".into();
        app.panels.experiment.form.reset(&cfg);
        app.config = cfg;
        app.settings.preset = "seed".into();
    }
    let d = data::load(
        DatasetKind::Mnist,
        &LocatedDataset::EmbeddedSubset { note: None },
    )
    .expect("the embedded subset is valid");
    let s = &mut app.session;
    s.run_name = "demo".into();
    s.dataset = "offline MNIST subset (demo data)".into();
    s.backend = "flex".into();
    s.status = "Demo data — start a run to see your own".into();
    let (ae_per_epoch, diff_per_epoch) = (71, 36);
    let mut c = Curves {
        ae: curve(4 * ae_per_epoch, 0.11, 0.012, 60.0, 0.06, 1),
        diffusion: curve(12 * diff_per_epoch, 0.9, 0.19, 90.0, 0.08, 2),
        ..Default::default()
    };
    c.ae_epochs = epoch_means(&c.ae, ae_per_epoch);
    c.diffusion_epochs = epoch_means(&c.diffusion, diff_per_epoch);
    c.version = 1;
    s.curves = c;
    s.progress = Some(Progress {
        stage: Stage::Diffusion,
        epoch: 12,
        epochs: 30,
        step: 12 * diff_per_epoch,
        total_steps: 30 * diff_per_epoch,
        images_per_sec: 2150.0,
        eta_secs: 77.0,
    });
    let originals = images(&d, 0..16);
    s.recons = vec![
        recon_epoch(1, originals.clone(), 0.95),
        recon_epoch(2, originals.clone(), 0.75),
        recon_epoch(3, originals.clone(), 0.6),
        recon_epoch(4, originals, 0.5),
    ];
    let count = 1000.min(d.test_len());
    let all = images(&d, 0..count);
    s.latents = Some(Latents {
        epoch: 4,
        dim: 49,
        values: map_images(&all, pooled),
        labels: d.test_labels[..count].to_vec(),
    });
    let clean = images(&d, 16..24);
    let preview = Denoising {
        origin: "demo frames (noised test digits)".into(),
        n: 8,
        images: clean.clone(),
        frames: frames(app, &clean, 8),
    };
    app.session.preview = Some(preview);
    app.panels.samples.images = images(&d, 100..132);
    app.panels.samples.origin = "demo gallery (test digits)".into();
    app.panels.samples.version = 1;
    app.panels.experiment.data_preview = Some(("offline MNIST subset (demo data)".into(), true));
    // The Runs panel reads runs from disk: a few made-up ones, two selected.
    if app.opts.runs_dir.is_none()
        && let Ok(dir) = tempfile::Builder::new()
            .prefix("latentlab-demo-runs")
            .tempdir()
        && let Ok(selected) = super::demo_runs::write(&dir.path().join("runs"), &d)
    {
        let mut runs = crate::run::list_runs(&dir.path().join("runs"));
        runs.sort();
        app.panels.loss.runs = runs;
        // Made-up curves for the selected runs, overlaid in the Loss panel.
        for (k, run) in selected.iter().enumerate() {
            let k = k as u64;
            let mut c = Curves {
                ae: curve(
                    4 * ae_per_epoch,
                    0.12,
                    0.013 + 0.002 * k as f32,
                    70.0,
                    0.05,
                    10 + k,
                ),
                diffusion: curve(
                    12 * diff_per_epoch,
                    0.95,
                    0.2 + 0.03 * k as f32,
                    80.0,
                    0.07,
                    20 + k,
                ),
                ..Default::default()
            };
            c.version = 1;
            app.panels.loss.overlays.insert(run.clone(), c);
        }
        app.settings.runs_dir = dir.path().join("runs");
        app.settings.overlay = selected;
        app.demo_runs = Some(dir);
    }
    app.data = Some((
        DatasetKind::Mnist,
        None,
        std::sync::Arc::new(super::jobs::LocatedData {
            description: d.source.clone(),
            note: None,
            subset: true,
            data: d,
        }),
    ));
}
