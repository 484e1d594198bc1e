//! A run's status, kept in `RUN/status.json` so that it survives the process:
//! running, finished, stopped, failed (with the message). A running run also
//! rewrites its heartbeat every `HEARTBEAT_SECS`; advisory locks are
//! unreliable on network filesystems, so a run that says it is running but
//! has not beaten for `STALE_SECS` is read as interrupted.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::checkpoint::{CheckpointError, write_atomic};

pub const HEARTBEAT_SECS: u64 = 30;
pub const STALE_SECS: u64 = 180;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Running,
    Finished,
    Stopped,
    Failed,
    /// Said running, but its process stopped beating (read, never written).
    Interrupted,
}

impl RunState {
    pub fn name(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Finished => "finished",
            RunState::Stopped => "stopped",
            RunState::Failed => "failed",
            RunState::Interrupted => "interrupted",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStatus {
    pub state: RunState,
    /// Why a run failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Unix seconds: when this process started training the run, and its
    /// last sign of life.
    pub started: u64,
    pub heartbeat: u64,
    /// The preset (or config file) the run started from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl RunStatus {
    pub fn running() -> Self {
        let now = now_secs();
        Self {
            state: RunState::Running,
            message: None,
            started: now,
            heartbeat: now,
            origin: None,
        }
    }

    /// The status in run directory `dir`, if it has one that parses (runs
    /// made before statuses were kept have none).
    pub fn read(dir: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(dir.join(super::STATUS)).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn write(&self, dir: &Path) -> Result<(), CheckpointError> {
        let text = serde_json::to_string_pretty(self).expect("statuses serialise");
        write_atomic(&dir.join(super::STATUS), text.as_bytes())
    }

    /// The state as seen at `now`: a running run whose heartbeat is stale
    /// was interrupted.
    pub fn seen(&self, now: u64) -> RunState {
        if self.state == RunState::Running && now.saturating_sub(self.heartbeat) > STALE_SECS {
            RunState::Interrupted
        } else {
            self.state
        }
    }
}

/// Rewrites a running run's heartbeat on a thread of its own until dropped,
/// so a long step (or a paused run) still shows it is alive.
pub struct Heartbeat {
    stop: Option<crossbeam_channel::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Heartbeat {
    pub fn start(dir: &Path, mut status: RunStatus) -> Self {
        let dir = dir.to_path_buf();
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let thread = std::thread::Builder::new()
            .name("latentlab-heartbeat".into())
            .spawn(move || {
                while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(Duration::from_secs(HEARTBEAT_SECS))
                {
                    status.heartbeat = now_secs();
                    // Best effort: a full disk fails the next checkpoint
                    // with a message; the heartbeat only goes stale.
                    let _ = status.write(&dir);
                }
            })
            .ok();
        Self {
            stop: Some(stop),
            thread,
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Keeps a training run's status true however the run ends: written as
/// running once the trainer holds the run, beating while it trains, then
/// settled as finished, stopped or failed. A panic unwinding past it
/// records a failure.
pub struct StatusKeeper {
    dir: std::path::PathBuf,
    status: RunStatus,
    heartbeat: Option<Heartbeat>,
}

impl StatusKeeper {
    pub fn start(dir: &Path, origin: Option<String>) -> Result<Self, CheckpointError> {
        let status = RunStatus {
            origin,
            ..RunStatus::running()
        };
        status.write(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            heartbeat: Some(Heartbeat::start(dir, status.clone())),
            status,
        })
    }

    pub fn settle(mut self, state: RunState, message: Option<String>) {
        self.record(state, message);
    }

    fn record(&mut self, state: RunState, message: Option<String>) {
        // Stop beating first, or a last beat could overwrite the outcome.
        drop(self.heartbeat.take());
        self.status.state = state;
        self.status.message = message;
        self.status.heartbeat = now_secs();
        let _ = self.status.write(&self.dir);
    }
}

impl Drop for StatusKeeper {
    fn drop(&mut self) {
        if self.heartbeat.is_some() {
            self.record(
                RunState::Failed,
                Some("training ended unexpectedly (an internal error)".into()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_run_that_stopped_beating_reads_as_interrupted() {
        let mut s = RunStatus::running();
        let now = s.heartbeat;
        assert_eq!(s.seen(now + 10), RunState::Running);
        assert_eq!(s.seen(now + STALE_SECS + 1), RunState::Interrupted);
        s.state = RunState::Finished;
        assert_eq!(s.seen(now + 10 * STALE_SECS), RunState::Finished);
        let dir = tempfile::tempdir().unwrap();
        s.message = Some("boom".into());
        s.write(dir.path()).unwrap();
        assert_eq!(RunStatus::read(dir.path()), Some(s));
        std::fs::write(dir.path().join(crate::run::STATUS), "{").unwrap();
        assert_eq!(RunStatus::read(dir.path()), None);
    }
}
