//! The sample-quality scorer: a small CNN trained by latentlab itself (and
//! cached per dataset), whose penultimate features give a Fréchet distance
//! between generated and test images (cFID), plus the mean top-class
//! confidence and the class entropy of generated images.

pub mod frechet;
pub mod model;

use std::path::PathBuf;

use burn::module::Module;
use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};
use serde::{Deserialize, Serialize};

pub use model::Classifier;

use crate::config::{LrSchedule, StageTraining};
use crate::data::Dataset;
use crate::diffusion::sampler::to_vec;
use crate::model::params::seeded;
use crate::rng::Rng;
use crate::train::optim::FusedAdam;
use crate::train::trainer::lr_at;

const SEED: u64 = 1234;
const BATCH: usize = 128;
const SHIFT: i64 = 2;

/// What the cache keeps next to the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifierInfo {
    pub dataset: String,
    pub train_images: usize,
    pub test_images: usize,
    pub epochs: usize,
    pub test_accuracy: f64,
}

/// Cache location, e.g. ~/.cache/latentlab/classifier/mnist-9000-<hash>.bpk:
/// one per training set (kind, size and a hash of its content), so the
/// offline subset, the full set and a user's own IDX files never share one.
pub fn cache_stem(data: &Dataset) -> PathBuf {
    crate::data::sources::cache_root()
        .join("classifier")
        .join(format!(
            "{}-{}-{:016x}",
            data.kind.name(),
            data.train_len(),
            data.train_hash()
        ))
}

/// `progress(epoch, epochs, loss)` after each training epoch, and with
/// epoch 0 while waiting for another process's training; false gives up.
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize, f64) -> bool;

/// The cached classifier for `data`, training and caching one first if
/// there is none. Runs scoring side by side (a sweep's jobs) train it once:
/// the others wait on the cache's lock file, then load it. `Ok(None)` when
/// `progress` gave up.
pub fn load_or_train(
    data: &Dataset,
    device: &Device,
    progress: Progress<'_>,
) -> Result<Option<(Classifier, ClassifierInfo)>, String> {
    if let Some(found) = load_cached(data, device)? {
        return Ok(Some(found));
    }
    let Some(_lock) = cache_lock(data, progress)? else {
        return Ok(None);
    };
    // Trained by another process while this one waited?
    if let Some(found) = load_cached(data, device)? {
        return Ok(Some(found));
    }
    train_and_save(data, device, default_epochs(data.train_len()), progress)
}

/// Train for `epochs` and replace the cached classifier (under the lock).
pub fn retrain(
    data: &Dataset,
    device: &Device,
    epochs: usize,
    progress: Progress<'_>,
) -> Result<Option<(Classifier, ClassifierInfo)>, String> {
    let Some(_lock) = cache_lock(data, progress)? else {
        return Ok(None);
    };
    train_and_save(data, device, epochs, progress)
}

fn train_and_save(
    data: &Dataset,
    device: &Device,
    epochs: usize,
    progress: Progress<'_>,
) -> Result<Option<(Classifier, ClassifierInfo)>, String> {
    let Some((model, info)) = train(data, device, epochs, &mut |e, loss| {
        progress(e, epochs, loss)
    }) else {
        return Ok(None);
    };
    save(&model, &info, &cache_stem(data))?;
    Ok(Some((model, info)))
}

