//! Adam over all of a model's parameters at once.
//!
//! Burn's optimizer updates each parameter tensor on its own: a dozen small
//! ops per tensor, which dominates a step for models of this size (the seed
//! U-Net has 136 tensors). Here the gradients are concatenated into one
//! vector, Adam runs as a handful of ops on it, and the result is split back
//! into the parameters. The maths is PyTorch's Adam (ε outside the square
//! root, bias-corrected), with optional clipping of the global gradient norm
//! (PyTorch's `clip_grad_norm_`). The flat vector of new weights is handed
//! back too, so an EMA of them costs two ops.

use std::path::Path;

use burn::module::{ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::Gradients;

use crate::diffusion::sampler::to_vec;
use crate::run::checkpoint::{CheckpointError, write_atomic};

const MAGIC: &[u8; 8] = b"LLADAM01";

pub struct FusedAdam {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Global gradient-norm limit; 0 disables clipping.
    pub clip: f64,
    m: Option<Tensor<1>>,
    v: Option<Tensor<1>>,
    steps: u64,
}

/// Flattened values (and gradients, when given) of every float parameter.
struct Gather<'a> {
    grads: Option<&'a Gradients>,
    values: Vec<Tensor<1>>,
    grad_values: Vec<Tensor<1>>,
}

impl ModuleVisitor for Gather<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        let n = value.shape().num_elements();
        if let Some(grads) = self.grads {
            let g = value
                .grad(grads)
                .map(|g| g.reshape([n]))
                .unwrap_or_else(|| Tensor::zeros([n], &value.device().inner()));
            self.grad_values.push(g);
        }
        self.values.push(value.inner().reshape([n]));
    }
}

/// Write slices of a flat vector back into the parameters, in visiting order.
struct Scatter {
    flat: Tensor<1>,
    offset: usize,
}

impl ModuleMapper for Scatter {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let offset = &mut self.offset;
        let flat = &self.flat;
        param.map(|old| {
            let shape = old.shape();
            let n = shape.num_elements();
            let fresh = flat.clone().narrow(0, *offset, n).reshape(shape);
            *offset += n;
            if old.is_autodiff() {
                let lifted = Tensor::from_inner(fresh);
                if old.is_require_grad() {
                    lifted.require_grad()
                } else {
                    lifted
                }
            } else {
                fresh
            }
        })
    }
}

/// All parameters of `module` as one flat vector on the plain device.
pub fn flatten<M: Module>(module: &M) -> Tensor<1> {
    let mut g = Gather {
        grads: None,
        values: Vec::new(),
        grad_values: Vec::new(),
    };
    module.visit(&mut g);
    Tensor::cat(g.values, 0)
}

/// `module` with its parameters replaced by the slices of `flat`.
pub fn unflatten<M: Module>(module: M, flat: Tensor<1>) -> M {
    module.map(&mut Scatter { flat, offset: 0 })
}

impl FusedAdam {
    pub fn new(clip: f64) -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            clip,
            m: None,
            v: None,
            steps: 0,
        }
    }

    /// One Adam step; returns the updated module and its flat weights.
    pub fn step<M: Module>(&mut self, lr: f64, module: M, grads: &Gradients) -> (M, Tensor<1>) {
        let mut gather = Gather {
            grads: Some(grads),
            values: Vec::new(),
            grad_values: Vec::new(),
        };
        module.visit(&mut gather);
        let params = Tensor::cat(gather.values, 0);
        let mut g = Tensor::cat(gather.grad_values, 0);
        if self.clip > 0.0 {
            // min(1, clip / ‖g‖) without reading the norm back to the host.
            let norm = g.clone().powi_scalar(2).sum().sqrt();
            let scale = norm
                .add_scalar(1e-6)
                .recip()
                .mul_scalar(self.clip)
                .clamp_max(1.0);
            g = g * scale;
        }
        let m = match self.m.take() {
            Some(m) => m.mul_scalar(self.beta1) + g.clone().mul_scalar(1.0 - self.beta1),
            None => g.clone().mul_scalar(1.0 - self.beta1),
        };
        let g2 = g.powi_scalar(2);
        let v = match self.v.take() {
            Some(v) => v.mul_scalar(self.beta2) + g2.mul_scalar(1.0 - self.beta2),
            None => g2.mul_scalar(1.0 - self.beta2),
        };
        self.steps += 1;
        let bc1 = 1.0 - self.beta1.powi(self.steps as i32);
        let bc2 = 1.0 - self.beta2.powi(self.steps as i32);
        let denom = v.clone().div_scalar(bc2).sqrt().add_scalar(self.eps);
        let updated = params - (m.clone() / denom).mul_scalar(lr / bc1);
        self.m = Some(m);
        self.v = Some(v);
        (unflatten(module, updated.clone()), updated)
    }

    /// Save the moments and step count: magic, steps, length, m, v (LE).
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        let (m, v) = match (&self.m, &self.v) {
            (Some(m), Some(v)) => (to_vec(m.clone()), to_vec(v.clone())),
            _ => (Vec::new(), Vec::new()),
        };
        let mut bytes = Vec::with_capacity(24 + 8 * m.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&self.steps.to_le_bytes());
        bytes.extend_from_slice(&(m.len() as u64).to_le_bytes());
        for x in m.iter().chain(&v) {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
        write_atomic(path, &bytes)
    }

    /// Load state saved by `save` for a model with `params` parameters.
    pub fn load(
        &mut self,
        path: &Path,
        params: usize,
        device: &Device,
    ) -> Result<(), CheckpointError> {
        let bad = |message: String| CheckpointError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let bytes = std::fs::read(path)
            .map_err(|e| bad(format!("cannot read the optimizer state ({e})")))?;
        if bytes.len() < 24 || &bytes[..8] != MAGIC {
            return Err(bad(
                "is not a latentlab optimizer state; the checkpoint is damaged".into(),
            ));
        }
        let word = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
        let (steps, len) = (word(8), word(16) as usize);
        if len != 0 && len != params {
            return Err(bad(format!(
                "holds state for {len} parameters but the model has {params}; it belongs to another configuration"
            )));
        }
        if bytes.len() != 24 + 8 * len {
            return Err(bad(format!(
                "is truncated: {} bytes where {} were expected",
                bytes.len(),
                24 + 8 * len
            )));
        }
        let floats: Vec<f32> = bytes[24..]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        let upload = |v: &[f32]| Tensor::<1>::from_data(TensorData::new(v.to_vec(), [len]), device);
        self.steps = steps;
        (self.m, self.v) = if len == 0 {
            (None, None)
        } else {
            (Some(upload(&floats[..len])), Some(upload(&floats[len..])))
        };
        Ok(())
    }
}
