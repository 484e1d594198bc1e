//! Whole-module parameter helpers: flattened values and seeded creation.

use burn::module::{ModuleVisitor, Param};
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
