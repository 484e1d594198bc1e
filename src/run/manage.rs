//! What a person does to a run besides training it: note, rename, delete.
//! Rename and delete hold the run's training lock while they work, so a
//! trainer can neither be running nor start meanwhile.

use std::path::{Path, PathBuf};

use super::checkpoint::{CheckpointError, io_err, lock_for_training, write_atomic};
use super::status::{RunState, RunStatus, now_secs};
use super::summary::NOTE;

/// Keep `text` as the run's note (an empty note removes the file).
pub fn set_note(root: &Path, text: &str) -> Result<(), CheckpointError> {
    let path = root.join(NOTE);
    if text.is_empty() {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(&path)(e)),
            _ => Ok(()),
        };
    }
    write_atomic(&path, text.as_bytes())
}

/// Rename the run to `name` in the same runs directory; returns its new path.
pub fn rename(root: &Path, name: &str) -> Result<PathBuf, CheckpointError> {
    let bad = |message: String| CheckpointError::Invalid {
        path: root.to_path_buf(),
        message,
    };
    let valid = !name.is_empty()
        && name.len() <= 128
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid {
        return Err(bad(format!(
            "cannot rename to {name:?}: use 1 to 128 letters, digits, '-', '_' or '.'"
        )));
    }
    if let Some(m) = super::sweep::Membership::read(root) {
        return Err(bad(format!(
            "is point {} of sweep {}: its name is how the sweep finds it again; annotate it \
             instead",
            m.index, m.sweep
        )));
    }
    let parent = root.parent().unwrap_or(Path::new("."));
    let target = parent.join(name);
    if target.exists() {
        return Err(bad(format!("cannot rename: {} exists", target.display())));
    }
    let _lock = idle_lock(root)?;
    std::fs::rename(root, &target).map_err(io_err(root))?;
    Ok(target)
}

/// Delete the run's directory and everything in it.
pub fn delete(root: &Path) -> Result<(), CheckpointError> {
    if !root.join(super::CONFIG).is_file() {
        return Err(CheckpointError::Invalid {
            path: root.to_path_buf(),
            message: "is not a latentlab run (no config.toml); not deleting it".into(),
        });
    }
    let _lock = idle_lock(root)?;
    // Out of the way first, under the lock: a trainer started meanwhile
    // finds no run here (rather than a half-deleted one), and listings
    // skip the hidden name while the files go.
    let name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tomb = root.with_file_name(format!(".deleting-{name}-{}", std::process::id()));
    std::fs::rename(root, &tomb).map_err(io_err(root))?;
    std::fs::remove_dir_all(&tomb).map_err(io_err(&tomb))
}

/// The run's training lock, refused while it trains: the lock is held, or
/// the status still beats (a trainer on another machine of a shared runs
/// directory, where advisory locks may not reach).
fn idle_lock(root: &Path) -> Result<std::sync::Arc<std::fs::File>, CheckpointError> {
    let lock = lock_for_training(root)?;
    if RunStatus::read(root).is_some_and(|s| s.seen(now_secs()) == RunState::Running) {
        return Err(CheckpointError::Invalid {
            path: root.to_path_buf(),
            message: "is training (its status beats); stop it first".into(),
        });
    }
    Ok(lock)
}
