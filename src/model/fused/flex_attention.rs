//! Multi-head softmax attention for flex, straight from the fused qkv
//! projection.
//!
//! The U-Net attends over its 2×2 and 4×4 maps: 4 and 16 tokens, 8 heads
//! of 4 values. Burn's
//! attention takes q, k and v as [B, heads, N, d] (three permuted copies
//! of the projection) and runs two small GEMMs per batch and head: 11% of a
//! sampling step, for a few thousand multiply-adds per head. This reads the
//! projection as laid out, computes 16 images at a time in vector lanes
//! and writes the layout the output projection reads.

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
    // Tasks of whole lane blocks; images are independent, so any split
    // gives the same bits.
    let per_block = LANES * heads * n * n * head_dim * 2;
    let images = LANES * (BLOCK_WORK / per_block.max(1)).max(1);
    out.par_chunks_mut(images * n * inner)
        .zip(values.par_chunks(images * n * 3 * inner))
        .for_each(|(out, qkv)| {
            let mut lanes = vec![[0.0; LANES]; n * 3 * inner + n * inner + n];
            for (out, qkv) in out
                .chunks_mut(LANES * n * inner)
                .zip(qkv.chunks(LANES * n * 3 * inner))
            {
                attend(qkv, out, n, heads, head_dim, &mut lanes);
            }
        });
    Flex::float_from_data(TensorData::new(out, [b, n, inner]), &Default::default())
}

/// Images computed side by side, one per vector lane.
const LANES: usize = 16;
type Lanes = [f32; LANES];

multiversion!(attend, attend_body, (qkv: &[f32], out: &mut [f32], n: usize, heads: usize, d: usize, lanes: &mut [Lanes]));

/// Up to `LANES` images at once, image l in lane l: each token's values
/// [q | k | v] (each [heads, d]) are transposed to one `Lanes` per value,
/// so scores, softmax and the weighted sums are plain vertical vector
/// arithmetic whatever N and d are (the U-Net has 4 and 16 tokens of 8
/// heads × 4). Missing images are zeros and their lanes are dropped.
#[inline(always)]
fn attend_body(
    qkv: &[f32],
    out: &mut [f32],
    n: usize,
    heads: usize,
    d: usize,
    lanes: &mut [Lanes],
) {
    let inner = heads * d;
    let row = 3 * inner;
    let images = qkv.len() / (n * row);
    let scale = 1.0 / (d as f32).sqrt();
    let (t, rest) = lanes.split_at_mut(n * row);
    let (o, scores) = rest.split_at_mut(n * inner);
    for lane in 0..LANES {
        if lane < images {
            for (v, &x) in t.iter_mut().zip(&qkv[lane * n * row..][..n * row]) {
                v[lane] = x;
            }
        } else {
            t.iter_mut().for_each(|v| v[lane] = 0.0);
        }
    }
    for h in 0..heads {
        for i in 0..n {
            for (j, s) in scores.iter_mut().enumerate() {
                *s = [0.0; LANES];
                for e in 0..d {
                    let (q, k) = (&t[i * row + h * d + e], &t[j * row + inner + h * d + e]);
                    for l in 0..LANES {
                        s[l] += q[l] * k[l];
                    }
                }
            }
            let mut max = [f32::NEG_INFINITY; LANES];
            for s in scores.iter() {
                for l in 0..LANES {
                    max[l] = max[l].max(s[l]);
                }
            }
            let mut total = [0.0; LANES];
            for s in scores.iter_mut() {
                for l in 0..LANES {
                    s[l] = exp((s[l] - max[l]) * scale);
                    total[l] += s[l];
                }
            }
            for e in 0..d {
                let mut acc = [0.0; LANES];
                for (j, p) in scores.iter().enumerate() {
                    let v = &t[j * row + 2 * inner + h * d + e];
                    for l in 0..LANES {
                        acc[l] += p[l] * v[l];
                    }
                }
                for l in 0..LANES {
                    acc[l] /= total[l];
                }
                o[i * inner + h * d + e] = acc;
            }
        }
    }
    for lane in 0..images {
        for (x, v) in out[lane * n * inner..][..n * inner]
            .iter_mut()
            .zip(o.iter())
        {
            *x = v[lane];
        }
    }
}
