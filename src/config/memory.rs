//! How much memory a config needs to train, estimated from its numbers
//! alone so that an absurd config is refused before anything is allocated.
//!
//! Parameter counts are exact (tests compare them with the built models).
//! Activations are a deliberately generous estimate: every tensor a layer
//! keeps for backward, times `ACTIVATION_FACTOR` for its gradient and the
//! temporaries around it. It only has to separate "fits" from "cannot fit";
//! the presets need a few hundred MB at most.

use super::ExperimentConfig;

/// Saved activations, their gradients and short-lived temporaries.
const ACTIVATION_FACTOR: f64 = 3.0;
const F32: f64 = 4.0;
const IMAGE_SIDE: usize = 28;
/// The largest training split latentlab loads (its latents stay in memory
/// during the diffusion stage).
const TRAIN_IMAGES: f64 = 60_000.0;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemoryEstimate {
    pub ae_params: u64,
    pub unet_params: u64,
    /// Bytes at the peak of each stage.
    pub ae_stage_bytes: f64,
    pub diffusion_stage_bytes: f64,
}

impl MemoryEstimate {
    /// None when the config's shape is inconsistent (validation reports that).
    pub fn of(cfg: &ExperimentConfig) -> Option<Self> {
        let ae = &cfg.autoencoder;
        let u = &cfg.unet;
        if ae.channels.is_empty()
            || ae.cabs_per_level.len() != ae.channels.len()
            || u.channels.is_empty()
            || [u.down_blocks.len(), u.up_blocks.len(), u.attention.len()]
                .iter()
                .any(|&n| n != u.channels.len())
            || ae.attention_reduction == 0
        {
            return None;
        }
        let ae_params = autoencoder_params(cfg);
        let unet_params = unet_params(cfg);
        let ae_act = autoencoder_activations(cfg) * cfg.ae_training.batch_size as f64;
        let unet_act = unet_activations(cfg) * cfg.diffusion_training.batch_size as f64;
        // Weights, gradients and Adam's two moments; the U-Net adds EMA.
        let ae_stage_bytes = 4.0 * ae_params * F32 + ae_act * ACTIVATION_FACTOR * F32;
        let latents = TRAIN_IMAGES * ae.latent_dim as f64 * F32;
        let diffusion_stage_bytes = ae_params * F32
            + 5.0 * unet_params * F32
            + latents
            + unet_act * ACTIVATION_FACTOR * F32;
        Some(Self {
            ae_params: ae_params as u64,
            unet_params: unet_params as u64,
            ae_stage_bytes,
            diffusion_stage_bytes,
        })
    }

    pub fn peak_bytes(&self) -> u64 {
        self.ae_stage_bytes.max(self.diffusion_stage_bytes) as u64
    }

    fn diffusion_is_peak(&self) -> bool {
        self.diffusion_stage_bytes >= self.ae_stage_bytes
    }

    /// The field to blame: the batch size of the stage that needs the most.
    pub fn field(&self) -> &'static str {
        if self.diffusion_is_peak() {
            "diffusion_training.batch_size"
        } else {
            "ae_training.batch_size"
        }
    }

    pub fn refusal(&self, available: u64) -> String {
        let (stage, params) = if self.diffusion_is_peak() {
            ("diffusion", self.unet_params)
        } else {
            ("autoencoder", self.ae_params)
        };
        format!(
            "training needs about {} (the {stage} stage, {params} parameters) but {} is \
             available; lower the batch size or the model's width",
            gib(self.peak_bytes() as f64),
            gib(available as f64)
        )
    }
}

fn gib(bytes: f64) -> String {
    format!("{:.1} GiB", bytes / (1u64 << 30) as f64)
}

/// Memory the system can give this process without swapping, in bytes.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

fn sides(levels: usize) -> Vec<f64> {
    let mut side = IMAGE_SIDE;
    (0..levels)
        .map(|_| {
            side = side.div_ceil(2);
            side as f64
        })
        .collect()
}

fn cab_params(c: f64, reduction: usize) -> f64 {
    let hidden = (c as usize / reduction) as f64;
    2.0 * 9.0 * c * c + 2.0 * c * hidden
}

