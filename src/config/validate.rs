//! Total, bounded validation: every field has a legal range with an upper
//! bound, every product is checked, and the memory a run needs is estimated
//! before anything is allocated. Nothing here can panic or overflow, whatever
//! the values: the window validates on every keystroke.

use super::memory::{MemoryEstimate, available_memory};
use super::{ExperimentConfig, Problem, StageTraining};
use crate::diffusion::schedule::betas;

/// Upper bounds, generous for MNIST-sized models: anything past them is a
/// typo or an attack, and would allocate far more than any machine has.
pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_AE_CHANNELS: usize = 1024;
pub const MAX_CABS: usize = 16;
pub const MAX_LATENT_DIM: usize = 16_384;
pub const MAX_LATENT_SIDE: usize = 128;
pub const MAX_UNET_LEVELS: usize = 6;
pub const MAX_UNET_CHANNELS: usize = 2048;
pub const MAX_BLOCKS: usize = 16;
pub const MAX_HEADS: usize = 64;
pub const MAX_HEAD_DIM: usize = 512;
pub const MAX_TIME_DIM: usize = 4096;
pub const MAX_GROUPS: usize = 1024;
pub const MAX_TIMESTEPS: usize = 100_000;
pub const MAX_EPOCHS: usize = 1_000_000;
pub const MAX_BATCH: usize = 8192;
pub const MAX_STEPS: usize = 1_000_000_000;
pub const MAX_GRAD_CLIP: f64 = 1e6;
pub const MAX_EVAL_IMAGES: usize = 1_000_000;
/// Samples scored at the end of training: the cap of `eval --samples`.
pub const MAX_SAMPLES: usize = 100_000;
/// √ᾱ_T below this makes x̂0 = (x − √(1−ᾱ)·ε)/√ᾱ overflow or turn to NaN in
/// f32 (and ᾱ_T itself underflows to 0 not far below it).
pub const MIN_SQRT_ALPHA_BAR: f64 = 1e-6;

struct Report(Vec<Problem>);

impl Report {
    fn bad(&mut self, field: &str, message: String) {
        self.0.push(Problem {
            field: field.into(),
            message,
        });
    }

    fn count(&mut self, field: &str, value: usize, lo: usize, hi: usize) -> bool {
        let ok = (lo..=hi).contains(&value);
        if !ok {
            self.bad(
                field,
                format!("{value} is outside the allowed range {lo}..={hi}"),
            );
        }
        ok
    }

    /// A list of counts: its length in `len`, each entry in `each`.
    fn counts(
        &mut self,
        field: &str,
        values: &[usize],
        len: (usize, usize),
        each: (usize, usize),
    ) -> bool {
        let mut ok = (len.0..=len.1).contains(&values.len());
        if !ok {
            let (lo, hi) = len;
            self.bad(
                field,
                format!(
                    "{values:?} has {} entries; it needs {}",
                    values.len(),
                    if lo == hi {
                        format!("{lo}")
                    } else {
                        format!("{lo} to {hi}")
                    }
                ),
            );
        }
        if let Some(v) = values.iter().find(|v| !(each.0..=each.1).contains(v)) {
            ok = false;
            self.bad(
                field,
                format!(
                    "entry {v} of {values:?} is outside the allowed range {}..={}",
                    each.0, each.1
                ),
            );
        }
        ok
    }

    /// A float in [lo, hi] (`open_lo`/`open_hi` exclude the ends); NaN and
    /// infinities are always out.
    fn float(&mut self, field: &str, value: f64, lo: f64, hi: f64, open: (bool, bool)) -> bool {
        let above = if open.0 { value > lo } else { value >= lo };
        let below = if open.1 { value < hi } else { value <= hi };
        let ok = value.is_finite() && above && below;
        if !ok {
            let range = format!(
                "{}{lo}, {hi}{}",
                if open.0 { "(" } else { "[" },
                if open.1 { ")" } else { "]" }
            );
            self.bad(
                field,
                format!("{value} is outside the allowed range {range}"),
            );
        }
        ok
    }
}

impl ExperimentConfig {
    /// Every problem with this config, memory included; empty when it can be
    /// trained on this machine.
    pub fn validate(&self) -> Vec<Problem> {
        self.validate_with_memory(available_memory())
    }

    /// `validate` against a given amount of free memory in bytes (None skips
    /// the memory check, e.g. where the platform does not report it).
    pub fn validate_with_memory(&self, available: Option<u64>) -> Vec<Problem> {
        let mut r = Report(Vec::new());
        let structural = self.check_fields(&mut r);
        if structural
            && r.0.is_empty()
            && let (Some(estimate), Some(available)) = (MemoryEstimate::of(self), available)
            && estimate.peak_bytes() > available
        {
            r.bad(estimate.field(), estimate.refusal(available));
        }
        r.0
    }

