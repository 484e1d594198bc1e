//! The latent DDPM U-Net: residual blocks with time conditioning,
//! multi-head self-attention at chosen levels, skips between the down and up
//! paths. With the seed preset this is the seed's 624,097-parameter model.

use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{
    Embedding, EmbeddingConfig, GroupNorm, GroupNormConfig, Linear, LinearConfig, PaddingConfig2d,
};
use burn::prelude::*;

use super::fused::{add, attention_qkv, conv_transpose2d, conv2d, group_norm, silu, softmax_last};

use crate::config::UnetConfig;

fn conv3(cin: usize, cout: usize, stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [3, 3])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

fn norm(groups: usize, channels: usize, device: &Device) -> GroupNorm {
    GroupNormConfig::new(groups.min(channels), channels).init(device)
}

/// Sinusoidal timestep features: half sines, half cosines, with frequencies
/// exp(−ln(10000)·i/(half−1)), i = 0..half. Computed on the host: it is a
/// handful of numbers per sample and needs no gradient.
pub fn sinusoidal_embedding(timesteps: &[usize], dim: usize) -> Vec<f32> {
    let half = dim / 2;
    let scale = (10000f64).ln() / (half as f64 - 1.0);
    let mut out = Vec::with_capacity(timesteps.len() * dim);
    for &t in timesteps {
        let args: Vec<f64> = (0..half)
            .map(|i| t as f64 * (-scale * i as f64).exp())
            .collect();
        out.extend(args.iter().map(|a| a.sin() as f32));
        out.extend(args.iter().map(|a| a.cos() as f32));
    }
    out
}

#[derive(Module, Debug)]
pub struct ResBlock {
    norm1: GroupNorm,
    conv1: Conv2d,
    time: Linear,
    norm2: GroupNorm,
    conv2: Conv2d,
    skip: Option<Conv2d>,
}

impl ResBlock {
    pub fn new(cin: usize, cout: usize, cfg: &UnetConfig, device: &Device) -> Self {
        Self {
            norm1: norm(cfg.groups, cin, device),
            conv1: conv3(cin, cout, 1, device),
            time: LinearConfig::new(cfg.time_dim, cout).init(device),
            norm2: norm(cfg.groups, cout, device),
            conv2: conv3(cout, cout, 1, device),
            skip: (cin != cout).then(|| Conv2dConfig::new([cin, cout], [1, 1]).init(device)),
        }
    }

    /// `temb_act` is SiLU(time embedding), shared by every block.
    pub fn forward(&self, x: Tensor<4>, temb_act: Tensor<2>) -> Tensor<4> {
        let h = silu(conv2d(
            &self.conv1,
            silu(group_norm(&self.norm1, x.clone())),
        ));
        let t: Tensor<4> = self.time.forward(temb_act).unsqueeze_dims(&[2, 3]);
        let h = conv2d(&self.conv2, silu(group_norm(&self.norm2, add(h, t))));
        let residual = match &self.skip {
            Some(conv) => conv2d(conv, x),
            None => x,
        };
        add(h, residual)
    }
}

/// Multi-head self-attention over spatial positions, with a residual.
/// Logits are scaled by 1/√d (the seed multiplied by √d: a bug we fix).
#[derive(Module, Debug)]
pub struct Attention {
    norm: GroupNorm,
    qkv: Linear,
    out: Linear,
    heads: usize,
    head_dim: usize,
}

impl Attention {
    pub fn new(channels: usize, cfg: &UnetConfig, device: &Device) -> Self {
        let inner = cfg.heads * cfg.head_dim;
        Self {
            norm: norm(cfg.groups, channels, device),
            qkv: LinearConfig::new(channels, 3 * inner).init(device),
            out: LinearConfig::new(inner, channels).init(device),
            heads: cfg.heads,
            head_dim: cfg.head_dim,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let n = h * w;
        let tokens = group_norm(&self.norm, x.clone())
            .reshape([b, c, n])
            .swap_dims(1, 2); // [B, N, C]
        let qkv = self.qkv.forward(tokens); // [B, N, 3·heads·d]
        let attended = if qkv.is_autodiff() {
            let qkv = qkv
                .reshape([b, n, 3, self.heads, self.head_dim])
                .permute([2, 0, 3, 1, 4]); // [3, B, heads, N, d]
            let part = |i: usize| -> Tensor<4> {
                qkv.clone()
                    .narrow(0, i, 1)
                    .reshape([b, self.heads, n, self.head_dim])
            };
            let (q, k, v) = (part(0), part(1), part(2));
            let scale = 1.0 / (self.head_dim as f64).sqrt();
            softmax_last(q.matmul(k.swap_dims(2, 3)).mul_scalar(scale))
                .matmul(v)
                .swap_dims(1, 2)
                .reshape([b, n, self.heads * self.head_dim])
        } else {
            // Sampling: the backend's fused attention (libtorch: SDPA; flex:
            // its own kernel on the projection as laid out), scale 1/√d.
            attention_qkv(qkv, self.heads, self.head_dim)
        }; // [B, N, heads·d]
        let out = self
            .out
            .forward(attended)
            .swap_dims(1, 2)
            .reshape([b, c, h, w]);
        add(out, x)
    }
}

#[derive(Module, Debug)]
pub struct Level {
    entry: Option<Conv2d>,
    up: Option<ConvTranspose2d>,
    blocks: Vec<ResBlock>,
    attention: Option<Attention>,
}

impl Level {
    fn run(&self, mut x: Tensor<4>, temb: &Tensor<2>) -> Tensor<4> {
        if let Some(conv) = &self.entry {
            x = conv2d(conv, x);
        }
        if let Some(up) = &self.up {
            x = conv_transpose2d(up, x);
        }
        for block in &self.blocks {
            x = block.forward(x, temb.clone());
        }
        if let Some(attn) = &self.attention {
            x = attn.forward(x);
        }
        x
    }
}

#[derive(Module, Debug)]
pub struct Unet {
    time1: Linear,
    time2: Linear,
    /// Class-conditional models: one row per class and a last "no class" row.
    class_embedding: Option<Embedding>,
    down: Vec<Level>,
    mid1: ResBlock,
    mid_attention: Option<Attention>,
    mid2: ResBlock,
    up: Vec<Level>,
    out: Conv2d,
    time_dim: usize,
}

impl Unet {
    /// `in_channels` is the channel count of the reshaped latent.
    pub fn new(cfg: &UnetConfig, in_channels: usize, device: &Device) -> Self {
        super::params::materialized(|| Self::build(cfg, in_channels, device))
    }

