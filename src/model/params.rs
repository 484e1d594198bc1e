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
/// and lazily, on a parameter's first use. Every model latentlab builds is
/// therefore created under one lock and materialised before the lock is
/// released (`materialized`), and a seeded build (`seeded`) seeds the
/// generator inside that lock: the weights depend on the seed alone, never
/// on what other threads (a sampling job, a test) do at the same time.
static INIT_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

thread_local! {
    /// Whether this thread holds INIT_LOCK (builds nest: a seeded build
    /// calls constructors that take the lock themselves).
    static HOLDING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn with_init_lock<T>(f: impl FnOnce() -> T) -> T {
    if HOLDING.with(|h| h.get()) {
        return f();
    }
    let _guard = INIT_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    HOLDING.with(|h| h.set(true));
    struct Release;
    impl Drop for Release {
        fn drop(&mut self) {
            HOLDING.with(|h| h.set(false));
        }
    }
    let _release = Release;
    f()
}

/// Build a module under the init lock with every parameter initialised.
pub fn materialized<M: Module>(build: impl FnOnce() -> M) -> M {
    struct Touch;
    impl ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    with_init_lock(|| {
        let module = build();
        module.visit(&mut Touch);
        module
    })
}

/// Build a module with the generator seeded to `seed` first.
pub fn seeded<M: Module>(device: &Device, seed: u64, build: impl FnOnce() -> M) -> M {
    with_init_lock(|| {
        device.seed(seed);
        materialized(build)
    })
}
