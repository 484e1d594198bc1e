//! Whole-module parameter helpers: an exponential moving average of the
//! weights (sampled from when enabled), kept as a plain module on the inner,
//! non-autodiff device so it can be saved and loaded like any model.

use burn::module::{ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;

/// Every float parameter of a module, flattened and detached from autodiff,
/// in visiting order.
pub fn flat_params<M: Module>(module: &M) -> Vec<Tensor<1>> {
    struct Collect(Vec<Tensor<1>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let value = param.val().inner();
            let n = value.shape().num_elements();
            self.0.push(value.reshape([n]));
        }
    }
    let mut c = Collect(Vec::new());
    module.visit(&mut c);
    c.0
}

/// Blend `source`'s parameters into `ema`: ema ← decay·ema + (1−decay)·source.
/// Both modules must have the same structure (the EMA is a copy of the model).
pub fn ema_update<M: Module>(ema: M, source: &M, decay: f64) -> M {
    struct Blend {
        source: std::vec::IntoIter<Tensor<1>>,
        decay: f64,
    }
    impl ModuleMapper for Blend {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let fresh = self.source.next().expect("EMA copy has the model's structure");
            let decay = self.decay;
            param.map(|old| {
                let shape = old.shape();
                old.mul_scalar(decay) + fresh.reshape(shape).mul_scalar(1.0 - decay)
            })
        }
    }
    ema.map(&mut Blend {
        source: flat_params(source).into_iter(),
        decay,
    })
}

/// Global L2 norm of a set of tensors, as a one-element tensor (no host sync).
pub fn global_norm(tensors: &[Tensor<1>]) -> Option<Tensor<1>> {
    tensors
        .iter()
        .map(|t| t.clone().powi_scalar(2).sum())
        .reduce(|a, b| a + b)
        .map(|s| s.sqrt())
}

/// Burn draws initial weights from the backend's process-wide generator,
/// and lazily, on a parameter's first use. Build a model under a lock,
/// seeded, and touch every parameter before releasing it, so the weights
/// depend on the seed alone — not on other threads or on call order.
pub fn seeded<M: Module>(device: &Device, seed: u64, build: impl FnOnce() -> M) -> M {
    static INIT_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = INIT_LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    struct Touch;
    impl ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    device.seed(seed);
    let module = build();
    module.visit(&mut Touch);
    module
}
