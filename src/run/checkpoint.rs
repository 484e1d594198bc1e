//! Checkpoints: the training state and the weights of a run, written whole
//! into `checkpoint.tmp/` and swapped in with renames, and read back so that
//! a reader never mixes two of them. `RunDir` is the handle on a run
//! directory that everything goes through (see the module above).

use std::fs::{self, File, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::module::Module;
use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot, SafetensorsStore};
use serde::{Deserialize, Serialize};

use super::rows::{self, Row};
use super::{
    AUTOENCODER, CHECKPOINT, CHECKPOINT_OLD, CHECKPOINT_TMP, CONFIG, LOCK, STATE, UNET, UNET_EMA,
};
use crate::config::ExperimentConfig;
use crate::train::Stage;
use crate::train::optim::FusedAdam;

pub const STATE_VERSION: u32 = 1;

/// Counters and scalars that, with the weights, let a run continue exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainState {
    pub version: u32,
    pub stage: Stage,
    /// Optimizer steps done in each stage.
    pub ae_step: usize,
    pub diffusion_step: usize,
    pub ae_done: bool,
    pub diffusion_done: bool,
    /// Multiply encoder latents by this before diffusion (1 when not standardised).
    pub latent_scale: f32,
    /// Largest |value| of the scaled training latents, when x̂0 is clipped.
    #[serde(default)]
    pub latent_bound: Option<f32>,
    pub backend: String,
    /// Loss sum and step count of the epoch in progress, so the epoch mean
    /// of a run resumed mid-epoch covers the whole epoch.
    #[serde(default)]
    pub epoch_loss: (f64, usize),
    /// What the run trains on (`Dataset::fingerprint`); resuming on other
    /// data would silently change every batch.
    #[serde(default)]
    pub data: Option<String>,
}

impl TrainState {
    pub fn fresh(backend: &str) -> Self {
        Self {
            version: STATE_VERSION,
            stage: Stage::Autoencoder,
            ae_step: 0,
            diffusion_step: 0,
            ae_done: false,
            diffusion_done: false,
            latent_scale: 1.0,
            latent_bound: None,
            backend: backend.into(),
            epoch_loss: (0.0, 0),
            data: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    /// The run's config.toml cannot be read as a valid config: bad input,
    /// not a failure (exit code 2 on the command line).
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
}

pub(super) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |e| CheckpointError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Write `bytes` to `path` via a temporary sibling and a rename, both
/// made durable (the file's data, then the directory entry).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    // A name of its own per writer: processes (sweep jobs) and threads may
    // write the same file at once, and each rename must move its own bytes.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let tmp = path.with_extension(format!(
        "{}.{}-{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or(""),
        std::process::id(),
        WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let written = (|| {
        let mut f = fs::File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(bytes).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))
    })();
    if let Err(e) = written {
        // A full disk or a file-size limit: leave no half-written file.
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, path).map_err(io_err(path))?;
    sync_parent(path)
}

/// Make a rename or a new entry in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<(), CheckpointError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

fn sync_parent(path: &Path) -> Result<(), CheckpointError> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir),
        _ => Ok(()),
    }
}

/// Fault injection for the crash tests: with `LATENTLAB_CRASH_AT=N` the
/// process aborts, as a kill would end it, at the N-th point of checkpoint
/// writing it reaches (after each file, each rename). Unset, it costs one
/// relaxed load per point.
fn crash_point() {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static AT: OnceLock<Option<u64>> = OnceLock::new();
    static REACHED: AtomicU64 = AtomicU64::new(0);
    let at = AT.get_or_init(|| std::env::var("LATENTLAB_CRASH_AT").ok()?.parse().ok());
    if let Some(at) = at
        && REACHED.fetch_add(1, Ordering::Relaxed) + 1 == *at
    {
        std::process::abort();
    }
}

/// What a checkpoint holds; the optimizers and diffusion parts are absent
/// when that stage has not started.
pub struct CheckpointParts<'a, A: Module, U: Module> {
    pub state: &'a TrainState,
    pub autoencoder: &'a A,
    pub ae_optim: Option<&'a FusedAdam>,
    pub unet: Option<&'a U>,
    pub unet_optim: Option<&'a FusedAdam>,
    pub unet_ema: Option<&'a U>,
}

#[derive(Debug, Clone)]
pub struct RunDir {
    root: PathBuf,
    /// Where the last complete checkpoint is read from: `checkpoint/`, or,
    /// for a reader that meets a save between its two renames, whichever
    /// of `checkpoint.tmp/` and `checkpoint.old/` is complete.
    read_from: PathBuf,
    /// A trainer's exclusive lock on `train.lock`; None for readers.
    _lock: Option<Arc<File>>,
}

