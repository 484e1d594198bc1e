//! GroupNorm and SiLU as single differentiable operations.
//!
//! Burn composes `nn::GroupNorm` out of about eleven tensor operations and
//! `silu` out of two, and its autodiff records and differentiates each one.
//! The U-Net runs 23 GroupNorms and 32 SiLUs per forward pass, so on small
//! latents those chains, not the convolutions, decided how far behind PyTorch
//! training was. Here each is one backend-extension operation with a
//! hand-written backward: libtorch runs its native `native_group_norm` and
//! `silu`/`silu_backward` kernels; other backends use the closed-form
//! gradients below, built from a handful of primitive operations.

// burn-tch is deprecated upstream; it is still our libtorch (CPU and CUDA) path.
#![allow(deprecated)]

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Scalar, TensorMetadata, backend_extension};
use burn::nn::GroupNorm;
use burn::prelude::*;
use burn::tensor::Shape;

#[cfg(feature = "flex")]
use burn::backend::Flex;
#[cfg(feature = "tch")]
use burn::backend::LibTorch;

/// `GroupNorm` forward as one operation; same parameters, same numbers.
pub fn group_norm(norm: &GroupNorm, x: Tensor<4>) -> Tensor<4> {
    let [_, channels, _, _] = x.dims();
    assert_eq!(channels, norm.num_channels, "group_norm: channel count");
    let device = x.device();
    let gamma = match &norm.gamma {
        Some(p) => p.val(),
        None => Tensor::ones([channels], &device),
    };
    let beta = match &norm.beta {
        Some(p) => p.val(),
        None => Tensor::zeros([channels], &device),
    };
    let out = <Dispatch as FusedOps>::fused_group_norm(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        norm.num_groups,
        norm.epsilon,
    );
    Tensor::from_dispatch(out)
}

/// `x · sigmoid(x)` as one operation.
pub fn silu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedOps>::fused_silu(x.into_dispatch()))
}

/// Softmax over the last dimension as one operation.
pub fn softmax_last<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedOps>::fused_softmax_last(x.into_dispatch()))
}

