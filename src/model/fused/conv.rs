//! Convolutions (plain and transposed) as fused operations.
//!
//! Burn's autodiff takes a convolution's weight gradient as another
//! convolution over batch-and-channel-swapped views, and its input gradient
//! as a separate transposed convolution. On libtorch that ran 1.3–2× slower
//! than PyTorch's own `convolution_backward` at batch 256 (bench/README.md).
//! Here libtorch records its own autograd node in the forward pass and runs
//! its native backward, flex runs the im2col/GEMM kernels of `flex_conv.rs`,
//! and other backends keep Burn's kernels (below).

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::prelude::*;
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};

use super::FusedOps;

/// Everything about a 2-D convolution except its tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvSpec {
    pub stride: [usize; 2],
    /// Symmetric: the same on both sides of each axis.
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    /// Transposed only: extra rows/columns on the bottom/right of the output.
    pub padding_out: [usize; 2],
    pub groups: usize,
    pub transposed: bool,
}

impl ConvSpec {
    pub fn options(&self) -> ConvOptions<2> {
        ConvOptions::new(self.stride, self.padding, self.dilation, self.groups)
    }

    pub fn transpose_options(&self) -> ConvTransposeOptions<2> {
        ConvTransposeOptions::new(
            self.stride,
            self.padding,
            self.padding_out,
            self.dilation,
            self.groups,
        )
    }
}

/// `conv.forward(x)` as one operation. Padding other than symmetric
/// explicit or valid goes through Burn's own module.
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let padding = match conv.padding {
        PaddingConfig2d::Valid => [0, 0],
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => {
            [top, left]
        }
        _ => return conv.forward(x),
    };
    let spec = ConvSpec {
        stride: conv.stride,
        padding,
        dilation: conv.dilation,
        padding_out: [0, 0],
        groups: conv.groups,
        transposed: false,
    };
    let out_channels = conv.weight.dims()[0];
    run(
        x,
        conv.weight.val(),
        conv.bias.as_ref().map(|b| b.val()),
        out_channels,
        spec,
    )
}

/// `conv.forward(x)` for a transposed convolution, as one operation.
pub fn conv_transpose2d(conv: &ConvTranspose2d, x: Tensor<4>) -> Tensor<4> {
    let spec = ConvSpec {
        stride: conv.stride,
        padding: conv.padding,
        dilation: conv.dilation,
        padding_out: conv.padding_out,
        groups: conv.groups,
        transposed: true,
    };
    let out_channels = conv.weight.dims()[1] * conv.groups;
    run(
        x,
        conv.weight.val(),
        conv.bias.as_ref().map(|b| b.val()),
        out_channels,
        spec,
    )
}

fn run(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    out_channels: usize,
    spec: ConvSpec,
) -> Tensor<4> {
    // A constant zero bias keeps the operation's signature fixed; it takes no gradient.
    let bias = bias.unwrap_or_else(|| Tensor::zeros([out_channels], &x.device()));
    Tensor::from_dispatch(<Dispatch as FusedOps>::fused_conv(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        spec,
    ))
}

/// Burn's kernels: the default for every backend without a native backward.
pub fn forward<B: Backend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    bias: FloatTensor<B>,
    spec: ConvSpec,
) -> FloatTensor<B> {
    if spec.transposed {
        B::conv_transpose2d(x, weight, Some(bias), spec.transpose_options())
    } else {
        B::conv2d(x, weight, Some(bias), spec.options())
    }
}

/// Gradients for x, weight and bias, each only where `wanted`.
pub fn backward<B: Backend>(
    [x, weight, bias]: [FloatTensor<B>; 3],
    spec: ConvSpec,
    wanted: [bool; 3],
    grad: FloatTensor<B>,
) -> [Option<FloatTensor<B>>; 3] {
    let [want_x, want_w, want_b] = wanted;
    if spec.transposed {
        let o = spec.transpose_options();
        [
            want_x.then(|| B::conv_transpose2d_x_backward(weight.clone(), grad.clone(), o.clone())),
            want_w.then(|| {
                B::conv_transpose2d_weight_backward(x.clone(), weight, grad.clone(), o.clone())
            }),
            want_b.then(|| B::conv_transpose2d_bias_backward(x, bias, grad)),
        ]
    } else {
        let o = spec.options();
        [
            want_x
                .then(|| B::conv2d_x_backward(x.clone(), weight.clone(), grad.clone(), o.clone())),
            want_w.then(|| B::conv2d_weight_backward(x.clone(), weight, grad.clone(), o.clone())),
            want_b.then(|| B::conv2d_bias_backward(x, bias, grad)),
        ]
    }
}
