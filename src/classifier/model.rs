//! A small CNN digit/garment classifier whose penultimate features score
//! generated images (cFID), the way Inception features do for FID.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

pub const FEATURES: usize = 128;
pub const CLASSES: usize = 10;

#[derive(Module, Debug)]
pub struct Classifier {
    conv1: Conv2d,
    conv2: Conv2d,
    pool: MaxPool2d,
    hidden: Linear,
    out: Linear,
}

impl Classifier {
    pub fn new(device: &Device) -> Self {
        crate::model::params::materialized(|| Self::build(device))
    }

    fn build(device: &Device) -> Self {
        let conv = |cin, cout| {
            Conv2dConfig::new([cin, cout], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        Self {
            conv1: conv(1, 32),
            conv2: conv(32, 64),
            pool: MaxPool2dConfig::new([2, 2]).init(),
            hidden: LinearConfig::new(64 * 7 * 7, FEATURES).init(device),
            out: LinearConfig::new(FEATURES, CLASSES).init(device),
        }
    }

    /// Penultimate-layer features [B, 128] of images [B, 1, 28, 28].
    pub fn features(&self, images: Tensor<4>) -> Tensor<2> {
        let x = self.pool.forward(relu(self.conv1.forward(images)));
        let x = self.pool.forward(relu(self.conv2.forward(x)));
        relu(self.hidden.forward(x.flatten(1, 3)))
    }

    pub fn logits_from_features(&self, features: Tensor<2>) -> Tensor<2> {
        self.out.forward(features)
    }

    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.logits_from_features(self.features(images))
    }
}
