//! The scores a run keeps when training ends: reconstruction quality over
//! the whole test split and, with `checkpoint.final_samples` > 0, the
//! quality of that many samples drawn with the run's own sampler from a
//! fixed seed, so every run is scored on the same noise.

use super::events::Event;
use super::trainer::{Control, Ctx, TrainError};
use crate::classifier;
use crate::data::Dataset;
use crate::diffusion::sampler::SampleError;
use crate::pipeline::{self, LatentDiffusion};
use crate::run::FinalScores;

/// The seed of the scored samples: `latentlab eval --samples N` with its
/// default seed draws the same ones.
pub const FINAL_SEED: u64 = 0;

/// Score the finished run and keep the scores in `RUN/eval.json`. A run
/// that has them already (resumed after it finished) keeps them. `None`
/// when a Stop arrived while scoring: the run stays unscored, and
/// resuming it scores it.
pub fn final_scores(ctx: &mut Ctx, data: &Dataset) -> Result<Option<FinalScores>, TrainError> {
    let root = ctx.run.root().to_path_buf();
    if let Some(Ok(kept)) = FinalScores::read(&root) {
        return Ok(Some(kept));
    }
    let wanted = ctx.cfg.checkpoint.final_samples;
    let model = LatentDiffusion::load(&root, &ctx.device)?;
    report(ctx, "reconstructing the test split", 0, 1);
    let rec = pipeline::reconstruct(
        &model.ae,
        &ctx.data.test,
        &ctx.data.test_pixels,
        ctx.data.test_len,
    )
    .summary();
    let mut req = model.default_request(wanted, FINAL_SEED);
    let classes = model.unet.classes();
    if classes > 0 {
        // A conditional run is scored as it is used: every class in turn,
        // with its guidance.
        req.classes = Some((0..wanted).map(|i| i % classes).collect());
    }
    let mut scores = FinalScores {
        psnr: rec.psnr,
        ssim: rec.ssim,
        ssim_gaussian: rec.ssim_gaussian,
        test_images: rec.images,
        dataset: data.source.clone(),
        cfid: None,
        confidence: None,
        class_entropy: None,
        n_samples: 0,
        sampler: req.sampler.slug().into(),
        steps: req.sampler.evaluations(req.steps, model.schedule.len()),
        seed: FINAL_SEED,
        classifier: None,
        guidance: req.classes.as_ref().map(|_| req.guidance),
        class_accuracy: None,
        date: crate::run::utc_stamp(),
    };
    // cFID fits a Gaussian to each side: both need two images or more.
    if wanted >= 2 && ctx.data.test_len >= 2 {
        let Some((clf, info)) = classifier_for(ctx, data)? else {
            return Ok(None);
        };
        let images = match model.generate_many(&req, &mut |done| {
            report(ctx, "sampling", done, wanted);
            ctx.between_steps() != Control::Stop
        }) {
            Ok(images) => images,
            Err(SampleError::Cancelled) => return Ok(None),
            Err(e) => return Err(TrainError::Other(format!("final samples: {e}"))),
        };
        report(ctx, "scoring the samples", wanted, wanted);
        let s = classifier::score(&clf, &images, &ctx.data.test_pixels, &ctx.device)
            .map_err(TrainError::Other)?;
        scores.cfid = Some(s.cfid);
        scores.confidence = Some(s.confidence);
        scores.class_entropy = Some(s.class_entropy);
        scores.n_samples = s.n_samples;
        scores.class_accuracy = req
            .classes
            .as_ref()
            .map(|wanted| classifier::class_accuracy(&clf, &images, wanted, &ctx.device));
        scores.classifier = Some(info);
    }
    scores.keep(&root)?;
    Ok(Some(scores))
}

/// The cached classifier for `data`, trained (and cached) first if there is
/// none, with its epochs reported as progress; None when a Stop arrived.
fn classifier_for(
    ctx: &mut Ctx,
    data: &Dataset,
) -> Result<Option<(classifier::Classifier, classifier::ClassifierInfo)>, TrainError> {
    classifier::load_or_train(data, &ctx.device.clone(), &mut |e, epochs, _| {
        let what = if epochs == 0 {
            "waiting for another run training the classifier"
        } else {
            "training the classifier that scores samples"
        };
        report(ctx, what, e, epochs.max(1));
        ctx.between_steps() != Control::Stop
    })
    .map_err(TrainError::Other)
}

fn report(ctx: &Ctx, what: &str, done: usize, total: usize) {
    ctx.emit(Event::Scoring {
        what: what.into(),
        done,
        total,
    });
}
