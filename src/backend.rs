//! Backend and device selection: which Burn backends this build has, and
//! which device a run uses. With `src/model/fused/` (each backend's kernels)
//! it is the only code that names backends; everything else takes a
//! `burn::tensor::Device`.

use burn::tensor::Device;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// burn-flex: pure-Rust CPU, no setup.
    Flex,
    /// burn-tch: libtorch on the CPU or CUDA.
    Tch,
}

impl BackendKind {
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Flex => "flex",
            BackendKind::Tch => "tch",
        }
    }

    pub fn parse(s: &str) -> Result<Self, BackendError> {
        match s {
            "flex" => Ok(Self::Flex),
            "tch" => Ok(Self::Tch),
            other => Err(BackendError::Unknown(other.into(), available_names())),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("unknown backend '{0}'; this build has: {1}")]
    Unknown(String, String),
    #[error(
        "backend '{0}' is not compiled into this build (it has: {1}); rebuild with `--features {0}`"
    )]
    NotCompiled(String, String),
    #[error("device '{0}' is not valid here: {1}")]
    BadDevice(String, String),
}

/// Backends compiled into this binary, best first.
pub fn available() -> Vec<BackendKind> {
    [
        #[cfg(feature = "tch")]
        BackendKind::Tch,
        #[cfg(feature = "flex")]
        BackendKind::Flex,
    ]
    .to_vec()
}

pub fn available_names() -> String {
    available()
        .iter()
        .map(|b| b.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The backend used when none is named: flex when present (no setup, degrades
/// gracefully when the cores are shared), else libtorch.
pub fn default_backend() -> BackendKind {
    if cfg!(feature = "flex") {
        BackendKind::Flex
    } else {
        BackendKind::Tch
    }
}

/// Whether libtorch sees a CUDA device (false without the tch feature).
pub fn cuda_available() -> bool {
    #[cfg(feature = "tch")]
    {
        tch_cuda_device_count() > 0
    }
    #[cfg(not(feature = "tch"))]
    {
        false
    }
}

#[cfg(feature = "tch")]
fn tch_cuda_device_count() -> i32 {
    // SAFETY: a plain query into libtorch with no arguments.
    unsafe { torch_sys::cuda::atc_cuda_device_count() }
}

/// Resolve `--backend` and `--device` into a Burn device (without autodiff).
/// Devices: `auto`, `cpu`, `cuda` or `cuda:N` (CUDA only with tch).
pub fn select(backend: BackendKind, device: &str) -> Result<Device, BackendError> {
    if !available().contains(&backend) {
        return Err(BackendError::NotCompiled(
            backend.name().into(),
            available_names(),
        ));
    }
    let bad = |why: &str| BackendError::BadDevice(device.into(), why.into());
    let cuda_index = match device {
        "auto" | "cpu" => None,
        "cuda" => Some(0usize),
        d => match d.strip_prefix("cuda:") {
            Some(i) => Some(
                i.parse::<usize>()
                    .map_err(|_| bad("expected cuda:N with N a GPU index, e.g. cuda:0"))?,
            ),
            None => return Err(bad("expected auto, cpu, cuda or cuda:N")),
        },
    };
    match backend {
        BackendKind::Flex => {
            if cuda_index.is_some() {
                return Err(bad(
                    "the flex backend runs on the CPU only; use --backend tch for CUDA",
                ));
            }
            flex_device()
        }
        BackendKind::Tch => tch_device(device, cuda_index),
    }
}

#[cfg(feature = "flex")]
fn flex_device() -> Result<Device, BackendError> {
    Ok(Device::flex())
}
#[cfg(not(feature = "flex"))]
fn flex_device() -> Result<Device, BackendError> {
    Err(BackendError::NotCompiled("flex".into(), available_names()))
}

// burn-tch is marked deprecated upstream in favour of CubeCL backends, which
// cannot build offline; it stays our GPU path until they can.
#[cfg(feature = "tch")]
#[allow(deprecated)]
fn tch_device(device: &str, cuda_index: Option<usize>) -> Result<Device, BackendError> {
    let count = tch_cuda_device_count().max(0) as usize;
    match (device, cuda_index) {
        ("auto", _) if count > 0 => Ok(Device::libtorch_cuda(0usize)),
        (_, None) => Ok(Device::libtorch()),
        (_, Some(i)) if i < count => Ok(Device::libtorch_cuda(i)),
        (_, Some(i)) => Err(BackendError::BadDevice(
            device.into(),
            format!(
                "libtorch sees {count} CUDA device(s), so index {i} does not exist{}",
                if count == 0 {
                    " (is this a CUDA build of libtorch, and is the NVIDIA driver loaded?)"
                } else {
                    ""
                }
            ),
        )),
    }
}
#[cfg(not(feature = "tch"))]
fn tch_device(_device: &str, _cuda: Option<usize>) -> Result<Device, BackendError> {
    Err(BackendError::NotCompiled("tch".into(), available_names()))
}

/// Training threads when a window shares the machine: `requested`, or for 0
/// every core but one, so that the window always has a core to draw on.
/// (libtorch's pool collapses when its threads share cores with other busy
/// threads, and a software-rendered window is one.)
pub fn threads_beside_window(requested: usize) -> usize {
    if requested != 0 {
        return requested;
    }
    std::thread::available_parallelism()
        .map(|n| n.get().saturating_sub(1).max(1))
        .unwrap_or(1)
}

/// The CPUs training threads are pinned to, once a window reserved one.
static TRAINING_CPUS: std::sync::OnceLock<Vec<usize>> = std::sync::OnceLock::new();

/// With a window open: pin the calling (UI) thread to the first CPU this
/// process may use and keep the others for training threads, which pin
/// themselves as they start (`pin_training_thread`). Without it the
/// scheduler puts the window's frequent wake-ups — and the threads it
/// spawns — on whichever core is free that instant, often a training one.
/// Linux only; a no-op with fewer than two CPUs.
pub fn reserve_cpu_for_window() {
    #[cfg(target_os = "linux")]
    {
        let allowed = affinity::current();
        if let Some((&ui, rest)) = allowed.split_first()
            && !rest.is_empty()
            && affinity::set(&[ui])
        {
            let _ = TRAINING_CPUS.set(rest.to_vec());
        }
    }
}

/// The CPUs the calling thread may run on (Linux; empty elsewhere).
pub fn allowed_cpus() -> Vec<usize> {
    #[cfg(target_os = "linux")]
    return affinity::current();
    #[cfg(not(target_os = "linux"))]
    Vec::new()
}

/// Pin the calling thread to the training CPUs, if a window reserved one.
pub fn pin_training_thread() {
    #[cfg(target_os = "linux")]
    if let Some(cpus) = TRAINING_CPUS.get() {
        affinity::set(cpus);
    }
}

#[cfg(target_os = "linux")]
mod affinity {
    /// The CPUs the calling thread may run on.
    pub fn current() -> Vec<usize> {
        // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it for this thread.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
                return Vec::new();
            }
            (0..libc::CPU_SETSIZE as usize)
                .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
                .collect()
        }
    }

    /// Restrict the calling thread to `cpus`; false if the OS refused.
    pub fn set(cpus: &[usize]) -> bool {
        // SAFETY: as above; sched_setaffinity(0, …) affects only this thread.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            for &cpu in cpus {
                libc::CPU_SET(cpu, &mut set);
            }
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
        }
    }
}

