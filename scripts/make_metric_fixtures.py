#!/usr/bin/env python3
"""Generate tests/fixtures/metrics_skimage.json: scikit-image reference values
for PSNR and SSIM that tests/metrics_fixtures.rs checks the Rust metrics against.

Needs numpy and scikit-image, e.g.
    python3 -m venv /tmp/skvenv && /tmp/skvenv/bin/pip install scikit-image numpy
    /tmp/skvenv/bin/python scripts/make_metric_fixtures.py [--text /tmp/metrics.txt]

Images are generated as float32 and skimage is run on their float64 cast, so the
Rust side (which takes f32 and widens to f64) sees bit-identical inputs.
"""

import argparse
import json
from pathlib import Path

import numpy as np
import scipy.ndimage as ndi
import skimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

W = H = 28
SEED = 20240611
OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "metrics_skimage.json"


def f32(x):
    return np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0).astype(np.float32)


def blob(cy, cx, sy, sx):
    """Anisotropic Gaussian bump, the rough shape of an MNIST stroke."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    return np.exp(-(((yy - cy) / sy) ** 2 + ((xx - cx) / sx) ** 2) / 2)


def digit_like():
    """A ring ("0") plus a bar, with MNIST-like hard-ish edges."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    r = np.hypot((yy - 14) / 1.3, xx - 14)
    ring = np.exp(-((r - 7) ** 2) / 2.0)
    bar = blob(14, 20, 6, 1.2)
    return np.clip(1.6 * np.maximum(ring, bar), 0, 1)


def cases(rng):
    out = []
    # Independent uniform noise: SSIM near 0.
    out.append(("noise_vs_noise", rng.random((H, W)), rng.random((H, W))))
    # Noise vs a noisier copy of itself.
    a = rng.random((H, W))
    out.append(("noise_vs_perturbed", a, a + rng.normal(0, 0.1, (H, W))))
    # Smooth gradient vs itself plus small noise.
    g = np.tile(np.linspace(0, 1, W), (H, 1)) * 0.8 + np.linspace(0, 0.2, H)[:, None]
    out.append(("gradient_vs_small_noise", g, g + rng.normal(0, 0.02, (H, W))))
    # Diagonal gradient vs a contrast-reduced copy.
    d = (np.add.outer(np.arange(H), np.arange(W)) / (H + W - 2))
    out.append(("diag_gradient_vs_low_contrast", d, 0.5 + 0.6 * (d - 0.5)))
    # Digit-like image vs blurred, shifted and both.
    dg = digit_like()
    out.append(("digit_vs_blurred", dg, ndi.gaussian_filter(dg, 1.0)))
    out.append(("digit_vs_shifted", dg, np.roll(dg, (1, 2), axis=(0, 1))))
    out.append(("digit_vs_blur_shift_noise",
                dg, ndi.gaussian_filter(np.roll(dg, (-1, 1), axis=(0, 1)), 0.7)
                + rng.normal(0, 0.03, (H, W))))
    # Blob near a border, so the 'reflect' padding is in play for the map.
    out.append(("edge_blob_vs_moved", blob(3, 24, 3, 2), blob(4, 22, 3, 2.5)))
    # Constant vs near-constant: variances ~0, tests cancellation handling.
    c = np.full((H, W), 0.5)
    out.append(("constant_vs_near_constant", c, c + rng.normal(0, 1e-3, (H, W))))
    out.append(("constant_vs_other_constant", np.full((H, W), 0.2), np.full((H, W), 0.3)))
    # Exactly binary images: a thresholded digit vs random bit flips of it.
    bin_a = (dg > 0.5).astype(np.float64)
    flips = rng.random((H, W)) < 0.05
    out.append(("binary_vs_flipped", bin_a, np.where(flips, 1 - bin_a, bin_a)))
    # Checkerboard vs its inverse: strongly negative structure term.
    cb = (np.add.outer(np.arange(H), np.arange(W)) % 2).astype(np.float64)
    out.append(("checker_vs_inverse", cb, 1 - cb))
    # Identical images: PSNR inf, SSIM 1.
    out.append(("identical", dg, dg))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--text", type=Path, help="also write a plain-text copy (for quick checks)")
    args = ap.parse_args()

    rng = np.random.default_rng(SEED)
    records = []
    for name, a, b in cases(rng):
        a32, b32 = f32(a), f32(b)
        a64, b64 = a32.astype(np.float64), b32.astype(np.float64)
        with np.errstate(divide="ignore"):  # identical images -> inf, expected
            psnr = float(peak_signal_noise_ratio(a64, b64, data_range=1.0))
        ssim = float(structural_similarity(a64, b64, data_range=1.0))
        ssim_g = float(structural_similarity(
            a64, b64, data_range=1.0, gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False))
        records.append({
            "name": name,
            # float32 -> Python float is exact; repr round-trips to the same f32.
            "a": [float(v) for v in a32.ravel()],
            "b": [float(v) for v in b32.ravel()],
            # JSON has no inf; identical images are recorded as null.
            "psnr": psnr if np.isfinite(psnr) else None,
            "ssim": ssim,
            "ssim_gaussian": ssim_g,
        })
        print(f"{name:32s} psnr={psnr:10.5f} ssim={ssim:+.6f} ssim_g={ssim_g:+.6f}")

    doc = {"skimage_version": skimage.__version__, "width": W, "height": H, "cases": records}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # Shortest repr of each float keeps the file small while staying exact.
    args.out.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")

    if args.text:
        with open(args.text, "w") as f:
            for r in records:
                psnr = "inf" if r["psnr"] is None else repr(r["psnr"])
                f.write(f"{r['name']} {psnr} {r['ssim']!r} {r['ssim_gaussian']!r}\n")
                f.write(" ".join(repr(v) for v in r["a"]) + "\n")
                f.write(" ".join(repr(v) for v in r["b"]) + "\n")


if __name__ == "__main__":
    main()
