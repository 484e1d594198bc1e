//! The run directory: config, checkpoints and logs of one experiment. This
//! module owns it: its file names, its rows, how runs are found and named;
//! the CLI, the trainer and the window all go through it.
//!
//! ```text
//! RUN/config.toml          the experiment, as trained
//! RUN/losses.jsonl         one line per step: {"stage","step","loss"}
//! RUN/epochs.jsonl         one line per epoch with mean loss and metrics
//! RUN/checkpoint/          the last complete checkpoint:
//!     state.json               counters, latent scale, backend
//!     autoencoder.bpk/.safetensors, autoencoder.adam
//!     unet.bpk/.safetensors, unet.adam, unet_ema.bpk/.safetensors
//! RUN/media/               per-epoch reconstruction and sample grids (PNG)
//! RUN/eval.json            scores computed when training ended
//! RUN/evals/               results of `latentlab eval`
//! RUN/status.json          running/finished/stopped/failed and a heartbeat
//! RUN/note.txt             a person's note about the run
//! RUN/train.lock           held by the process training the run
//! ```
//!
//! A checkpoint is written whole into `checkpoint.tmp/` and then swapped in
//! with renames, so a crash mid-save leaves the previous one intact. The
//! `.bpk` files (burnpack) are what latentlab loads; the `.adam` files hold
//! the optimizer's moments; the `.safetensors` files carry PyTorch-style names and layouts
//! for use outside latentlab.

pub mod checkpoint;
pub mod listing;
pub mod manage;
pub mod rows;
pub mod scores;
pub mod status;
pub mod summary;
pub mod sweep;

pub use checkpoint::{CheckpointError, CheckpointParts, RunDir, TrainState, write_atomic};
pub use listing::{fresh_run_dir, list_runs, utc_stamp};
pub use rows::{EpochRow, LossRow};
pub use scores::{FinalScores, METRICS};
pub use summary::{Media, MediaKind, RunSummary};

/// The experiment as trained.
pub const CONFIG: &str = "config.toml";
/// One row per logged step (`LossRow`).
pub const LOSSES: &str = "losses.jsonl";
/// One row per epoch (`EpochRow`).
pub const EPOCHS: &str = "epochs.jsonl";
/// The last complete checkpoint, and the two names a save passes through.
pub const CHECKPOINT: &str = "checkpoint";
pub const CHECKPOINT_TMP: &str = "checkpoint.tmp";
pub const CHECKPOINT_OLD: &str = "checkpoint.old";
/// Inside a checkpoint: counters and scalars; written last.
pub const STATE: &str = "state.json";
/// The run's state and heartbeat (`status::RunStatus`).
pub const STATUS: &str = "status.json";
/// Held by the process training the run.
pub const LOCK: &str = "train.lock";
/// The weights in a checkpoint, each as `<name>.bpk` (what latentlab loads)
/// and `<name>.safetensors` (PyTorch names, for use elsewhere), with the
/// optimiser's moments in `<name>.adam` for the two trained models.
pub const AUTOENCODER: &str = "autoencoder";
pub const UNET: &str = "unet";
pub const UNET_EMA: &str = "unet_ema";
/// Small per-epoch pictures for a run's history: `recon-epoch-NNN.png`
/// (the same test images above their reconstructions, each autoencoder
/// epoch) and `samples-epoch-NNN.png` (samples from the same noise, each
/// diffusion epoch), so what changes between epochs is the model.
pub const MEDIA: &str = "media";
/// The scores kept when training ends (`scores::FinalScores`).
pub const FINAL_SCORES: &str = "eval.json";
/// Results of `latentlab eval`, one JSON file per sampler, steps and seed.
pub const EVALS: &str = "evals";
/// Where the window's exports of a run go.
pub const EXPORTS: &str = "exports";