    /// Ranges and cross-field rules. Returns whether the model's shape is
    /// consistent enough to estimate its size.
    fn check_fields(&self, r: &mut Report) -> bool {
        let chars = self.name.chars().count();
        if chars == 0 || chars > MAX_NAME_CHARS || self.name.chars().any(char::is_control) {
            r.bad(
                "name",
                format!(
                    "{:?} must be 1 to {MAX_NAME_CHARS} printable characters",
                    truncate(&self.name, 40)
                ),
            );
        }
        let ae = &self.autoencoder;
        let mut shape_ok = r.counts(
            "autoencoder.channels",
            &ae.channels,
            (1, 2),
            (1, MAX_AE_CHANNELS),
        );
        // Fields sized by the channel list are checked against it only when
        // it has a legal length: a bad list is one problem, not three.
        let levels = ae.channels.len();
        let cabs_len = if (1..=2).contains(&levels) {
            (levels, levels)
        } else {
            (1, 2)
        };
        shape_ok &= r.counts(
            "autoencoder.cabs_per_level",
            &ae.cabs_per_level,
            cabs_len,
            (0, MAX_CABS),
        );
        let narrowest = ae.channels.iter().copied().filter(|&c| c > 0).min();
        shape_ok &= r.count(
            "autoencoder.attention_reduction",
            ae.attention_reduction,
            1,
            narrowest.unwrap_or(MAX_AE_CHANNELS),
        );
        shape_ok &= r.count("autoencoder.latent_dim", ae.latent_dim, 1, MAX_LATENT_DIM);
        let [lc, lh, lw] = ae.latent_shape;
        if r.counts(
            "autoencoder.latent_shape",
            &ae.latent_shape,
            (3, 3),
            (1, MAX_LATENT_SIDE),
        ) {
            let product = lc.checked_mul(lh).and_then(|p| p.checked_mul(lw));
            if product != Some(ae.latent_dim) {
                shape_ok = false;
                r.bad(
                    "autoencoder.latent_shape",
                    format!(
                        "{lc}×{lh}×{lw} = {} must equal latent_dim {}",
                        lc * lh * lw, // bounded by MAX_LATENT_SIDE³: no overflow
                        ae.latent_dim
                    ),
                );
            }
        } else {
            shape_ok = false;
        }

        let u = &self.unet;
        let levels = u.channels.len();
        shape_ok &= r.counts(
            "unet.channels",
            &u.channels,
            (1, MAX_UNET_LEVELS),
            (1, MAX_UNET_CHANNELS),
        );
        let n = levels.clamp(1, MAX_UNET_LEVELS);
        shape_ok &= r.counts("unet.down_blocks", &u.down_blocks, (n, n), (0, MAX_BLOCKS));
        shape_ok &= r.counts("unet.up_blocks", &u.up_blocks, (n, n), (0, MAX_BLOCKS));
        if u.attention.len() != n {
            shape_ok = false;
            r.bad(
                "unet.attention",
                format!(
                    "{:?} has {} entries; it needs one per level ({n})",
                    u.attention,
                    u.attention.len()
                ),
            );
        }
        if (1..=MAX_UNET_LEVELS).contains(&levels) && lh > 0 && lw > 0 {
            let factor = 1usize << (levels - 1);
            if lh % factor != 0 || lw % factor != 0 {
                shape_ok = false;
                r.bad(
                    "unet.channels",
                    format!(
                        "{levels} levels halve the latent {lh}×{lw} {} times; it must divide by {factor}",
                        levels - 1
                    ),
                );
            }
        }
        shape_ok &= r.count("unet.heads", u.heads, 1, MAX_HEADS);
        shape_ok &= r.count("unet.head_dim", u.head_dim, 1, MAX_HEAD_DIM);
        if !(4..=MAX_TIME_DIM).contains(&u.time_dim) || !u.time_dim.is_multiple_of(2) {
            shape_ok = false;
            r.bad(
                "unet.time_dim",
                format!(
                    "{} must be an even number in the allowed range 4..={MAX_TIME_DIM}",
                    u.time_dim
                ),
            );
        }
        if r.count("unet.groups", u.groups, 1, MAX_GROUPS) {
            for &c in u.channels.iter().filter(|&&c| c > 0) {
                let g = u.groups.min(c);
                if c % g != 0 {
                    shape_ok = false;
                    r.bad(
                        "unet.groups",
                        format!("{c} channels do not split into {g} groups"),
                    );
                }
            }
        } else {
            shape_ok = false;
        }

        self.check_diffusion(r);
        for (name, t) in [
            ("ae_training", &self.ae_training),
            ("diffusion_training", &self.diffusion_training),
        ] {
            shape_ok &= check_stage(r, name, t);
        }
        let c = &self.checkpoint;
        r.count("checkpoint.every_steps", c.every_steps, 0, MAX_STEPS);
        r.count("checkpoint.log_every", c.log_every, 1, 1_000_000);
        r.count("checkpoint.eval_images", c.eval_images, 0, MAX_EVAL_IMAGES);
        if c.final_samples == 1 {
            r.bad(
                "checkpoint.final_samples",
                "1: cFID fits a Gaussian to the samples and needs at least 2; use 0 to skip \
                 scoring samples"
                    .into(),
            );
        } else {
            r.count("checkpoint.final_samples", c.final_samples, 0, MAX_SAMPLES);
        }
        shape_ok
    }

