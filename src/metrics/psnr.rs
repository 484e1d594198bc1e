//! Peak signal-to-noise ratio, matching
//! `skimage.metrics.peak_signal_noise_ratio(a, b, data_range=...)`.

/// Mean squared error between two equally sized images, accumulated in f64
/// (skimage casts to float64 before `np.mean`, so f32 accumulation would drift).
///
/// Panics if the lengths differ or the images are empty.
pub fn mse(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(
        a.len(),
        b.len(),
        "mse: images differ in length ({} vs {} pixels)",
        a.len(),
        b.len()
    );
    assert!(!a.is_empty(), "mse: images are empty");
    let sum: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = f64::from(x) - f64::from(y);
            d * d
        })
        .sum();
    sum / a.len() as f64
}

/// PSNR in dB: `10 * log10(data_range^2 / MSE)`, computed in f64.
///
/// Identical images have MSE 0 and give `f64::INFINITY`, exactly as skimage
/// (numpy's division by zero) does; callers that average PSNR over a batch
/// or serialise it to JSON (where serde_json writes non-finite floats as
/// `null`) must handle that case themselves.
///
/// Panics if the lengths differ or the images are empty.
pub fn psnr(a: &[f32], b: &[f32], data_range: f64) -> f64 {
    let err = mse(a, b);
    if err == 0.0 {
        return f64::INFINITY;
    }
    10.0 * (data_range * data_range / err).log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_images_are_infinite() {
        let a = [0.1f32, 0.5, 0.9, 0.0];
        assert_eq!(psnr(&a, &a, 1.0), f64::INFINITY);
    }

    #[test]
    fn hand_checked_value() {
        // Every pixel off by 0.5 (exact in binary) -> MSE = 0.25.
        let a = [0.0f32; 16];
        let b = [0.5f32; 16];
        // MSE = 0.25 -> PSNR = 10 log10(4) = 6.0206 dB.
        let p = psnr(&a, &b, 1.0);
        assert!((p - 10.0 * 4f64.log10()).abs() < 1e-12, "{p}");
        // Doubling the range adds 20 log10(2) dB.
        let p2 = psnr(&a, &b, 2.0);
        assert!((p2 - p - 20.0 * 2f64.log10()).abs() < 1e-12);
    }

    #[test]
    fn mse_of_single_difference() {
        let a = [0.0f32, 0.0, 0.0, 0.0];
        let b = [1.0f32, 0.0, 0.0, 0.0];
        assert_eq!(mse(&a, &b), 0.25);
        assert!((psnr(&a, &b, 1.0) - 10.0 * 4f64.log10()).abs() < 1e-12);
    }

    #[test]
    #[should_panic(expected = "differ in length")]
    fn mismatched_lengths_panic() {
        psnr(&[0.0; 3], &[0.0; 4], 1.0);
    }
}