/// The operations the models call through `Dispatch`.
#[backend_extension(Flex: cfg(feature = "flex"), LibTorch: cfg(feature = "tch"), Autodiff)]
pub trait FusedOps: Backend {
    fn fused_group_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        groups: usize,
        epsilon: f64,
    ) -> FloatTensor<Self>;

    fn fused_silu(x: FloatTensor<Self>) -> FloatTensor<Self>;

    fn fused_softmax_last(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// Forward kernels that also return what the backward needs, and the
/// backward kernels. Defaults are closed-form compositions of primitive
/// operations; a backend overrides what it has natively.
///
/// GroupNorm statistics `mean` and `rstd` = 1/√(var + ε) have shape [N, G, 1].
pub trait FusedKernels: Backend {
    fn group_norm_forward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        groups: usize,
        epsilon: f64,
    ) -> [FloatTensor<Self>; 3] {
        let shape = x.shape();
        let (grouped, per_channel) = group_shapes(&shape, groups);
        let xg = Self::float_reshape(x, grouped);
        let mean = Self::float_mean_dim(xg.clone(), 2);
        let centered = Self::float_sub(xg, mean.clone());
        let var = Self::float_mean_dim(Self::float_mul(centered.clone(), centered.clone()), 2);
        let rstd = Self::float_recip(Self::float_sqrt(Self::float_add_scalar(
            var,
            Scalar::Float(epsilon),
        )));
        let normalized = Self::float_reshape(Self::float_mul(centered, rstd.clone()), per_channel);
        let out = affine::<Self>(normalized, gamma, beta);
        [Self::float_reshape(out, shape), mean, rstd]
    }

    /// Gradients with respect to x, gamma and beta.
    fn group_norm_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        rstd: FloatTensor<Self>,
        groups: usize,
        grad: FloatTensor<Self>,
    ) -> [FloatTensor<Self>; 3] {
        let shape = x.shape();
        let channels = shape[1];
        let (grouped, per_channel) = group_shapes(&shape, groups);
        // x̂ = (x − μ)·rstd, per group.
        let xhat = Self::float_mul(
            Self::float_sub(Self::float_reshape(x, grouped.clone()), mean),
            rstd.clone(),
        );
        let dy = Self::float_reshape(grad, per_channel.clone());
        let xhat_c = Self::float_reshape(xhat.clone(), per_channel.clone());
        let sum_nc = |t: FloatTensor<Self>| {
            Self::float_reshape(
                Self::float_sum_dim(Self::float_sum_dim(t, 2), 0),
                Shape::new([channels]),
            )
        };
        let grad_beta = sum_nc(dy.clone());
        let grad_gamma = sum_nc(Self::float_mul(dy.clone(), xhat_c));
        // dx = rstd·(g − mean(g) − x̂·mean(g·x̂)), g = dy·γ, means per group.
        let g = Self::float_reshape(
            Self::float_mul(dy, Self::float_reshape(gamma, Shape::new([1, channels, 1]))),
            grouped,
        );
        let mean_g = Self::float_mean_dim(g.clone(), 2);
        let mean_gx = Self::float_mean_dim(Self::float_mul(g.clone(), xhat.clone()), 2);
        let inner = Self::float_sub(
            Self::float_sub(g, mean_g),
            Self::float_mul(xhat, mean_gx),
        );
        let grad_x = Self::float_reshape(Self::float_mul(inner, rstd), shape);
        [grad_x, grad_gamma, grad_beta]
    }

    fn silu_forward(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::float_mul(x.clone(), Self::sigmoid(x))
    }

    /// d/dx x·σ(x) = σ(x)·(1 + x·(1 − σ(x))).
    fn silu_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        let s = Self::sigmoid(x.clone());
        let one_minus = Self::float_add_scalar(Self::float_neg(s.clone()), Scalar::Float(1.0));
        let factor = Self::float_add_scalar(Self::float_mul(x, one_minus), Scalar::Float(1.0));
        Self::float_mul(grad, Self::float_mul(s, factor))
    }

    fn softmax_last_forward(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let last = x.shape().num_dims() - 1;
        Self::softmax(x, last)
    }

    /// dx = s·(dy − Σ dy·s), the sum over the last dimension.
    fn softmax_last_backward(output: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        let last = output.shape().num_dims() - 1;
        let dot = Self::float_sum_dim(Self::float_mul(grad.clone(), output.clone()), last);
        Self::float_mul(output, Self::float_sub(grad, dot))
    }
}

/// [N, G, C/G·H·W] for the statistics, [N, C, H·W] for the affine.
fn group_shapes(shape: &Shape, groups: usize) -> (Shape, Shape) {
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

#[cfg(feature = "flex")]
impl FusedKernels for Flex {}

#[cfg(feature = "flex")]
impl FusedOps for Flex {
    fn fused_group_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        groups: usize,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        let [out, _, _] = Self::group_norm_forward(x, gamma, beta, groups, epsilon);
        out
    }

    fn fused_silu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::silu_forward(x)
    }

    fn fused_softmax_last(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::softmax_last_forward(x)
    }
}

#[cfg(feature = "tch")]
mod libtorch {
    use super::*;
    use burn::backend::libtorch::TchTensor;

    impl FusedKernels for LibTorch {
        fn group_norm_forward(
            x: TchTensor,
            gamma: TchTensor,
            beta: TchTensor,
            groups: usize,
            epsilon: f64,
        ) -> [TchTensor; 3] {
            let size = x.tensor.size();
            let (n, c) = (size[0], size[1]);
            let spatial: i64 = size[2..].iter().product();
            let (out, mean, rstd) = x.tensor.contiguous().native_group_norm(
                Some(&gamma.tensor),
                Some(&beta.tensor),
                n,
                c,
                spatial,
                groups as i64,
                epsilon,
            );
            let stats = [n, groups as i64, 1];
            [
                TchTensor::new(out),
                TchTensor::new(mean.reshape(stats)),
                TchTensor::new(rstd.reshape(stats)),
            ]
        }

        fn silu_forward(x: TchTensor) -> TchTensor {
            TchTensor::new(x.tensor.silu())
        }