    fn check_diffusion(&self, r: &mut Report) {
        let d = &self.diffusion;
        let steps_ok = r.count("diffusion.timesteps", d.timesteps, 2, MAX_TIMESTEPS);
        let start_ok = r.float("diffusion.beta_start", d.beta_start, 0.0, 1.0, (true, true));
        let end_ok = r.float("diffusion.beta_end", d.beta_end, 0.0, 1.0, (true, true));
        let mut betas_ok = start_ok && end_ok;
        if betas_ok && d.beta_start >= d.beta_end {
            betas_ok = false;
            r.bad(
                "diffusion.beta_start",
                format!("{} must be below beta_end ({})", d.beta_start, d.beta_end),
            );
        }
        if steps_ok && betas_ok {
            // ᾱ_T = ∏(1 − β_t), without building the whole schedule: the
            // window validates on every frame.
            let last: f64 = betas(d.schedule, d.timesteps, d.beta_start, d.beta_end)
                .iter()
                .map(|b| 1.0 - b)
                .product();
            let root = last.sqrt();
            // NaN fails both comparisons, so it is refused too.
            let usable = root >= MIN_SQRT_ALPHA_BAR && (root as f32) > 0.0;
            if !usable {
                r.bad(
                    "diffusion.beta_end",
                    format!(
                        "{} drives √ᾱ_T to {root:.1e} over {} timesteps; below \
                         {MIN_SQRT_ALPHA_BAR:.0e} the sampler divides by (nearly) zero in f32. \
                         Lower beta_end or the timesteps",
                        d.beta_end, d.timesteps
                    ),
                );
            }
        }
        r.float("diffusion.cond_drop", d.cond_drop, 0.0, 1.0, (true, false));
        r.float(
            "diffusion.min_snr_gamma",
            d.min_snr_gamma,
            0.0,
            1e3,
            (false, false),
        );
        if self.unet.classes != 0 && self.unet.classes != 10 {
            r.bad(
                "unet.classes",
                format!(
                    "{}: MNIST and Fashion-MNIST have 10 classes; use 10, or 0 for an \
                     unconditional model",
                    self.unet.classes
                ),
            );
        } else if self.unet.classes > 0 && d.cond_drop == 0.0 {
            r.bad(
                "diffusion.cond_drop",
                "0: with classes, some labels must be dropped to train the \"no class\" \
                 entry that unconditional samples and guidance use; try 0.1"
                    .into(),
            );
        }
        r.float(
            "sampling.guidance",
            self.sampling.guidance,
            0.0,
            100.0,
            (true, true),
        );
        r.float("diffusion.ema_decay", d.ema_decay, 0.0, 1.0, (false, true));
        let s = &self.sampling;
        r.count(
            "sampling.steps",
            s.steps,
            1,
            d.timesteps.clamp(1, MAX_TIMESTEPS),
        );
        if r.float("sampling.eta", s.eta, 0.0, 1.0, (false, false))
            && s.sampler == crate::config::SamplerKind::Dpmpp
            && s.eta != 0.0
        {
            r.bad(
                "sampling.eta",
                format!(
                    "{}: DPM-Solver++ is deterministic; set η to 0 (or use DDIM)",
                    s.eta
                ),
            );
        }
    }
}

fn check_stage(r: &mut Report, name: &str, t: &StageTraining) -> bool {
    let field = |f: &str| format!("{name}.{f}");
    r.count(&field("epochs"), t.epochs, 1, MAX_EPOCHS);
    let batch_ok = r.count(&field("batch_size"), t.batch_size, 1, MAX_BATCH);
    r.float(&field("lr"), t.lr, 0.0, 1.0, (true, true));
    r.count(&field("warmup_steps"), t.warmup_steps, 0, MAX_STEPS);
    r.float(
        &field("grad_clip"),
        t.grad_clip,
        0.0,
        MAX_GRAD_CLIP,
        (false, false),
    );
    r.count(&field("max_steps"), t.max_steps, 0, MAX_STEPS);
    batch_ok
}

fn truncate(s: &str, chars: usize) -> String {
    match s.char_indices().nth(chars) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}