/// Exactly `Autoencoder::num_params()`.
pub fn autoencoder_params(cfg: &ExperimentConfig) -> f64 {
    let ae = &cfg.autoencoder;
    let ch: Vec<f64> = ae.channels.iter().map(|&c| c as f64).collect();
    let side = *sides(ch.len()).last().unwrap_or(&1.0);
    let flat = ch.last().copied().unwrap_or(0.0) * side * side;
    let latent = ae.latent_dim as f64;
    let mut p = 2.0 * flat * latent + latent + flat;
    for (i, &c) in ch.iter().enumerate() {
        let cin = if i == 0 { 1.0 } else { ch[i - 1] };
        p += 9.0 * cin * c + c; // encoder conv
        p += ae.cabs_per_level[i] as f64 * cab_params(c, ae.attention_reduction);
        p += 16.0 * c * cin + cin; // decoder transposed conv back to cin
        if i > 0 {
            p += ae.cabs_per_level[i - 1] as f64 * cab_params(cin, ae.attention_reduction);
        }
    }
    p
}

/// Exactly `Unet::num_params()`.
pub fn unet_params(cfg: &ExperimentConfig) -> f64 {
    let u = &cfg.unet;
    let t = u.time_dim as f64;
    // The class embedding, with its "no class" entry.
    let classes = if u.classes > 0 {
        (u.classes as f64 + 1.0) * t
    } else {
        0.0
    };
    let inner = (u.heads as f64) * (u.head_dim as f64);
    let input = cfg.autoencoder.latent_shape[0] as f64;
    let res = |cin: f64, cout: f64| {
        let skip = if cin != cout { cin * cout + cout } else { 0.0 };
        2.0 * cin
            + 9.0 * cin * cout
            + cout
            + t * cout
            + cout
            + 2.0 * cout
            + 9.0 * cout * cout
            + cout
            + skip
    };
    let attn = |c: f64| 2.0 * c + c * 3.0 * inner + 3.0 * inner + inner * c + c;
    let ch: Vec<f64> = u.channels.iter().map(|&c| c as f64).collect();
    let levels = ch.len();
    let deepest = ch[levels - 1];
    let mut p = 2.0 * (t * t + t) + 9.0 * ch[0] * input + input;
    for i in 0..levels {
        let c = ch[i];
        let cin = if i == 0 { input } else { ch[i - 1] };
        p += 9.0 * cin * c + c;
        let up_in = if i == levels - 1 { deepest } else { ch[i + 1] } + c;
        let k = if i == 0 { 9.0 } else { 16.0 };
        p += k * up_in * c + c;
        p += (u.down_blocks[i] + u.up_blocks[i]) as f64 * res(c, c);
        if u.attention[i] {
            p += 2.0 * attn(c);
        }
    }
    p += 2.0 * res(deepest, deepest);
    if u.mid_attention {
        p += attn(deepest);
    }
    p + classes
}

/// Activation elements one training image keeps in the autoencoder.
fn autoencoder_activations(cfg: &ExperimentConfig) -> f64 {
    let ae = &cfg.autoencoder;
    let pixels = (IMAGE_SIDE * IMAGE_SIDE) as f64;
    let mut a = 4.0 * pixels + 2.0 * ae.latent_dim as f64;
    for (i, side) in sides(ae.channels.len()).iter().enumerate() {
        let map = ae.channels[i] as f64 * side * side;
        // conv + ReLU, and six tensors per CAB; the decoder mirrors it.
        a += 2.0 * map * (2.0 + 6.0 * ae.cabs_per_level[i] as f64);
    }
    a
}

/// Activation elements one training latent keeps in the U-Net.
fn unet_activations(cfg: &ExperimentConfig) -> f64 {
    let u = &cfg.unet;
    let [_, h, w] = cfg.autoencoder.latent_shape;
    let heads = u.heads as f64;
    let inner = heads * u.head_dim as f64;
    let res = |c: f64, n: f64| 10.0 * c * n;
    let attn = |c: f64, n: f64| 6.0 * c * n + 3.0 * inner * n + 3.0 * heads * n * n;
    let levels = u.channels.len();
    let mut a = 4.0 * u.time_dim as f64;
    for (i, &c) in u.channels.iter().enumerate() {
        let c = c as f64;
        let n = ((h >> i).max(1) * (w >> i).max(1)) as f64;
        let blocks = (u.down_blocks[i] + u.up_blocks[i]) as f64;
        let up_in = if i + 1 < levels {
            u.channels[i + 1] as f64
        } else {
            c
        };
        a += 2.0 * c * n + (up_in + c) * n + blocks * res(c, n);
        if u.attention[i] {
            a += 2.0 * attn(c, n);
        }
        if i + 1 == levels {
            a += 2.0 * res(c, n) + if u.mid_attention { attn(c, n) } else { 0.0 };
        }
    }
    a
}
