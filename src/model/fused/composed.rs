//! The fused operations' kernels composed from Burn's primitive operations:
//! the closed-form forward and backward passes every backend can run. A
//! backend with faster kernels of its own (libtorch, flex) overrides them.

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Scalar, TensorMetadata};
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Shape, Slice};

/// GroupNorm: the output, and the statistics mean and rstd = 1/√(var + ε),
/// each [N, G, 1].
pub fn group_norm_forward<B: Backend>(
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    beta: FloatTensor<B>,
    groups: usize,
    epsilon: f64,
) -> [FloatTensor<B>; 3] {
    let shape = x.shape();
    let (grouped, per_channel) = group_shapes(&shape, groups);
    let xg = B::float_reshape(x, grouped);
    let mean = B::float_mean_dim(xg.clone(), 2);
    let centered = B::float_sub(xg, mean.clone());
    let var = B::float_mean_dim(B::float_mul(centered.clone(), centered.clone()), 2);
    let rstd = B::float_recip(B::float_sqrt(B::float_add_scalar(
        var,
        Scalar::Float(epsilon),
    )));
    let normalized = B::float_reshape(B::float_mul(centered, rstd.clone()), per_channel);
    let out = affine::<B>(normalized, gamma, beta);
    [B::float_reshape(out, shape), mean, rstd]
}

/// GroupNorm's gradients with respect to x, gamma and beta.
pub fn group_norm_backward<B: Backend>(
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    mean: FloatTensor<B>,
    rstd: FloatTensor<B>,
    groups: usize,
    grad: FloatTensor<B>,
) -> [FloatTensor<B>; 3] {
    let shape = x.shape();
    let channels = shape[1];
    let (grouped, per_channel) = group_shapes(&shape, groups);
    // x̂ = (x − μ)·rstd, per group.
    let xhat = B::float_mul(
        B::float_sub(B::float_reshape(x, grouped.clone()), mean),
        rstd.clone(),
    );
    let dy = B::float_reshape(grad, per_channel.clone());
    let xhat_c = B::float_reshape(xhat.clone(), per_channel.clone());
    let sum_nc = |t: FloatTensor<B>| {
        B::float_reshape(
            B::float_sum_dim(B::float_sum_dim(t, 2), 0),
            Shape::new([channels]),
        )
    };
    let grad_beta = sum_nc(dy.clone());
    let grad_gamma = sum_nc(B::float_mul(dy.clone(), xhat_c));
    // dx = rstd·(g − mean(g) − x̂·mean(g·x̂)), g = dy·γ, means per group.
    let g = B::float_reshape(
        B::float_mul(dy, B::float_reshape(gamma, Shape::new([1, channels, 1]))),
        grouped,
    );
    let mean_g = B::float_mean_dim(g.clone(), 2);
    let mean_gx = B::float_mean_dim(B::float_mul(g.clone(), xhat.clone()), 2);
    let inner = B::float_sub(B::float_sub(g, mean_g), B::float_mul(xhat, mean_gx));
    let grad_x = B::float_reshape(B::float_mul(inner, rstd), shape);
    [grad_x, grad_gamma, grad_beta]
}

/// x·σ(x).
pub fn silu_forward<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    B::float_mul(x.clone(), B::sigmoid(x))
}

/// d/dx x·σ(x) = σ(x)·(1 + x·(1 − σ(x))).
pub fn silu_backward<B: Backend>(x: FloatTensor<B>, grad: FloatTensor<B>) -> FloatTensor<B> {
    let s = B::sigmoid(x.clone());
    let one_minus = B::float_add_scalar(B::float_neg(s.clone()), Scalar::Float(1.0));
    let factor = B::float_add_scalar(B::float_mul(x, one_minus), Scalar::Float(1.0));
    B::float_mul(grad, B::float_mul(s, factor))
}

/// Multi-head softmax attention, scale 1/√d, from a fused projection qkv
/// [B, N, 3·heads·d] (each token's values laid out [3, heads, d]), as
/// [B, N, heads·d]: Burn's attention between the reshapes.
pub fn attention_qkv<B: Backend>(
    qkv: FloatTensor<B>,
    heads: usize,
    head_dim: usize,
) -> FloatTensor<B> {
    let shape = qkv.shape();
    let (b, n) = (shape[0], shape[1]);
    let split = B::float_reshape(qkv, Shape::new([b, n, 3, heads, head_dim]));
    let split = B::float_permute(split, &[2, 0, 3, 1, 4]); // [3, B, heads, N, d]
    let part = |i: usize| {
        let all = |len: usize| Slice::new(0, Some(len as isize), 1);
        let one = Slice::new(i as isize, Some(i as isize + 1), 1);
        let ranges = [one, all(b), all(heads), all(n), all(head_dim)];
        let t = B::float_slice(split.clone(), &ranges);
        B::float_reshape(t, Shape::new([b, heads, n, head_dim]))
    };
    let options = AttentionModuleOptions::default();
    let out = B::attention(part(0), part(1), part(2), None, None, options);
    let out = B::float_swap_dims(out, 1, 2); // [B, N, heads, d]
    B::float_reshape(out, Shape::new([b, n, heads * head_dim]))
}

/// [N, G, C/G·H·W] for the statistics, [N, C, H·W] for the affine.
pub(super) fn group_shapes(shape: &Shape, groups: usize) -> (Shape, Shape) {
    let (n, c) = (shape[0], shape[1]);
    let spatial: usize = shape.iter().skip(2).product();
    (
        Shape::new([n, groups, c / groups * spatial]),
        Shape::new([n, c, spatial]),
    )
}

fn affine<B: Backend>(
    normalized: FloatTensor<B>,
    gamma: FloatTensor<B>,
    beta: FloatTensor<B>,
) -> FloatTensor<B> {
    let c = gamma.shape()[0];
    let per_channel = Shape::new([1, c, 1]);
    B::float_add(
        B::float_mul(normalized, B::float_reshape(gamma, per_channel.clone())),
        B::float_reshape(beta, per_channel),
    )
}
