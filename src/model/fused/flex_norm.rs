//! GroupNorm and SiLU for flex, each one pass over memory.
//!
//! Composed from flex's primitives, a GroupNorm is about eleven passes
//! (each allocating) and a SiLU calls the C library's scalar `expf` once
//! per element: together a quarter of a DDIM step on the U-Net. Here
//! GroupNorm reads its input twice (statistics, then one scale-and-shift
//! per channel) and SiLU uses an exp that vectorises, compiled for AVX-512
//! and AVX2 and picked at run time. GroupNorm runs the same lane-wise
//! operations on every path, so every CPU gives the same bits; SiLU uses
//! fused multiply-adds where the CPU has them (AVX-512 and AVX2 machines
//! then agree, the baseline differs in the last bits). Work splits by
//! image, with per-image partial sums added in image order: the results do
//! not depend on the thread count.

use burn::backend::Flex;
use burn::backend::TensorMetadata;
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::tensor::{DType, Shape, TensorData};
use rayon::prelude::*;

use super::multiversion::madd;
use super::par_zeroed::par_zeroed;

/// Below this many elements one thread does it: fanning out costs more.
const PARALLEL_MIN: usize = 1 << 15;

/// Whether these kernels cover the tensors; others keep the composed ones.
pub fn supported(x: &FloatTensor<Flex>) -> bool {
    x.dtype() == DType::F32
}

fn values(t: &FloatTensor<Flex>) -> FloatTensor<Flex> {
    t.to_contiguous()
}

fn slice(t: &FloatTensor<Flex>) -> &[f32] {
    t.as_slice::<f32>().expect("a contiguous f32 tensor")
}

fn tensor(data: Vec<f32>, shape: Shape) -> FloatTensor<Flex> {
    Flex::float_from_data(TensorData::new(data, shape), &Default::default())
}

/// e^x within 5·10⁻⁷ relative (tested), branch-free so that it vectorises (Cephes' expf:
/// x = n·ln 2 + r, a degree-6 polynomial for e^r, 2^n from the exponent
/// bits). NaN stays NaN; the input is clamped to where e^x is a normal f32.
/// With `FMA` the reduction and the polynomial use fused multiply-adds:
/// a third fewer operations.
#[inline(always)]
pub(super) fn exp_with<const FMA: bool>(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // 1.5·2^23: adding and subtracting it rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let m = madd::<FMA>;
    let x = x.clamp(-87.0, 88.0);
    let t = m(x, LOG2E, ROUND);
    let n = t - ROUND;
    let r = m(n, 2.121_944_4e-4, m(n, -0.693_359_4, x));
    let z = r * r;
    // Horner's rule, highest coefficient first (Cephes' last, 5.0000001e-1,
    // is 0.5 in f32).
    let mut p = 1.987_569_1e-4;
    for c in [
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        0.5,
    ] {
        p = m(p, r, c);
    }
    let e = m(p, z, r) + 1.0;
    // t = ROUND + n exactly (one unit per ulp there), so its bits minus
    // ROUND's are n: integer lanes, where `n as i32` would be scalarised
    // for its saturating NaN and overflow handling.
    let biased = t.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127);
    e * f32::from_bits(biased << 23)
}

/// `exp_with` without fused multiply-adds: the same bits on every CPU.
#[inline(always)]
pub(super) fn exp(x: f32) -> f32 {
    exp_with::<false>(x)
}

#[inline(always)]
fn sigmoid<const FMA: bool>(x: f32) -> f32 {
    1.0 / (1.0 + exp_with::<FMA>(-x))
}

#[inline(always)]
fn silu_forward_slice<const FMA: bool>(x: &[f32], out: &mut [f32]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = v * sigmoid::<FMA>(v);
    }
}

/// d/dx x·σ(x) = σ(x)·(1 + x·(1 − σ(x))).
#[inline(always)]
fn silu_backward_slice<const FMA: bool>(x: &[f32], grad: &[f32], out: &mut [f32]) {
    for ((o, &v), &g) in out.iter_mut().zip(x).zip(grad) {
        let s = sigmoid::<FMA>(v);
        *o = g * (s * (1.0 + v * (1.0 - s)));
    }
}

multiversion!(fma silu_forward_any, silu_forward_slice, (x: &[f32], out: &mut [f32]));
multiversion!(fma silu_backward_any, silu_backward_slice, (x: &[f32], grad: &[f32], out: &mut [f32]));