/// Run `f` on a thread of a rayon pool of its own, as many threads as the
/// global pool (for libtorch, right here). flex splits every operation with
/// rayon; called from outside a pool, each split is handed to a pool thread
/// while the caller sleeps, two context switches per operation: 15% of a
/// sampling step on one thread. From a pool thread the splits stay on its
/// own queue. A pool per call, not the global one: a global-pool thread
/// waiting for a split can pick up another whole job (a second run in the
/// same process, as in the tests) and finish it first.
pub fn on_compute_pool<R: Send>(backend: BackendKind, f: impl FnOnce() -> R + Send) -> R {
    if backend == BackendKind::Tch {
        return f();
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(rayon::current_num_threads())
        .thread_name(|i| format!("latentlab-compute-{i}"))
        .start_handler(|_| pin_training_thread())
        .build();
    match pool {
        Ok(pool) => pool.install(f),
        // Out of threads: the caller's thread still works, only slower.
        Err(_) => f(),
    }
}

/// `on_compute_pool` for a backend given by name; an unknown name runs in
/// place (whoever uses the name reports it).
pub fn on_compute_pool_named<R: Send>(backend: &str, f: impl FnOnce() -> R + Send) -> R {
    match BackendKind::parse(backend) {
        Ok(kind) => on_compute_pool(kind, f),
        Err(_) => f(),
    }
}

/// Set the CPU thread count of the chosen backend (0 = leave the default).
/// flex uses rayon's global pool, which can only be sized before first use.
pub fn set_threads(backend: BackendKind, threads: usize) {
    if threads == 0 {
        return;
    }
    match backend {
        BackendKind::Flex => {
            // Ignored if the pool already exists; callers set this at start-up.
            let _ = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .start_handler(|_| pin_training_thread())
                .build_global();
        }
        BackendKind::Tch => {
            #[cfg(feature = "tch")]
            // SAFETY: sets libtorch's intra-op thread count; no pointers involved.
            unsafe {
                torch_sys::at_set_num_threads(threads as i32)
            };
        }
    }
}

/// Keep freed tensor buffers in the heap instead of returning them to the
/// kernel. Training allocates and frees the same few-hundred-kilobyte
/// buffers every step; with glibc's defaults each one is a fresh mmap, and
/// page faults took ~14% of a libtorch training step here. Raising the mmap
/// and trim thresholds made autoencoder training ~40% faster on tch (PyTorch
/// itself gains as much from the same MALLOC_* settings). Call once at start.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc's allocation thresholds.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}

/// A one-line description for logs and the UI, e.g. "flex (CPU)".
pub fn describe(backend: BackendKind, device: &Device) -> String {
    format!("{} ({:?})", backend.name(), device)
}
