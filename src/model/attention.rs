//! Channel attention (squeeze-and-excitation) and the channel-attention block
//! (CAB) used by the autoencoder.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;

use super::fused::{add, conv2d, relu};

/// Global average pool → 1×1 conv (c → c/r) → ReLU → 1×1 conv (c/r → c) →
/// sigmoid, then scale each input channel by its weight.
#[derive(Module, Debug)]
pub struct ChannelAttention {
    squeeze: Conv2d,
    excite: Conv2d,
}

impl ChannelAttention {
    pub fn new(channels: usize, reduction: usize, device: &Device) -> Self {
        let hidden = (channels / reduction).max(1);
        Self {
            squeeze: Conv2dConfig::new([channels, hidden], [1, 1])
                .with_bias(false)
                .init(device),
            excite: Conv2dConfig::new([hidden, channels], [1, 1])
                .with_bias(false)
                .init(device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let pooled = x
            .clone()
            .reshape([b, c, h * w])
            .mean_dim(2)
            .reshape([b, c, 1, 1]);
        let weights = sigmoid(conv2d(&self.excite, relu(conv2d(&self.squeeze, pooled))));
        x * weights
    }
}

/// conv3×3 → ReLU → conv3×3 → channel attention, plus the input (residual).
#[derive(Module, Debug)]
pub struct Cab {
    conv1: Conv2d,
    conv2: Conv2d,
    attention: ChannelAttention,
}

impl Cab {
    pub fn new(channels: usize, reduction: usize, device: &Device) -> Self {
        let conv = || {
            Conv2dConfig::new([channels, channels], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_bias(false)
                .init(device)
        };
        Self {
            conv1: conv(),
            conv2: conv(),
            attention: ChannelAttention::new(channels, reduction, device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let h = conv2d(&self.conv2, relu(conv2d(&self.conv1, x.clone())));
        add(self.attention.forward(h), x)
    }
}
