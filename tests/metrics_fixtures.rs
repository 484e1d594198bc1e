//! Checks the Rust PSNR/SSIM against scikit-image reference values
//! (regenerate with `scripts/make_metric_fixtures.py`).

use latentlab::metrics::ImageMetrics;
use latentlab::metrics::psnr::psnr;
use latentlab::metrics::ssim::{SsimKind, ssim, ssim_batch};
use serde_json::Value;

const TOL: f64 = 1e-4;

struct Case {
    name: String,
    a: Vec<f32>,
    b: Vec<f32>,
    /// `None` where skimage gave inf (JSON has no inf).
    psnr: Option<f64>,
    ssim: f64,
    ssim_gaussian: f64,
}

fn load() -> (usize, usize, Vec<Case>) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/metrics_skimage.json"
    );
    let text = std::fs::read_to_string(path).expect("read metrics fixture");
    let doc: Value = serde_json::from_str(&text).expect("parse metrics fixture");
    let dim = |k: &str| doc[k].as_u64().expect("width/height") as usize;
    let (w, h) = (dim("width"), dim("height"));
    let image = |v: &Value| -> Vec<f32> {
        // The fixture stores f32 values exactly, so the cast is lossless.
        let px: Vec<f32> = v
            .as_array()
            .expect("image array")
            .iter()
            .map(|x| x.as_f64().expect("pixel") as f32)
            .collect();
        assert_eq!(px.len(), w * h);
        px
    };
    let cases = doc["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().expect("name").to_owned(),
            a: image(&c["a"]),
            b: image(&c["b"]),
            psnr: c["psnr"].as_f64(),
            ssim: c["ssim"].as_f64().expect("ssim"),
            ssim_gaussian: c["ssim_gaussian"].as_f64().expect("ssim_gaussian"),
        })
        .collect::<Vec<_>>();
    assert!(cases.len() >= 10, "fixture has only {} cases", cases.len());
    (w, h, cases)
}

fn assert_psnr(name: &str, got: f64, expected: Option<f64>) {
    match expected {
        Some(e) => assert!((got - e).abs() < TOL, "{name}: psnr {got} vs skimage {e}"),
        None => assert_eq!(got, f64::INFINITY, "{name}: skimage gave inf"),
    }
}

fn assert_close(name: &str, what: &str, got: f64, expected: f64) {
    assert!(
        (got - expected).abs() < TOL,
        "{name}: {what} {got} vs skimage {expected}"
    );
}

#[test]
fn metrics_match_skimage() {
    let (w, h, cases) = load();
    for c in &cases {
        assert_psnr(&c.name, psnr(&c.a, &c.b, 1.0), c.psnr);
        let s = ssim(&c.a, &c.b, w, h, 1.0, SsimKind::Uniform7);
        assert_close(&c.name, "ssim", s, c.ssim);
        let g = ssim(&c.a, &c.b, w, h, 1.0, SsimKind::Gaussian11);
        assert_close(&c.name, "ssim_gaussian", g, c.ssim_gaussian);
    }
}

#[test]
fn image_metrics_compute_matches_skimage() {
    let (w, h, cases) = load();
    for c in &cases {
        let m = ImageMetrics::compute(&c.a, &c.b, w, h);
        assert_psnr(&c.name, m.psnr, c.psnr);
        assert_close(&c.name, "ssim", m.ssim, c.ssim);
        assert_close(&c.name, "ssim_gaussian", m.ssim_gaussian, c.ssim_gaussian);
    }
}

#[test]
fn batch_matches_skimage() {
    let (w, h, cases) = load();
    let a: Vec<f32> = cases.iter().flat_map(|c| c.a.iter().copied()).collect();
    let b: Vec<f32> = cases.iter().flat_map(|c| c.b.iter().copied()).collect();
    let uniform = ssim_batch(&a, &b, w, h, 1.0, SsimKind::Uniform7);
    let gauss = ssim_batch(&a, &b, w, h, 1.0, SsimKind::Gaussian11);
    assert_eq!(uniform.len(), cases.len());
    for ((c, &s), &g) in cases.iter().zip(&uniform).zip(&gauss) {
        assert_close(&c.name, "batch ssim", s, c.ssim);
        assert_close(&c.name, "batch ssim_gaussian", g, c.ssim_gaussian);
    }
}