/// Lock `root/train.lock` so that two trainers never write one run. The
/// lock belongs to the open file, so the OS releases it when the process
/// ends, however it ends: a crash leaves no stale lock behind.
pub(super) fn lock_for_training(root: &Path) -> Result<Arc<File>, CheckpointError> {
    let path = root.join(LOCK);
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err(&path))?;
    match file.try_lock() {
        Ok(()) => Ok(Arc::new(file)),
        Err(TryLockError::WouldBlock) => Err(CheckpointError::Invalid {
            path: root.to_path_buf(),
            message: "another latentlab process is training this run (it holds train.lock); \
                      wait for it to finish or stop it, or pass another --run-dir"
                .into(),
        }),
        Err(TryLockError::Error(e)) => Err(io_err(&path)(e)),
    }
}

fn already_a_run(root: &Path) -> CheckpointError {
    CheckpointError::Invalid {
        path: root.to_path_buf(),
        message: "already holds a run; continue it with `latentlab train --resume DIR` \
                  or pass another --run-dir"
            .into(),
    }
}

impl RunDir {
    /// Start a new run in `root` (created if needed). Refuses a directory
    /// that already holds a checkpoint: resume it or choose another.
    pub fn create(root: &Path, cfg: &ExperimentConfig) -> Result<Self, CheckpointError> {
        let mut run = Self::at(root);
        // Checked before locking, so a refused directory is left untouched,
        // and again under the lock, as another trainer may have started here.
        if run.holds_a_run() {
            return Err(already_a_run(root));
        }
        fs::create_dir_all(root).map_err(io_err(root))?;
        run._lock = Some(lock_for_training(root)?);
        if run.holds_a_run() {
            return Err(already_a_run(root));
        }
        write_atomic(&run.root.join(CONFIG), cfg.to_toml().as_bytes())?;
        Ok(run)
    }

    fn holds_a_run(&self) -> bool {
        self.checkpoint_dir().exists() || self.root.join(CONFIG).exists()
    }

