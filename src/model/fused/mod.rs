//! The models' hot operations, each as one differentiable operation:
//! GroupNorm, SiLU, softmax, ReLU, the MSE loss, convolutions and the
//! residual additions; plus attention on the qkv projection for sampling.
//!
//! Burn composes `nn::GroupNorm` out of about eleven tensor operations and
//! `silu` out of two, its autodiff records and differentiates each one, and
//! it takes a convolution's weight gradient as another convolution over
//! swapped copies. The U-Net runs 23 GroupNorms and 32 SiLUs per forward
//! pass, so on small latents those chains, not the arithmetic, decided how
//! far behind PyTorch training was. Here each is one backend-extension
//! operation with a hand-written backward: libtorch runs its native kernels
//! (`libtorch.rs`); flex runs its own for convolutions, GroupNorm, SiLU,
//! the additions and attention (`flex_conv.rs`, `flex_norm.rs`,
//! `flex_attention.rs`); everything else uses closed-form gradients built
//! from a handful of primitive operations (`composed.rs` and
//! the trait defaults below). The autodiff nodes are in `autodiff.rs`.
//!
//! A new backend joins by implementing `FusedKernels` (the defaults are
//! enough) and `FusedOps`, and by being listed in `#[backend_extension]`;
//! calling an extension on an unlisted backend panics.

// burn-tch is deprecated upstream; it is still our libtorch (CPU and CUDA) path.
#![allow(deprecated)]

use burn::backend::ops::ActivationOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Scalar, TensorMetadata, backend_extension};
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

/// `a + b` for `b` of `a`'s shape or [N, C, 1, 1] (one value per image
/// and channel, the U-Net's time embedding), as one operation: Burn's
/// element-wise operations run on one thread, and the U-Net's residual and
/// embedding additions left the other cores idle.
pub fn add(a: Tensor<4>, b: Tensor<4>) -> Tensor<4> {
    let ([n, c, _, _], b_dims) = (a.dims(), b.dims());
    assert!(
        b_dims == a.dims() || b_dims == [n, c, 1, 1],
        "add: {b_dims:?} does not match {:?}",
        a.dims()
    );
    Tensor::from_dispatch(<Dispatch as FusedOps>::fused_add(
        a.into_dispatch(),
        b.into_dispatch(),
    ))
}

/// `x · sigmoid(x)` as one operation.
pub fn silu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedOps>::fused_silu(x.into_dispatch()))
}

/// `max(x, 0)`; its backward is one masked pass.
pub fn relu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedOps>::fused_relu(x.into_dispatch()))
}

/// Mean squared error over all elements, shape [1], as one operation.
pub fn mse_loss<const D: usize>(prediction: Tensor<D>, target: Tensor<D>) -> Tensor<1> {
    Tensor::from_dispatch(<Dispatch as FusedOps>::fused_mse(
        prediction.into_dispatch(),
        target.into_dispatch(),
    ))
}

/// Softmax over the last dimension as one operation.
pub fn softmax_last<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedOps>::fused_softmax_last(
        x.into_dispatch(),
    ))
}