/// Split element-wise work into fixed blocks (by length alone) in parallel.
fn blocks(len: usize) -> usize {
    if len < PARALLEL_MIN {
        len.max(1)
    } else {
        PARALLEL_MIN / 2
    }
}

pub fn silu_forward(x: FloatTensor<Flex>) -> FloatTensor<Flex> {
    let x = values(&x);
    let xs = slice(&x);
    let block = blocks(xs.len());
    let out = par_zeroed(xs.len(), block, |i, o| {
        silu_forward_any(&xs[i * block..][..o.len()], o)
    });
    tensor(out, x.shape())
}

pub fn silu_backward(x: FloatTensor<Flex>, grad: FloatTensor<Flex>) -> FloatTensor<Flex> {
    let (x, grad) = (values(&x), values(&grad));
    let (xs, gs) = (slice(&x), slice(&grad));
    let block = blocks(xs.len());
    let out = par_zeroed(xs.len(), block, |i, o| {
        let at = i * block;
        silu_backward_any(&xs[at..][..o.len()], &gs[at..][..o.len()], o)
    });
    tensor(out, x.shape())
}

/// f32 on both sides, b of a's shape or [N, C, 1, 1], a 4-D.
pub fn add_supported(a: &FloatTensor<Flex>, b: &FloatTensor<Flex>) -> bool {
    let (sa, sb) = (a.shape(), b.shape());
    a.dtype() == DType::F32
        && b.dtype() == DType::F32
        && sa.num_dims() == 4
        && (sa == sb || sb.num_dims() == 4 && sb.dims::<4>() == [sa[0], sa[1], 1, 1])
}

/// `a + b` in parallel blocks; b per image and channel is added to every
/// pixel of its plane.
pub fn add(a: FloatTensor<Flex>, b: FloatTensor<Flex>) -> FloatTensor<Flex> {
    let (a, b) = (values(&a), values(&b));
    let shape = a.shape();
    let (xs, bs) = (slice(&a), slice(&b));
    let out = if xs.len() == bs.len() {
        let block = blocks(xs.len());
        par_zeroed(xs.len(), block, |i, o| {
            let at = i * block;
            for ((o, &x), &y) in o.iter_mut().zip(&xs[at..]).zip(&bs[at..]) {
                *o = x + y;
            }
        })
    } else {
        // Whole planes per block, so each plane takes one value of b.
        let plane = xs.len() / bs.len().max(1);
        let block = blocks(xs.len()).div_ceil(plane.max(1)) * plane;
        par_zeroed(xs.len(), block, |i, o| {
            let at = i * block;
            for (k, (o, x)) in o.chunks_mut(plane).zip(xs[at..].chunks(plane)).enumerate() {
                let y = bs[at / plane + k];
                o.iter_mut().zip(x).for_each(|(o, &x)| *o = x + y);
            }
        })
    };
    tensor(out, shape)
}

/// [N, C, spatial] from x's shape.
fn dims(shape: &Shape) -> (usize, usize, usize) {
    let spatial: usize = shape.iter().skip(2).product();
    (shape[0], shape[1], spatial)
}

/// Σ f(x) over a slice in sixteen f32 lanes (so that it vectorises), the
/// lanes then added in f64: a fixed order, so the same bits every time.
#[inline(always)]
fn lane_sum(xs: &[f32], f: impl Fn(f32) -> f32) -> f64 {
    let mut lanes = [0.0f32; 16];
    let blocks = xs.chunks_exact(16);
    let tail = blocks.remainder();
    for block in blocks {
        for (lane, &v) in lanes.iter_mut().zip(block) {
            *lane += f(v);
        }
    }
    let lanes: f64 = lanes.iter().map(|&v| v as f64).sum();
    lanes + tail.iter().map(|&v| f(v) as f64).sum::<f64>()
}