    fn at(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            read_from: root.join(CHECKPOINT),
            _lock: None,
        }
    }

    /// Open an existing run to read it (sample, eval, the window): its
    /// config and the state of its last checkpoint (None when it has none
    /// yet). Never renames anything, so it is safe while a trainer saves.
    pub fn open(
        root: &Path,
    ) -> Result<(Self, ExperimentConfig, Option<TrainState>), CheckpointError> {
        let mut run = Self::at(root);
        let cfg = run.read_config()?;
        let mut attempt = 0;
        loop {
            let (cur, tmp, old) = run.swap_paths();
            run.read_from = [cur.clone(), tmp.clone(), old.clone()]
                .into_iter()
                .find(|d| d.join(STATE).exists())
                .unwrap_or_else(|| cur.clone());
            // A save can rename the directory chosen here while its state
            // is read (checkpoint/ and checkpoint.tmp/ are renamed, and
            // checkpoint.old/ removed, in turn): choose again. A damaged
            // checkpoint costs ten short retries before its error.
            let state = run.read_state();
            let vanished = run.read_from != cur && !run.read_from.join(STATE).exists();
            // "No checkpoint yet" while a save's directories are about.
            let mid_save = matches!(state, Ok(None)) && (tmp.exists() || old.exists());
            let retry = vanished || mid_save || state.is_err();
            if !retry || attempt == 10 {
                return Ok((run, cfg, state?));
            }
            attempt += 1;
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Open a run to continue training it: finishes a save that was
    /// interrupted between its renames first. Only the trainer calls this.
    pub fn open_for_training(
        root: &Path,
    ) -> Result<(Self, ExperimentConfig, Option<TrainState>), CheckpointError> {
        let mut run = Self::at(root);
        let cfg = run.read_config()?;
        run._lock = Some(lock_for_training(root)?);
        run.recover_interrupted_swap()?;
        let state = run.read_state()?;
        Ok((run, cfg, state))
    }

    fn read_config(&self) -> Result<ExperimentConfig, CheckpointError> {
        let cfg_path = self.root.join(CONFIG);
        if !cfg_path.exists() {
            return Err(CheckpointError::Invalid {
                path: self.root.clone(),
                message: "is not a latentlab run directory (no config.toml); pass the --run-dir \
                          that `latentlab train` wrote"
                    .into(),
            });
        }
        let invalid = |message: String| CheckpointError::Config {
            path: cfg_path.clone(),
            message,
        };
        let cfg = ExperimentConfig::from_file(&cfg_path).map_err(|e| invalid(e.to_string()))?;
        let problems = cfg.validate();
        if !problems.is_empty() {
            let lines: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
            return Err(invalid(format!(
                "was edited into an invalid config:\n{}",
                lines.join("\n")
            )));
        }
        Ok(cfg)
    }

    /// The state of the checkpoint this reader looks at, read again: a
    /// reader compares it with what `open` returned to know that no save
    /// replaced the checkpoint meanwhile.
    pub fn read_state(&self) -> Result<Option<TrainState>, CheckpointError> {
        let state_path = self.read_from.join(STATE);
        if !state_path.exists() {
            if self.read_from.exists() {
                return Err(CheckpointError::Invalid {
                    path: self.read_from.clone(),
                    message: "holds no state.json, so it is not a complete checkpoint; restore \
                              it from a backup or start a new run"
                        .into(),
                });
            }
            return Ok(None);
        }
        let text = fs::read_to_string(&state_path).map_err(io_err(&state_path))?;
        let state: TrainState =
            serde_json::from_str(&text).map_err(|e| CheckpointError::Invalid {
                path: state_path.clone(),
                message: format!("unreadable checkpoint state ({e})"),
            })?;
        if state.version != STATE_VERSION {
            return Err(CheckpointError::Invalid {
                path: state_path,
                message: format!(
                    "checkpoint format {} is not supported by this latentlab (expects {STATE_VERSION})",
                    state.version
                ),
            });
        }
        Ok(Some(state))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Keep a picture of the run's history as `media/<name>` (PNG bytes).
    pub fn keep_media(&self, name: &str, png: &[u8]) -> Result<(), CheckpointError> {
        let dir = self.root.join(super::MEDIA);
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        write_atomic(&dir.join(name), png)
    }

    /// Keep an evaluation's results as `evals/<name>` in the run `root`
    /// (written atomically, replacing the same evaluation run again).
    pub fn keep_eval(
        root: &Path,
        name: &str,
        results: &serde_json::Value,
    ) -> Result<PathBuf, CheckpointError> {
        let dir = root.join(super::EVALS);
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let path = dir.join(name);
        let text = serde_json::to_string_pretty(results).expect("JSON values serialise");
        write_atomic(&path, text.as_bytes())?;
        Ok(path)
    }

    /// Whether the run in `root` has a U-Net checkpoint to sample from.
    pub fn has_unet(root: &Path) -> bool {
        Self::at(root).has_module(UNET)
    }

    /// Whether the checkpoint holds weights named `name` (`UNET_EMA`, …).
    pub fn has_module(&self, name: &str) -> bool {
        self.path(&format!("{name}.bpk")).exists()
    }

    pub fn checkpoint_dir(&self) -> PathBuf {
        self.root.join(CHECKPOINT)
    }

    /// A file of the last complete checkpoint.
    pub fn path(&self, file: &str) -> PathBuf {
        self.read_from.join(file)
    }

    /// A save interrupted between its renames leaves no `checkpoint/` but a
    /// finished `checkpoint.tmp/` (preferred: it is newer) or the previous
    /// `checkpoint.old/`; put the complete one back in place.
    fn recover_interrupted_swap(&self) -> Result<(), CheckpointError> {
        let (cur, tmp, old) = self.swap_paths();
        if cur.exists() {
            return Ok(());
        }
        if let Some(from) = [tmp, old].iter().find(|d| d.join(STATE).exists()) {
            fs::rename(from, &cur).map_err(io_err(&cur))?;
        }
        Ok(())
    }

    fn swap_paths(&self) -> (PathBuf, PathBuf, PathBuf) {
        (
            self.checkpoint_dir(),
            self.root.join(CHECKPOINT_TMP),
            self.root.join(CHECKPOINT_OLD),
        )
    }

    pub fn save<A: Module, U: Module>(
        &self,
        parts: CheckpointParts<'_, A, U>,
    ) -> Result<PathBuf, CheckpointError> {
        let (cur, tmp, old) = self.swap_paths();
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
        }
        fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
        crash_point();
        save_module(parts.autoencoder, &tmp, AUTOENCODER)?;
        crash_point();
        if let Some(opt) = parts.ae_optim {
            opt.save(&tmp.join(format!("{AUTOENCODER}.adam")))?;
            crash_point();
        }
        if let Some(unet) = parts.unet {
            save_module(unet, &tmp, UNET)?;
            crash_point();
        }
        if let Some(opt) = parts.unet_optim {
            opt.save(&tmp.join(format!("{UNET}.adam")))?;
            crash_point();
        }
        if let Some(ema) = parts.unet_ema {
            save_module(ema, &tmp, UNET_EMA)?;
            crash_point();
        }
        // Every file's data reaches the disk before state.json names the
        // directory complete: a power cut cannot leave a complete-looking
        // checkpoint with empty weights.
        sync_files_in(&tmp)?;
        let state = serde_json::to_string_pretty(parts.state).expect("state serialises");
        write_atomic(&tmp.join(STATE), state.as_bytes())?;
        crash_point();
        if old.exists() {
            fs::remove_dir_all(&old).map_err(io_err(&old))?;
            crash_point();
        }
        if cur.exists() {
            fs::rename(&cur, &old).map_err(io_err(&cur))?;
            crash_point();
        }
        fs::rename(&tmp, &cur).map_err(io_err(&cur))?;
        sync_dir(&self.root)?;
        crash_point();
        if old.exists() {
            fs::remove_dir_all(&old).map_err(io_err(&old))?;
            crash_point();
        }
        Ok(cur)
    }

    /// Load `name.bpk` from the checkpoint into `module` (built from the
    /// run's config), with a clear error on a missing, truncated or
    /// mismatched file.
    pub fn load_module<M: Module>(&self, module: M, name: &str) -> Result<M, CheckpointError> {
        let path = self.path(&format!("{name}.bpk"));
        if !path.exists() {
            return Err(CheckpointError::Invalid {
                path,
                message: format!("the checkpoint has no {name} weights (was that stage trained?)"),
            });
        }
        load_into(module, &path).map_err(|e| CheckpointError::Invalid {
            path,
            message: format!(
                "cannot load these weights ({e}); the file is damaged or was written for a \
                 different model configuration than config.toml describes"
            ),
        })
    }

    /// Restore `optim`'s state from `name.adam` for a model of `params` parameters.
    pub fn load_optim(
        &self,
        optim: &mut FusedAdam,
        name: &str,
        params: usize,
        device: &burn::tensor::Device,
    ) -> Result<(), CheckpointError> {
        optim.load(&self.path(&format!("{name}.adam")), params, device)
    }

    /// Append rows to their log.
    pub fn append<R: Row>(&self, new: &[R]) -> Result<(), CheckpointError> {
        if new.is_empty() {
            return Ok(());
        }
        let path = self.root.join(R::FILE);
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        f.write_all(rows::to_lines(new).as_bytes())
            .map_err(io_err(&path))
    }

    /// Drop the rows of `R`'s log written after the checkpoint a resumed
    /// run starts from (all of them when it has none), so the log shows one
    /// continuous curve.
    pub fn truncate<R: Row>(&self, state: Option<&TrainState>) -> Result<(), CheckpointError> {
        let path = self.root.join(R::FILE);
        if !path.exists() {
            return Ok(());
        }
        let text = fs::read_to_string(&path).map_err(io_err(&path))?;
        let kept: Vec<R> = rows::parse_lines::<R>(&text)
            .into_iter()
            .filter(|row| {
                state.is_some_and(|s| {
                    let limit = match row.stage() {
                        Stage::Autoencoder => s.ae_step,
                        Stage::Diffusion => s.diffusion_step,
                    };
                    row.step() <= limit
                })
            })
            .collect();
        write_atomic(&path, rows::to_lines(&kept).as_bytes())
    }
}

/// Load a burnpack file into `module`, reading it whole first. Burn's own
/// `try_load_file` reads tensor data lazily from the file, so a module
/// loaded from a checkpoint that a trainer later replaces would fail (panic)
/// on first use.
pub fn load_into<M: Module>(module: M, path: &Path) -> Result<M, String> {
    let bytes = fs::read(path).map_err(|e| e.to_string())?;
    let record = burn::store::ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
        .map_err(|e| e.to_string())?;
    module.try_load_record(record).map_err(|e| e.to_string())
}

fn sync_files_in(dir: &Path) -> Result<(), CheckpointError> {
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let path = entry.map_err(io_err(dir))?.path();
        fs::File::open(&path)
            .and_then(|f| f.sync_all())
            .map_err(io_err(&path))?;
    }
    sync_dir(dir)
}

fn save_module<M: Module>(module: &M, dir: &Path, name: &str) -> Result<(), CheckpointError> {
    let bpk = dir.join(format!("{name}.bpk"));
    module
        .clone()
        .save_file(&bpk)
        .map_err(|e| CheckpointError::Io {
            path: bpk.clone(),
            message: e.to_string(),
        })?;
    let st = dir.join(format!("{name}.safetensors"));
    let mut store = SafetensorsStore::from_file(&st)
        .with_to_adapter(BurnToPyTorchAdapter)
        .metadata("format", "pt")
        .overwrite(true);
    module
        .save_into(&mut store)
        .map_err(|e| CheckpointError::Io {
            path: st.clone(),
            message: e.to_string(),
        })?;
    // burn-store creates safetensors owner-only (0600); these are exports
    // meant to be shared like the other run files.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&st, fs::Permissions::from_mode(0o644)).map_err(io_err(&st))?;
    }
    Ok(())
}