/// Multi-head softmax attention (scale 1/√d) from a fused projection qkv
/// [B, N, 3·heads·head_dim], each token's values laid out [3, heads, d]:
/// [B, N, heads·head_dim]. For sampling; training composes its own
/// attention from matmuls and `softmax_last`, whose gradients it needs.
pub fn attention_qkv(qkv: Tensor<3>, heads: usize, head_dim: usize) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as FusedOps>::fused_attention_qkv(
        qkv.into_dispatch(),
        heads,
        head_dim,
    ))
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

    fn fused_relu(x: FloatTensor<Self>) -> FloatTensor<Self>;

    fn fused_mse(prediction: FloatTensor<Self>, target: FloatTensor<Self>) -> FloatTensor<Self>;

    fn fused_add(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self>;

    fn fused_conv(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        spec: ConvSpec,
    ) -> FloatTensor<Self>;

    fn fused_attention_qkv(
        qkv: FloatTensor<Self>,
        heads: usize,
        head_dim: usize,
    ) -> FloatTensor<Self>;
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
        composed::group_norm_forward::<Self>(x, gamma, beta, groups, epsilon)
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
        composed::group_norm_backward::<Self>(x, gamma, mean, rstd, groups, grad)
    }

    fn silu_forward(x: FloatTensor<Self>) -> FloatTensor<Self> {
        composed::silu_forward::<Self>(x)
    }

    /// d/dx x·σ(x) = σ(x)·(1 + x·(1 − σ(x))).
    fn silu_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        composed::silu_backward::<Self>(x, grad)
    }

    fn softmax_last_forward(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let last = x.shape().num_dims() - 1;
        Self::softmax(x, last)
    }

    /// dx = s·(dy − Σ dy·s), the sum over the last dimension.
    fn softmax_last_backward(
        output: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let last = output.shape().num_dims() - 1;
        let dot = Self::float_sum_dim(Self::float_mul(grad.clone(), output.clone()), last);
        Self::float_mul(output, Self::float_sub(grad, dot))
    }

    /// The gradient where the ReLU output is positive, zero elsewhere.
    fn relu_grad(output: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        <Self as ActivationOps<Self>>::relu_backward(output, grad)
    }

    fn mse_forward(prediction: FloatTensor<Self>, target: FloatTensor<Self>) -> FloatTensor<Self> {
        let diff = Self::float_sub(prediction, target);
        Self::float_mean(Self::float_mul(diff.clone(), diff))
    }

    /// d/dprediction = 2·(prediction − target)/n · grad; the target's is its negative.
    fn mse_backward(
        prediction: FloatTensor<Self>,
        target: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let shape = prediction.shape();
        let n = shape.num_elements() as f64;
        // The loss gradient has shape [1]; give it the prediction's rank to broadcast.
        let grad = Self::float_reshape(grad, Shape::from(vec![1; shape.num_dims()]));
        let diff = Self::float_sub(prediction, target);
        Self::float_mul(Self::float_mul_scalar(diff, Scalar::Float(2.0 / n)), grad)
    }

    /// `a + b`, b of a's shape or [N, C, 1, 1] (see `add`).
    fn add_forward(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::float_add(a, b)
    }

    /// b's gradient from the sum's: itself, or summed over the pixels when
    /// b was [N, C, 1, 1].
    fn add_backward_b(grad: FloatTensor<Self>, b_shape: Shape) -> FloatTensor<Self> {
        if grad.shape() == b_shape {
            grad
        } else {
            Self::float_sum_dim(Self::float_sum_dim(grad, 3), 2)
        }
    }

    /// See `attention_qkv`.
    fn attention_qkv_forward(
        qkv: FloatTensor<Self>,
        heads: usize,
        head_dim: usize,
    ) -> FloatTensor<Self> {
        composed::attention_qkv::<Self>(qkv, heads, head_dim)
    }

    /// The convolution (plain or transposed) with its bias.
    fn conv_forward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        spec: ConvSpec,
    ) -> FloatTensor<Self> {
        conv::forward::<Self>(x, weight, bias, spec)
    }

    /// The convolution, and the tensors its backward will need.
    fn conv_forward_saved(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        spec: ConvSpec,
    ) -> (FloatTensor<Self>, Vec<FloatTensor<Self>>) {
        let out = Self::conv_forward(x.clone(), weight.clone(), bias.clone(), spec);
        (out, vec![x, weight, bias])
    }

    /// Gradients for x, weight and bias where `wanted`, from what the forward saved.
    fn conv_backward_saved(
        saved: Vec<FloatTensor<Self>>,
        spec: ConvSpec,
        wanted: [bool; 3],
        grad: FloatTensor<Self>,
    ) -> [Option<FloatTensor<Self>>; 3] {
        let saved: [FloatTensor<Self>; 3] = saved
            .try_into()
            .unwrap_or_else(|_| unreachable!("conv_forward_saved keeps x, weight and bias"));
        conv::backward::<Self>(saved, spec, wanted, grad)
    }
}

