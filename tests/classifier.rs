//! The sample-quality scorer: the classifier learns, and cFID, confidence
//! and class entropy behave as their definitions say.

mod common;

use latentlab::classifier;
use latentlab::data::Dataset;

#[test]
fn classifier_learns_and_scores_separate_real_from_noise() {
    let data = common::synthetic_dataset(1000, 500);
    let device = common::device();
    let mut epochs_seen = 0;
    let (model, info) = classifier::train(&data, &device, 4, &mut |e, loss| {
        epochs_seen = e;
        assert!(loss.is_finite());
        true
    })
    .unwrap();
    assert_eq!(epochs_seen, 4);
    assert!(info.test_accuracy > 0.9, "accuracy {}", info.test_accuracy);
    assert_eq!(info.test_images, 500);

    let test = Dataset::to_f32(&data.test_images);
    let train = Dataset::to_f32(&data.train_images[..500 * 784]);
    // Real images of the same distribution: small distance, confident,
    // every class about equally often (labels cycle through 0..9).
    let real = classifier::score(&model, &train, &test, &device).unwrap();
    assert_eq!(real.n_samples, 500);
    assert!(real.class_entropy > 0.98, "{real:?}");
    assert!(real.confidence > 0.8, "{real:?}");
    // One class only: entropy 0. Noise: a far larger distance.
    let ones: Vec<f32> = (0..500).flat_map(|_| train[..784].to_vec()).collect();
    let single = classifier::score(&model, &ones, &test, &device).unwrap();
    assert!(single.class_entropy.abs() < 1e-12, "{single:?}");
    let mut rng = latentlab::rng::Rng::new(9);
    let noise: Vec<f32> = (0..500 * 784).map(|_| rng.uniform() as f32).collect();
    let noisy = classifier::score(&model, &noise, &test, &device).unwrap();
    assert!(
        noisy.cfid > 10.0 * real.cfid.max(1e-3),
        "real {real:?} vs noise {noisy:?}"
    );
    // One reference image has no covariance: an error, not a panic.
    let err = classifier::score(&model, &train, &test[..784], &device).unwrap_err();
    assert!(err.contains("1 reference images"), "{err}");
}
