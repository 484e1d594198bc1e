//! The convolutional autoencoder with channel-attention blocks.
//!
//! Encoder level i: conv3×3 stride 2 → CAB × n_i → ReLU. Then flatten and a
//! linear layer to the latent. The decoder mirrors it with 4×4 stride-2
//! transposed convs and ends in a sigmoid. With the seed preset this is the
//! seed's 224,945-parameter model exactly.

use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;

use super::fused::{conv_transpose2d, conv2d, relu};

use super::attention::Cab;
use crate::config::AutoencoderConfig;

pub const IMAGE_SIDE: usize = 28;

#[derive(Module, Debug)]
pub struct EncoderLevel {
    conv: Conv2d,
    cabs: Vec<Cab>,
}

#[derive(Module, Debug)]
pub struct DecoderLevel {
    up: ConvTranspose2d,
    cabs: Vec<Cab>,
}

#[derive(Module, Debug)]
pub struct Autoencoder {
    encoder: Vec<EncoderLevel>,
    to_latent: Linear,
    from_latent: Linear,
    decoder: Vec<DecoderLevel>,
    bottom_channels: usize,
    bottom_side: usize,
    latent_dim: usize,
}

impl Autoencoder {
    pub fn new(cfg: &AutoencoderConfig, device: &Device) -> Self {
        super::params::materialized(|| Self::build(cfg, device))
    }

    fn build(cfg: &AutoencoderConfig, device: &Device) -> Self {
        let levels = cfg.channels.len();
        let bottom_side = (0..levels).fold(IMAGE_SIDE, |s, _| s.div_ceil(2));
        let bottom_channels = *cfg.channels.last().expect("validated: at least one level");
        let flat = bottom_channels * bottom_side * bottom_side;
        let cabs = |c: usize, n: usize| -> Vec<Cab> {
            (0..n)
                .map(|_| Cab::new(c, cfg.attention_reduction, device))
                .collect()
        };
        let encoder = (0..levels)
            .map(|i| {
                let cin = if i == 0 { 1 } else { cfg.channels[i - 1] };
                EncoderLevel {
                    conv: Conv2dConfig::new([cin, cfg.channels[i]], [3, 3])
                        .with_stride([2, 2])
                        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                        .init(device),
                    cabs: cabs(cfg.channels[i], cfg.cabs_per_level[i]),
                }
            })
            .collect();
        // Decoder level i undoes encoder level i, deepest first; its CABs work
        // at the channel count of the level above, as in the seed.
        let decoder = (0..levels)
            .rev()
            .map(|i| {
                let cout = if i == 0 { 1 } else { cfg.channels[i - 1] };
                DecoderLevel {
                    up: ConvTranspose2dConfig::new([cfg.channels[i], cout], [4, 4])
                        .with_stride([2, 2])
                        .with_padding([1, 1])
                        .init(device),
                    cabs: if i == 0 {
                        Vec::new()
                    } else {
                        cabs(cout, cfg.cabs_per_level[i - 1])
                    },
                }
            })
            .collect();
        Self {
            encoder,
            to_latent: LinearConfig::new(flat, cfg.latent_dim).init(device),
            from_latent: LinearConfig::new(cfg.latent_dim, flat).init(device),
            decoder,
            bottom_channels,
            bottom_side,
            latent_dim: cfg.latent_dim,
        }
    }

    pub fn latent_dim(&self) -> usize {
        self.latent_dim
    }

    /// Images [B, 1, 28, 28] in [0, 1] → latents [B, latent_dim].
    pub fn encode(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x = images;
        for level in &self.encoder {
            x = conv2d(&level.conv, x);
            for cab in &level.cabs {
                x = cab.forward(x);
            }
            x = relu(x);
        }
        self.to_latent.forward(x.flatten(1, 3))
    }

    /// Latents [B, latent_dim] → images [B, 1, 28, 28] in (0, 1).
    pub fn decode(&self, latents: Tensor<2>) -> Tensor<4> {
        let batch = latents.dims()[0];
        let mut x = self.from_latent.forward(latents).reshape([
            batch,
            self.bottom_channels,
            self.bottom_side,
            self.bottom_side,
        ]);
        let last = self.decoder.len() - 1;
        for (i, level) in self.decoder.iter().enumerate() {
            x = conv_transpose2d(&level.up, x);
            for cab in &level.cabs {
                x = cab.forward(x);
            }
            x = if i == last { sigmoid(x) } else { relu(x) };
        }
        x
    }

    pub fn forward(&self, images: Tensor<4>) -> Tensor<4> {
        self.decode(self.encode(images))
    }
}