/// The cache's lock for `data`, held until dropped; None if `progress`
/// gave up while another process held it.
fn cache_lock(data: &Dataset, progress: Progress<'_>) -> Result<Option<std::fs::File>, String> {
    let path = cache_stem(data).with_extension("lock");
    let dir = path.parent().expect("cache stem has a parent");
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    loop {
        match lock.try_lock() {
            Ok(()) => return Ok(Some(lock)),
            Err(std::fs::TryLockError::WouldBlock) => {
                if !progress(0, 0, f64::NAN) {
                    return Ok(None);
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(format!("{}: {e}", path.display())),
        }
    }
}

/// Default epochs: about 150k training images seen, and at least 8 passes
/// (Fashion-MNIST's 60k images need them to pass 90% test accuracy).
pub fn default_epochs(train_len: usize) -> usize {
    (150_000 / train_len.max(1)).max(8)
}

fn upload(images: Vec<f32>, n: usize, device: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(images, [n, 1, 28, 28]), device)
}

/// Random translations of up to ±2 pixels (zero fill): cheap augmentation
/// that lets the small training sets reach high test accuracy.
fn shifted(pixels: &[f32], idx: &[usize], rng: &mut Rng) -> Vec<f32> {
    let mut out = vec![0.0f32; idx.len() * 784];
    for (k, &i) in idx.iter().enumerate() {
        let dx = rng.below(5) as i64 - SHIFT;
        let dy = rng.below(5) as i64 - SHIFT;
        let src = &pixels[i * 784..(i + 1) * 784];
        let dst = &mut out[k * 784..(k + 1) * 784];
        for y in 0..28i64 {
            let sy = y - dy;
            if !(0..28).contains(&sy) {
                continue;
            }
            for x in 0..28i64 {
                let sx = x - dx;
                if (0..28).contains(&sx) {
                    dst[(y * 28 + x) as usize] = src[(sy * 28 + sx) as usize];
                }
            }
        }
    }
    out
}

/// Train the classifier on `data`'s training split; `progress(epoch, loss)`
/// after each epoch, false stops it (None).
pub fn train(
    data: &Dataset,
    device: &Device,
    epochs: usize,
    progress: &mut dyn FnMut(usize, f64) -> bool,
) -> Option<(Classifier, ClassifierInfo)> {
    let ad = device.clone().autodiff();
    let mut model = seeded(&ad, SEED, || Classifier::new(&ad));
    let n = data.train_len();
    let steps_per_epoch = n.div_ceil(BATCH);
    let total = steps_per_epoch * epochs;
    let schedule = StageTraining {
        epochs,
        batch_size: BATCH,
        lr: 2e-3,
        lr_schedule: LrSchedule::Cosine,
        warmup_steps: (total / 20).min(100),
        grad_clip: 0.0,
        max_steps: 0,
    };
    let mut optim = FusedAdam::new(0.0);
    let pixels = Dataset::to_f32(&data.train_images);
    let mut rng = Rng::derive(SEED, "classifier");
    let mut step = 0;
    for epoch in 0..epochs {
        let mut order: Vec<usize> = (0..n).collect();
        rng.shuffle(&mut order);
        let mut losses = Vec::new();
        for idx in order.chunks(BATCH) {
            let x = upload(shifted(&pixels, idx, &mut rng), idx.len(), &ad);
            let mut onehot = vec![0.0f32; idx.len() * 10];
            for (k, &i) in idx.iter().enumerate() {
                onehot[k * 10 + data.train_labels[i] as usize] = 1.0;
            }
            let target = Tensor::<2>::from_data(TensorData::new(onehot, [idx.len(), 10]), &ad);
            let loss = (log_softmax(model.forward(x), 1) * target)
                .sum_dim(1)
                .mean()
                .neg();
            model = optim
                .step(lr_at(&schedule, step, total), model, &loss.backward())
                .0;
            losses.push(loss.detach().inner());
            step += 1;
        }
        let mean = to_vec(Tensor::cat(losses, 0))
            .iter()
            .map(|&v| v as f64)
            .sum::<f64>()
            / steps_per_epoch as f64;
        if !progress(epoch + 1, mean) {
            return None;
        }
    }
    let model = model.valid();
    let test_accuracy = accuracy(&model, data, device);
    let info = ClassifierInfo {
        dataset: data.source.clone(),
        train_images: n,
        test_images: data.test_len(),
        epochs,
        test_accuracy,
    };
    Some((model, info))
}

/// Fraction of the test split classified correctly.
pub fn accuracy(model: &Classifier, data: &Dataset, device: &Device) -> f64 {
    let (_, probs) = features_and_probs(model, &Dataset::to_f32(&data.test_images), device);
    let correct = probs
        .chunks(model::CLASSES)
        .zip(&data.test_labels)
        .filter(|(p, label)| top_class(p).0 == **label as usize)
        .count();
    correct as f64 / data.test_len().max(1) as f64
}

/// The most probable class of one probability row, and its probability.
/// The fraction of `images` the classifier assigns to the class asked of
/// each (`wanted`, one per image).
pub fn class_accuracy(
    model: &Classifier,
    images: &[f32],
    wanted: &[usize],
    device: &Device,
) -> f64 {
    let (_, probs) = features_and_probs(model, images, device);
    let hits = probs
        .chunks(model::CLASSES)
        .zip(wanted)
        .filter(|(p, w)| top_class(p).0 == **w)
        .count();
    hits as f64 / wanted.len().max(1) as f64
}

fn top_class(probs: &[f32]) -> (usize, f32) {
    probs
        .iter()
        .copied()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .expect("ten classes")
}

pub fn save(
    model: &Classifier,
    info: &ClassifierInfo,
    stem: &std::path::Path,
) -> Result<(), String> {
    let dir = stem.parent().expect("cache stem has a parent");
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // Runs training side by side may train the same classifier at once.
    let tmp = stem.with_extension(format!("bpk.{}.tmp", std::process::id()));
    model
        .clone()
        .save_file(&tmp)
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, stem.with_extension("bpk"))
        .map_err(|e| format!("{}: {e}", stem.display()))?;
    crate::run::checkpoint::write_atomic(
        &stem.with_extension("json"),
        serde_json::to_string_pretty(info)
            .expect("info serialises")
            .as_bytes(),
    )
    .map_err(|e| e.to_string())
}