/// Σ f(a, b) over two slices, in lanes like `lane_sum`.
#[inline(always)]
fn lane_dot(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f64 {
    let mut lanes = [0.0f32; 16];
    let (blocks_a, blocks_b) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: f64 = blocks_a
        .remainder()
        .iter()
        .zip(blocks_b.remainder())
        .map(|(&x, &y)| f(x, y) as f64)
        .sum();
    for (ba, bb) in blocks_a.zip(blocks_b) {
        for ((lane, &x), &y) in lanes.iter_mut().zip(ba).zip(bb) {
            *lane += f(x, y);
        }
    }
    lanes.iter().map(|&v| v as f64).sum::<f64>() + tail
}

/// Mean and 1/√(var + ε) of each group of one image, into `stats` (one
/// per group; two passes: the variance of centred values does not cancel).
#[inline(always)] // into each of multiversion!'s copies
fn group_stats(img: &[f32], epsilon: f64, stats: &mut [(f32, f32)]) {
    let per_group = img.len() / stats.len();
    for (st, g) in stats.iter_mut().zip(img.chunks_exact(per_group)) {
        let n = g.len() as f64;
        let m = (lane_sum(g, |v| v) / n) as f32;
        let var = lane_sum(g, |v| (v - m) * (v - m)) / n;
        *st = (m, (1.0 / (var + epsilon).sqrt()) as f32);
    }
}

/// `group_stats` of every image in `xs` (`image` values each).
#[inline(always)]
fn group_stats_images_body(xs: &[f32], image: usize, epsilon: f64, stats: &mut [(f32, f32)]) {
    let groups = stats.len() / (xs.len() / image).max(1);
    for (img, st) in xs.chunks_exact(image).zip(stats.chunks_exact_mut(groups)) {
        group_stats(img, epsilon, st);
    }
}

/// out = x · rstd·γ + (β − mean·rstd·γ), channel by channel, for every
/// image in `xs` (`image` values each) with its groups' `stats`.
#[inline(always)]
fn group_affine_images_body(
    xs: &[f32],
    image: usize,
    stats: &[(f32, f32)],
    gamma: &[f32],
    beta: &[f32],
    out: &mut [f32],
) {
    let c = gamma.len();
    let (spatial, groups) = (image / c, stats.len() / (xs.len() / image).max(1));
    for ((o, img), st) in out
        .chunks_exact_mut(image)
        .zip(xs.chunks_exact(image))
        .zip(stats.chunks_exact(groups))
    {
        for (ch, (o, v)) in o
            .chunks_exact_mut(spatial)
            .zip(img.chunks_exact(spatial))
            .enumerate()
        {
            let (mean, rstd) = st[ch / (c / groups)];
            let scale = rstd * gamma[ch];
            let shift = beta[ch] - mean * scale;
            for (o, &v) in o.iter_mut().zip(v) {
                *o = v * scale + shift;
            }
        }
    }
}

multiversion!(group_stats_images, group_stats_images_body, (xs: &[f32], image: usize, epsilon: f64, stats: &mut [(f32, f32)]));
multiversion!(group_affine_images, group_affine_images_body, (xs: &[f32], image: usize, stats: &[(f32, f32)], gamma: &[f32], beta: &[f32], out: &mut [f32]));

/// Output, mean [N, G, 1] and rstd [N, G, 1]. Statistics, then the scale
/// and shift, each in parallel over images; the output is zeroed by the
/// threads that fill it.
pub fn group_norm_forward(
    x: FloatTensor<Flex>,
    gamma: FloatTensor<Flex>,
    beta: FloatTensor<Flex>,
    groups: usize,
    epsilon: f64,
) -> [FloatTensor<Flex>; 3] {
    let (x, gamma, beta) = (values(&x), values(&gamma), values(&beta));
    let shape = x.shape();
    let (n, c, spatial) = dims(&shape);
    let (xs, gs, bs) = (slice(&x), slice(&gamma), slice(&beta));
    let image = c * spatial;
    let mut stats = vec![(0.0, 0.0); n * groups];
    let per_task = if xs.len() < PARALLEL_MIN { n.max(1) } else { 1 };
    xs.par_chunks(per_task * image)
        .zip(stats.par_chunks_mut(per_task * groups))
        .for_each(|(xs, stats)| group_stats_images(xs, image, epsilon, stats));
    let out = par_zeroed(xs.len(), per_task * image, |i, out| {
        let images = out.len() / image;
        let xs = &xs[i * per_task * image..][..out.len()];
        let st = &stats[i * per_task * groups..][..images * groups];
        group_affine_images(xs, image, st, gs, bs, out);
    });
    let stat_shape = Shape::new([n, groups, 1]);
    let (mean, rstd): (Vec<f32>, Vec<f32>) = stats.into_iter().unzip();
    [
        tensor(out, shape),
        tensor(mean, stat_shape.clone()),
        tensor(rstd, stat_shape),
    ]
}

/// Gradients with respect to x, gamma and beta.
pub fn group_norm_backward(
    x: FloatTensor<Flex>,
    gamma: FloatTensor<Flex>,
    mean: FloatTensor<Flex>,
    rstd: FloatTensor<Flex>,
    groups: usize,
    grad: FloatTensor<Flex>,
) -> [FloatTensor<Flex>; 3] {
    let (x, gamma, mean, rstd, grad) = (
        values(&x),
        values(&gamma),
        values(&mean),
        values(&rstd),
        values(&grad),
    );
    let shape = x.shape();
    let (n, c, spatial) = dims(&shape);
    let (xs, gs, ms, rs, dys) = (
        slice(&x),
        slice(&gamma),
        slice(&mean),
        slice(&rstd),
        slice(&grad),
    );
    let (image, per_group) = (c * spatial, c / groups);
    let mut dx = vec![0.0; xs.len()];
    // Per image: Σ dy·x̂ and Σ dy per channel, summed over images in order.
    let partials: Vec<(Vec<f64>, Vec<f64>)> = dx
        .par_chunks_mut(image)
        .zip(xs.par_chunks(image).zip(dys.par_chunks(image)))
        .enumerate()
        .with_min_len(if xs.len() < PARALLEL_MIN { n.max(1) } else { 1 })
        .map(|(i, (dx, (x, dy)))| {
            let mut dgamma = vec![0.0f64; c];
            let mut dbeta = vec![0.0f64; c];
            for g in 0..groups {
                let (mean, rstd) = (ms[i * groups + g], rs[i * groups + g]);
                let span = g * per_group * spatial..(g + 1) * per_group * spatial;
                let (x, dy) = (&x[span.clone()], &dy[span.clone()]);
                // mean of g = dy·γ and of g·x̂ over the group.
                let (mut sum_g, mut sum_gx) = (0.0f64, 0.0f64);
                for (k, (xc, dyc)) in x
                    .chunks_exact(spatial)
                    .zip(dy.chunks_exact(spatial))
                    .enumerate()
                {
                    let ch = g * per_group + k;
                    let s_dy = lane_sum(dyc, |d| d);
                    let s_dyx = lane_dot(dyc, xc, |d, v| d * ((v - mean) * rstd));
                    dgamma[ch] = s_dyx;
                    dbeta[ch] = s_dy;
                    sum_g += s_dy * gs[ch] as f64;
                    sum_gx += s_dyx * gs[ch] as f64;
                }
                let count = (per_group * spatial) as f64;
                let (mean_g, mean_gx) = ((sum_g / count) as f32, (sum_gx / count) as f32);
                let dx = &mut dx[span];
                for (k, ((dxc, xc), dyc)) in dx
                    .chunks_exact_mut(spatial)
                    .zip(x.chunks_exact(spatial))
                    .zip(dy.chunks_exact(spatial))
                    .enumerate()
                {
                    let gamma = gs[g * per_group + k];
                    for ((o, &v), &d) in dxc.iter_mut().zip(xc).zip(dyc) {
                        let xhat = (v - mean) * rstd;
                        *o = rstd * (d * gamma - mean_g - xhat * mean_gx);
                    }
                }
            }
            (dgamma, dbeta)
        })
        .collect();
    let mut dgamma = vec![0.0f64; c];
    let mut dbeta = vec![0.0f64; c];
    for (g, b) in &partials {
        dgamma.iter_mut().zip(g).for_each(|(t, v)| *t += v);
        dbeta.iter_mut().zip(b).for_each(|(t, v)| *t += v);
    }
    let to_f32 = |v: Vec<f64>| v.into_iter().map(|v| v as f32).collect::<Vec<f32>>();
    [
        tensor(dx, shape),
        tensor(to_f32(dgamma), Shape::new([c])),
        tensor(to_f32(dbeta), Shape::new([c])),
    ]
}

#[cfg(test)]
mod tests {
    use super::{exp, exp_with};

    #[test]
    fn the_vectorisable_exp_is_within_a_few_ulp_of_the_c_library() {
        // Without and with fused multiply-adds (here a library call).
        for exp in [exp, exp_with::<true>] {
            let mut worst = 0.0f64;
            // Inside the clamp: e^x is a normal f32 there.
            for i in -86_999..88_000 {
                let x = i as f32 * 1e-3;
                let want = (x as f64).exp();
                worst = worst.max(((exp(x) as f64) - want).abs() / want);
            }
            assert!(worst < 5e-7, "largest relative error {worst:e}");
            assert!(exp(f32::NAN).is_nan());
            assert_eq!(exp(-1000.0), exp(-87.0), "clamped, not 0 or denormal");
        }
    }
}
