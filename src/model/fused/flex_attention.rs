//! Multi-head softmax attention for flex, straight from the fused qkv
//! projection.
//!
//! The U-Net attends over 2×2 maps: 4 tokens, 8 heads of 4 values. Burn's
//! attention takes q, k and v as [B, heads, N, d] (three permuted copies
//! of the projection) and runs two small GEMMs per batch and head: 11% of a
//! sampling step, for a few thousand multiply-adds per head. This reads each
//! head's q, k and v where the projection left them and writes the result
//! in the layout the output projection reads, one pass, no copies.

use burn::backend::Flex;
use burn::backend::TensorMetadata;
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::tensor::{DType, TensorData};
use rayon::prelude::*;

use super::flex_norm::exp;

/// Multiply-adds below which a block of images is not split further.
const BLOCK_WORK: usize = 1 << 15;

/// f32, [B, N, 3·heads·head_dim], at least one token.
pub fn supported(qkv: &FloatTensor<Flex>, heads: usize, head_dim: usize) -> bool {
    let shape = qkv.shape();
    qkv.dtype() == DType::F32
        && shape.num_dims() == 3
        && shape[1] > 0
        && heads > 0
        && head_dim > 0
        && shape[2] == 3 * heads * head_dim
}

/// [B, N, 3·heads·d] → [B, N, heads·d]; see `fused::attention_qkv`.
pub fn forward(qkv: FloatTensor<Flex>, heads: usize, head_dim: usize) -> FloatTensor<Flex> {
    let shape = qkv.shape();
    let (b, n) = (shape[0], shape[1]);
    let qkv = qkv.to_contiguous();
    let values = qkv.as_slice::<f32>().expect("a contiguous f32 tensor");
    let inner = heads * head_dim;
    let mut out = vec![0.0f32; b * n * inner];
    // Images are independent, so any split gives the same bits.
    let per_image = heads * n * n * head_dim * 2;
    let images = (BLOCK_WORK / per_image.max(1)).max(1);
    out.par_chunks_mut(images * n * inner)
        .zip(values.par_chunks(images * n * 3 * inner))
        .for_each(|(out, qkv)| {
            // Scores [N, heads], then per-head max, 1/sum.
            let mut scratch = vec![0.0f32; n * heads + 2 * heads];
            for (out, qkv) in out.chunks_exact_mut(n * inner).zip(qkv.chunks_exact(n * 3 * inner)) {
                attend(qkv, out, n, heads, head_dim, &mut scratch);
            }
        });
    Flex::float_from_data(TensorData::new(out, [b, n, inner]), &Default::default())
}

multiversion!(attend, attend_body, (qkv: &[f32], out: &mut [f32], n: usize, heads: usize, d: usize, scratch: &mut [f32]));

/// One image. Token t's values are [q | k | v], each [heads, d]; its
/// output is [heads, d]. Every step runs across all heads at once, so the
/// exponentials and the per-head sums vectorise even for 4 tokens.
#[inline(always)]
fn attend_body(
    qkv: &[f32],
    out: &mut [f32],
    n: usize,
    heads: usize,
    d: usize,
    scratch: &mut [f32],
) {
    let inner = heads * d;
    let scale = 1.0 / (d as f32).sqrt();
    let (scores, stats) = scratch.split_at_mut(n * heads);
    let (max, inv_total) = stats.split_at_mut(heads);
    for (i, o) in out.chunks_exact_mut(inner).enumerate() {
        let q = &qkv[i * 3 * inner..][..inner];
        for (j, s) in scores.chunks_exact_mut(heads).enumerate() {
            let k = &qkv[j * 3 * inner + inner..][..inner];
            for ((s, q), k) in s.iter_mut().zip(q.chunks_exact(d)).zip(k.chunks_exact(d)) {
                *s = q.iter().zip(k).map(|(a, b)| a * b).sum::<f32>() * scale;
            }
        }
        max.fill(f32::NEG_INFINITY);
        for s in scores.chunks_exact(heads) {
            for (m, &s) in max.iter_mut().zip(s) {
                *m = m.max(s);
            }
        }
        inv_total.fill(0.0);
        for s in scores.chunks_exact_mut(heads) {
            for ((s, &m), t) in s.iter_mut().zip(max.iter()).zip(inv_total.iter_mut()) {
                *s = exp(*s - m);
                *t += *s;
            }
        }
        for t in inv_total.iter_mut() {
            *t = 1.0 / *t;
        }
        o.fill(0.0);
        for (j, s) in scores.chunks_exact(heads).enumerate() {
            let v = &qkv[j * 3 * inner + 2 * inner..][..inner];
            for (((o, v), &p), &t) in o.chunks_exact_mut(d).zip(v.chunks_exact(d)).zip(s).zip(inv_total.iter()) {
                let w = p * t;
                for (o, v) in o.iter_mut().zip(v) {
                    *o += w * v;
                }
            }
        }
    }
}