/// The cached classifier for `data`, if one was trained.
pub fn load_cached(
    data: &Dataset,
    device: &Device,
) -> Result<Option<(Classifier, ClassifierInfo)>, String> {
    let stem = cache_stem(data);
    let (bpk, json) = (stem.with_extension("bpk"), stem.with_extension("json"));
    if !bpk.exists() || !json.exists() {
        return Ok(None);
    }
    let info: ClassifierInfo = serde_json::from_str(
        &std::fs::read_to_string(&json).map_err(|e| format!("{}: {e}", json.display()))?,
    )
    .map_err(|e| format!("{}: {e}; delete it to retrain", json.display()))?;
    let model = crate::run::checkpoint::load_into(Classifier::new(device), &bpk)
        .map_err(|e| format!("{}: {e}; delete it to retrain", bpk.display()))?;
    Ok(Some((model, info)))
}

/// Sample-quality scores of generated images.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SampleScores {
    pub cfid: f64,
    pub confidence: f64,
    pub class_entropy: f64,
    pub n_samples: usize,
}

/// Features and class probabilities of images (host floats, 784 each).
fn features_and_probs(model: &Classifier, images: &[f32], device: &Device) -> (Vec<f32>, Vec<f32>) {
    let n = images.len() / 784;
    let (mut feats, mut probs) = (Vec::new(), Vec::new());
    for start in (0..n).step_by(1000) {
        let len = 1000.min(n - start);
        let x = upload(
            images[start * 784..(start + len) * 784].to_vec(),
            len,
            device,
        );
        let f = model.features(x);
        probs.extend(to_vec(softmax(model.logits_from_features(f.clone()), 1)));
        feats.extend(to_vec(f));
    }
    (feats, probs)
}

/// cFID of `samples` against `reference` (the test split), the mean top-class
/// probability of the samples, and the entropy of their predicted-class
/// histogram over ln 10 (1 = every class equally often).
pub fn score(
    model: &Classifier,
    samples: &[f32],
    reference: &[f32],
    device: &Device,
) -> Result<SampleScores, String> {
    let (n_samples, n_reference) = (samples.len() / 784, reference.len() / 784);
    if n_samples < 2 || n_reference < 2 {
        return Err(format!(
            "cFID fits a Gaussian to each side and needs at least 2 images on each: got \
             {n_samples} samples and {n_reference} reference images"
        ));
    }
    let (fs, ps) = features_and_probs(model, samples, device);
    let (fr, _) = features_and_probs(model, reference, device);
    let (m1, c1) = frechet::moments(&fs, model::FEATURES);
    let (m2, c2) = frechet::moments(&fr, model::FEATURES);
    let n = samples.len() / 784;
    let mut counts = [0usize; 10];
    let mut confidence = 0.0;
    for p in ps.chunks(model::CLASSES) {
        let (best, top) = top_class(p);
        counts[best] += 1;
        confidence += top as f64;
    }
    let entropy: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n as f64;
            -p * p.ln()
        })
        .sum();
    Ok(SampleScores {
        cfid: frechet::frechet_distance(&m1, &c1, &m2, &c2),
        confidence: confidence / n as f64,
        // + 0.0: one class only is an entropy of 0, not −0.
        class_entropy: entropy / 10f64.ln() + 0.0,
        n_samples: n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_key_follows_the_training_data_not_just_its_size() {
        let data = |pixel: u8| Dataset {
            kind: crate::data::DatasetKind::Mnist,
            train_images: vec![pixel; 2 * 784],
            train_labels: vec![1, 2],
            test_images: vec![0; 784],
            test_labels: vec![3],
            rows: 28,
            cols: 28,
            source: "test".into(),
        };
        assert_eq!(cache_stem(&data(7)), cache_stem(&data(7)));
        assert_ne!(cache_stem(&data(7)), cache_stem(&data(8)));
    }
}