/// flex: its own convolution (`flex_conv.rs`), GroupNorm and SiLU
/// (`flex_norm.rs`) kernels where they apply.
#[cfg(feature = "flex")]
impl FusedKernels for Flex {
    fn group_norm_forward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        groups: usize,
        epsilon: f64,
    ) -> [FloatTensor<Self>; 3] {
        if flex_norm::supported(&x) {
            flex_norm::group_norm_forward(x, gamma, beta, groups, epsilon)
        } else {
            composed::group_norm_forward::<Self>(x, gamma, beta, groups, epsilon)
        }
    }

    fn group_norm_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        rstd: FloatTensor<Self>,
        groups: usize,
        grad: FloatTensor<Self>,
    ) -> [FloatTensor<Self>; 3] {
        if flex_norm::supported(&x) {
            flex_norm::group_norm_backward(x, gamma, mean, rstd, groups, grad)
        } else {
            composed::group_norm_backward::<Self>(x, gamma, mean, rstd, groups, grad)
        }
    }

    fn silu_forward(x: FloatTensor<Self>) -> FloatTensor<Self> {
        if flex_norm::supported(&x) {
            flex_norm::silu_forward(x)
        } else {
            composed::silu_forward::<Self>(x)
        }
    }

    fn silu_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        if flex_norm::supported(&x) {
            flex_norm::silu_backward(x, grad)
        } else {
            composed::silu_backward::<Self>(x, grad)
        }
    }

    fn add_forward(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        if flex_norm::add_supported(&a, &b) {
            flex_norm::add(a, b)
        } else {
            <Self as burn::backend::ops::FloatTensorOps<Self>>::float_add(a, b)
        }
    }

    fn attention_qkv_forward(
        qkv: FloatTensor<Self>,
        heads: usize,
        head_dim: usize,
    ) -> FloatTensor<Self> {
        if flex_attention::supported(&qkv, heads, head_dim) {
            flex_attention::forward(qkv, heads, head_dim)
        } else {
            composed::attention_qkv::<Self>(qkv, heads, head_dim)
        }
    }

    fn conv_forward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        spec: ConvSpec,
    ) -> FloatTensor<Self> {
        if flex_conv::supported(&x, &weight, &spec) {
            flex_conv::forward(x, weight, bias, spec)
        } else {
            conv::forward::<Self>(x, weight, bias, spec)
        }
    }

    fn conv_backward_saved(
        saved: Vec<FloatTensor<Self>>,
        spec: ConvSpec,
        wanted: [bool; 3],
        grad: FloatTensor<Self>,
    ) -> [Option<FloatTensor<Self>>; 3] {
        let saved: [FloatTensor<Self>; 3] = saved
            .try_into()
            .unwrap_or_else(|_| unreachable!("conv_forward_saved keeps x, weight and bias"));
        if flex_conv::supported(&saved[0], &saved[1], &spec) {
            flex_conv::backward(saved, spec, wanted, grad)
        } else {
            conv::backward::<Self>(saved, spec, wanted, grad)
        }
    }
}

/// `FusedOps` for a concrete backend: each operation is its forward kernel.
/// The backward kernels are reached only through the autodiff nodes. Defined
/// before `mod libtorch` below, which invokes it too.
macro_rules! fused_ops_from_kernels {
    ($backend:ty) => {
        impl FusedOps for $backend {
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

            fn fused_relu(x: FloatTensor<Self>) -> FloatTensor<Self> {
                <Self as ActivationOps<Self>>::relu(x)
            }

            fn fused_mse(
                prediction: FloatTensor<Self>,
                target: FloatTensor<Self>,
            ) -> FloatTensor<Self> {
                Self::mse_forward(prediction, target)
            }

            fn fused_conv(
                x: FloatTensor<Self>,
                weight: FloatTensor<Self>,
                bias: FloatTensor<Self>,
                spec: ConvSpec,
            ) -> FloatTensor<Self> {
                Self::conv_forward(x, weight, bias, spec)
            }

            fn fused_add(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
                Self::add_forward(a, b)
            }

            fn fused_attention_qkv(
                qkv: FloatTensor<Self>,
                heads: usize,
                head_dim: usize,
            ) -> FloatTensor<Self> {
                Self::attention_qkv_forward(qkv, heads, head_dim)
            }
        }
    };
}

#[cfg(feature = "flex")]
fused_ops_from_kernels!(Flex);

mod autodiff;
mod composed;
pub mod conv;
#[cfg(feature = "flex")]
#[macro_use]
mod multiversion;
#[cfg(feature = "flex")]
mod flex_attention;
#[cfg(feature = "flex")]
mod flex_conv;
#[cfg(feature = "flex")]
mod flex_norm;
#[cfg(feature = "tch")]
mod libtorch;
#[cfg(feature = "flex")]
mod par_zeroed;

pub use conv::{ConvSpec, conv_transpose2d, conv2d};
#[cfg(feature = "flex")]
pub use multiversion::simd_level;