        fn silu_backward(x: TchTensor, grad: TchTensor) -> TchTensor {
            TchTensor::new(x.tensor.silu_backward(&grad.tensor))
        }

        fn softmax_last_forward(x: TchTensor) -> TchTensor {
            let kind = x.tensor.kind();
            TchTensor::new(x.tensor.softmax(-1, kind))
        }

        fn softmax_last_backward(output: TchTensor, grad: TchTensor) -> TchTensor {
            let kind = output.tensor.kind();
            TchTensor::new(tch_softmax_backward(&grad.tensor, &output.tensor, kind))
        }
    }

    fn tch_softmax_backward(
        grad: &tch::Tensor,
        output: &tch::Tensor,
        kind: tch::Kind,
    ) -> tch::Tensor {
        tch::Tensor::internal_softmax_backward_data(grad, output, -1, kind)
    }

    impl FusedOps for LibTorch {
        fn fused_group_norm(
            x: TchTensor,
            gamma: TchTensor,
            beta: TchTensor,
            groups: usize,
            epsilon: f64,
        ) -> TchTensor {
            let [out, _, _] = Self::group_norm_forward(x, gamma, beta, groups, epsilon);
            out
        }

        fn fused_silu(x: TchTensor) -> TchTensor {
            Self::silu_forward(x)
        }

        fn fused_softmax_last(x: TchTensor) -> TchTensor {
            Self::softmax_last_forward(x)
        }
    }
}

#[derive(Debug)]
struct GroupNormBackward;

impl<B: Backend + FusedKernels> Backward<B, 3> for GroupNormBackward {
    /// x, gamma, mean, rstd, groups.
    type State = (
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
        usize,
    );

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x, gamma, mean, rstd, groups) = ops.state;
        let [grad_x, grad_gamma, grad_beta] =
            B::group_norm_backward(x, gamma, mean, rstd, groups, grad);
        for (node, value) in [(node_x, grad_x), (node_gamma, grad_gamma), (node_beta, grad_beta)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, value);
            }
        }
    }
}

#[derive(Debug)]
struct SiluBackward;

impl<B: Backend + FusedKernels> Backward<B, 1> for SiluBackward {
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        if let Some(node) = node_x {
            grads.register::<B>(node.id, B::silu_backward(ops.state, grad));
        }
    }
}

#[derive(Debug)]
struct SoftmaxBackward;

impl<B: Backend + FusedKernels> Backward<B, 1> for SoftmaxBackward {
    /// The softmax output.
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        if let Some(node) = node_x {
            grads.register::<B>(node.id, B::softmax_last_backward(ops.state, grad));
        }
    }
}

impl<B: Backend + FusedKernels, C: CheckpointStrategy> FusedOps for Autodiff<B, C> {
    fn fused_group_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        groups: usize,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        let prep = GroupNormBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful();
        let (x, gamma, beta) = (
            x.into_primitive(),
            gamma.into_primitive(),
            beta.into_primitive(),
        );
        match prep {
            OpsKind::Tracked(prep) => {
                let [out, mean, rstd] =
                    B::group_norm_forward(x.clone(), gamma.clone(), beta, groups, epsilon);
                prep.finish((x, gamma, mean, rstd, groups), out)
            }
            OpsKind::UnTracked(prep) => {
                let [out, _, _] = B::group_norm_forward(x, gamma, beta, groups, epsilon);
                prep.finish(out)
            }
        }
    }

    fn fused_silu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let prep = SiluBackward.prepare::<C>([x.node()]).compute_bound().stateful();
        let x = x.into_primitive();
        match prep {
            OpsKind::Tracked(prep) => {
                let out = B::silu_forward(x.clone());
                prep.finish(x, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::silu_forward(x)),
        }
    }

    fn fused_softmax_last(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let prep = SoftmaxBackward.prepare::<C>([x.node()]).compute_bound().stateful();
        let x = x.into_primitive();
        match prep {
            OpsKind::Tracked(prep) => {
                let out = B::softmax_last_forward(x);
                prep.finish(out.clone(), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::softmax_last_forward(x)),
        }
    }
}