    fn build(cfg: &UnetConfig, in_channels: usize, device: &Device) -> Self {
        let ch = &cfg.channels;
        let levels = ch.len();
        let attn = |on: bool, c: usize| on.then(|| Attention::new(c, cfg, device));
        let blocks =
            |n: usize, c: usize| (0..n).map(|_| ResBlock::new(c, c, cfg, device)).collect();
        let down = (0..levels)
            .map(|i| Level {
                entry: Some(if i == 0 {
                    conv3(in_channels, ch[0], 1, device)
                } else {
                    conv3(ch[i - 1], ch[i], 2, device)
                }),
                up: None,
                blocks: blocks(cfg.down_blocks[i], ch[i]),
                attention: attn(cfg.attention[i], ch[i]),
            })
            .collect();
        let deepest = ch[levels - 1];
        // Up level i takes the running features concatenated with the skip of
        // down level i; all but the top level double the resolution.
        let up = (0..levels)
            .rev()
            .map(|i| {
                let cin = if i == levels - 1 { deepest } else { ch[i + 1] } + ch[i];
                let up = if i == 0 {
                    ConvTranspose2dConfig::new([cin, ch[i]], [3, 3]).with_padding([1, 1])
                } else {
                    ConvTranspose2dConfig::new([cin, ch[i]], [4, 4])
                        .with_stride([2, 2])
                        .with_padding([1, 1])
                };
                Level {
                    entry: None,
                    up: Some(up.init(device)),
                    blocks: blocks(cfg.up_blocks[i], ch[i]),
                    attention: attn(cfg.attention[i], ch[i]),
                }
            })
            .collect();
        Self {
            time1: LinearConfig::new(cfg.time_dim, cfg.time_dim).init(device),
            time2: LinearConfig::new(cfg.time_dim, cfg.time_dim).init(device),
            class_embedding: (cfg.classes > 0)
                .then(|| EmbeddingConfig::new(cfg.classes + 1, cfg.time_dim).init(device)),
            down,
            mid1: ResBlock::new(deepest, deepest, cfg, device),
            mid_attention: attn(cfg.mid_attention, deepest),
            mid2: ResBlock::new(deepest, deepest, cfg, device),
            up,
            out: conv3(ch[0], in_channels, 1, device),
            time_dim: cfg.time_dim,
        }
    }

    /// Predict the noise in `x` [B, C, H, W] at integer `timesteps` (one per
    /// sample), unconditionally ("no class" for a class-conditional model).
    pub fn forward(&self, x: Tensor<4>, timesteps: &[usize]) -> Tensor<4> {
        self.forward_classes(x, timesteps, None)
    }

    /// Classes this model is conditioned on (0: unconditional); class index
    /// `classes()` means "no class".
    pub fn classes(&self) -> usize {
        self.class_embedding
            .as_ref()
            .map_or(0, |e| e.weight.dims()[0] - 1)
    }

    /// `forward` with one class per sample (`classes()` = "no class").
    pub fn forward_classes(
        &self,
        x: Tensor<4>,
        timesteps: &[usize],
        labels: Option<&[usize]>,
    ) -> Tensor<4> {
        let device = x.device();
        let features = Tensor::<2>::from_data(
            TensorData::new(
                sinusoidal_embedding(timesteps, self.time_dim),
                [timesteps.len(), self.time_dim],
            ),
            &device,
        );
        let mut temb = self.time2.forward(silu(self.time1.forward(features)));
        if let Some(embedding) = &self.class_embedding {
            let none = self.classes();
            let ids: Vec<i64> = match labels {
                Some(l) => l.iter().map(|&c| c.min(none) as i64).collect(),
                None => vec![none as i64; timesteps.len()],
            };
            let ids =
                Tensor::<2, Int>::from_data(TensorData::new(ids, [timesteps.len(), 1]), &device);
            let class = embedding
                .forward(ids)
                .reshape([timesteps.len(), self.time_dim]);
            temb = temb + class;
        }
        self.forward_with_embedding(x, silu(temb))
    }

    fn forward_with_embedding(&self, mut x: Tensor<4>, temb_act: Tensor<2>) -> Tensor<4> {
        let mut skips = Vec::with_capacity(self.down.len());
        for level in &self.down {
            x = level.run(x, &temb_act);
            skips.push(x.clone());
        }
        x = self.mid1.forward(x, temb_act.clone());
        if let Some(attn) = &self.mid_attention {
            x = attn.forward(x);
        }
        x = self.mid2.forward(x, temb_act.clone());
        for level in &self.up {
            let skip = skips.pop().expect("one skip per level");
            x = level.run(Tensor::cat(vec![x, skip], 1), &temb_act);
        }
        conv2d(&self.out, x)
    }
}
