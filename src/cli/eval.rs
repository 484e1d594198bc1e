//! `latentlab eval`: reconstruction quality over the whole test split and,
//! with `--samples N`, the quality of N generated images.

use std::path::PathBuf;

use clap::Args;

use super::common;
use super::sample::{SamplerArgs, generate_batched};
use super::{BackendArgs, CliError};
use crate::classifier;
use crate::data::Dataset;
use crate::pipeline::{self, LatentDiffusion};
use crate::train::trainer::DeviceData;

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The run directory written by `latentlab train`.
    #[arg(long, value_name = "DIR")]
    pub run: PathBuf,
    /// Directory holding the dataset's IDX files.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Also generate N images and score them with the classifier (cFID,
    /// confidence, class entropy); trains the classifier first if needed.
    #[arg(long, value_name = "N")]
    pub samples: Option<usize>,
    #[command(flatten)]
    pub sampler: SamplerArgs,
    /// Print JSON (keys: psnr, ssim, ssim_gaussian, test_images, dataset; with
    /// --samples also cfid, confidence, class_entropy, classifier_accuracy,
    /// n_samples, and on a class-conditional run class_accuracy, guidance).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: EvalArgs, backend: &BackendArgs) -> Result<(), CliError> {
    if args.samples.is_some_and(|n| !(2..=100_000).contains(&n)) {
        return Err(CliError::usage(
            "--samples: must be between 2 and 100000 (cFID needs at least two; all of them are \
             kept in memory at once)",
        ));
    }
    let (_, device) = common::device(backend)?;
    let model = LatentDiffusion::load(&args.run, &device)?;
    let data: Dataset = common::load_dataset(model.cfg.dataset, args.data_dir.as_deref())?;
    if args.samples.is_some() && data.test_len() < 2 {
        return Err(CliError::usage(format!(
            "--samples: cFID compares the samples with the test split, which needs at least 2 \
             images; {} has {}",
            data.source,
            data.test_len()
        )));
    }
    let dev = DeviceData::new(&data, &device);
    let rec = pipeline::reconstruct(&model.ae, &dev.test, &dev.test_pixels, dev.test_len);
    let s = rec.summary();
    let mut json = serde_json::json!({
        "psnr": s.psnr, "ssim": s.ssim, "ssim_gaussian": s.ssim_gaussian,
        "test_images": s.images, "dataset": data.source,
    });
    let sampled = match args.samples {
        Some(n) => {
            let (clf, info) = super::classifier::load_or_train(&data, &device)?;
            let mut req = args.sampler.request(&model, n)?;
            let classes = model.unet.classes();
            if classes > 0 && req.classes.is_none() {
                // A conditional run is asked for every class in turn.
                req.classes = Some((0..req.n).map(|i| i % classes).collect());
            }
            let images = generate_batched(&model, &req)?;
            let scores = classifier::score(&clf, &images, &dev.test_pixels, &device)
                .map_err(CliError::usage)?;
            json["cfid"] = scores.cfid.into();
            json["confidence"] = scores.confidence.into();
            json["class_entropy"] = scores.class_entropy.into();
            json["classifier_accuracy"] = info.test_accuracy.into();
            json["n_samples"] = scores.n_samples.into();
            if let Some(wanted) = &req.classes {
                let accuracy = classifier::class_accuracy(&clf, &images, wanted, &device);
                json["class_accuracy"] = accuracy.into();
                json["guidance"] = req.guidance.into();
                eprintln!(
                    "class accuracy {accuracy:.4}: the share of samples the classifier assigns \
                     to the class asked for (guidance {})",
                    req.guidance
                );
            }
            json["sampler"] = req.sampler.slug().into();
            json["sampler_steps"] = req.steps.into();
            json["seed"] = req.seed.into();
            Some((scores, info, req))
        }
        None => None,
    };
    // Kept beside the run, one file per way of scoring it, so evaluations
    // with other samplers or seeds never overwrite each other.
    let name = match &sampled {
        // Guided samples also by their guidance: w3 is 3, w1.5 is 1.5.
        Some((_, _, req)) if req.classes.is_some() => format!(
            "{}-{}-{}-w{}.json",
            req.sampler.slug(),
            req.steps,
            req.seed,
            req.guidance
        ),
        Some((_, _, req)) => format!("{}-{}-{}.json", req.sampler.slug(), req.steps, req.seed),
        None => "reconstruction.json".to_string(),
    };
    json["date"] = crate::run::utc_stamp().into();
    let kept = crate::run::RunDir::keep_eval(&args.run, &name, &json)?;
    if args.json {
        common::print_json(&json);
        return Ok(());
    }
    println!(
        "reconstruction: PSNR {:.3} dB · SSIM {:.4} (scikit-image default, 7×7 uniform) · SSIM {:.4} (Gaussian 11×11, σ 1.5) — mean over {} test images of {}",
        s.psnr, s.ssim, s.ssim_gaussian, s.images, data.source
    );
    if let Some((scores, info, req)) = sampled {
        let steps = req.sampler.evaluations(req.steps, model.schedule.len());
        println!(
            "samples ({} × {:?}-{steps}, seed {}): cFID {:.3} · confidence {:.4} · class entropy {:.4} (classifier test accuracy {:.2}%)",
            scores.n_samples,
            req.sampler,
            req.seed,
            scores.cfid,
            scores.confidence,
            scores.class_entropy,
            info.test_accuracy * 100.0
        );
    }
    eprintln!("kept in {}", kept.display());
    Ok(())
}
