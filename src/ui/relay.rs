//! Worker events relayed to the window with bounded memory.
//!
//! The window drains events once a frame, and may not run frames for a
//! long time (minimised, a slow software renderer). Snapshots — progress,
//! reconstructions, latents, preview samples — each supersede the previous
//! one, so only the latest of each kind waits while the window is behind;
//! everything else (loss points, epoch summaries, checkpoints, the end of
//! the run) is small and kept in order, up to `QUEUE` events. Beyond that
//! the relay waits, the worker's own bounded channel fills, and training
//! waits too: backpressure, not unbounded growth.

use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::train::Event;

/// Events the window may be behind by before the trainer waits for it.
pub const QUEUE: usize = 65_536;
/// Snapshots are forwarded only while fewer events than this are waiting.
const BACKLOG: usize = 8;

/// Relay `source` on a thread of its own; `wake` asks for a frame.
pub fn spawn(
    source: Receiver<Event>,
    wake: impl Fn() + Send + 'static,
) -> std::io::Result<Receiver<Event>> {
    let (tx, rx) = crossbeam_channel::bounded(QUEUE);
    std::thread::Builder::new()
        .name("latentlab-events".into())
        .spawn(move || relay(&source, &tx, &wake))?;
    Ok(rx)
}

/// Kinds of event of which only the latest is kept while the window is behind.
const SLOTS: usize = 5;

fn snapshot_slot(event: &Event) -> Option<usize> {
    match event {
        Event::Progress(_) => Some(0),
        Event::Reconstructions { .. } => Some(1),
        Event::Latents { .. } => Some(2),
        Event::Samples { .. } => Some(3),
        Event::Scoring { .. } => Some(4),
        _ => None,
    }
}

/// Returns when the worker is gone (after forwarding everything it kept)
/// or the window is.
pub fn relay(source: &Receiver<Event>, tx: &Sender<Event>, wake: &dyn Fn()) {
    let mut latest: [Option<Event>; SLOTS] = Default::default();
    let flush = |latest: &mut [Option<Event>; SLOTS]| {
        latest
            .iter_mut()
            .filter_map(Option::take)
            .all(|ev| tx.send(ev).is_ok())
    };
    loop {
        match source.recv_timeout(Duration::from_millis(100)) {
            Ok(event) => {
                if let Some(slot) = snapshot_slot(&event) {
                    latest[slot] = Some(event);
                } else {
                    let last = matches!(
                        event,
                        Event::Stopped { .. } | Event::Finished { .. } | Event::Failed { .. }
                    );
                    // The run's final snapshots come before its end.
                    if last && !flush(&mut latest) {
                        return;
                    }
                    if tx.send(event).is_err() {
                        return;
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                flush(&mut latest);
                wake();
                return;
            }
        }
        if tx.len() < BACKLOG && latest.iter().any(Option::is_some) && !flush(&mut latest) {
            return;
        }
        if !tx.is_empty() {
            wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::{Stage, events::Progress};

    fn progress(step: usize) -> Event {
        Event::Progress(Progress {
            stage: Stage::Autoencoder,
            epoch: 1,
            epochs: 1,
            step,
            total_steps: 100_000,
            images_per_sec: 1.0,
            eta_secs: 1.0,
        })
    }

    #[test]
    fn a_window_that_stops_draining_holds_only_the_latest_snapshots() {
        let (wtx, wrx) = crossbeam_channel::unbounded();
        let (tx, rx) = crossbeam_channel::bounded(QUEUE);
        for step in 0..50_000 {
            wtx.send(progress(step)).unwrap();
            if step % 1000 == 0 {
                wtx.send(Event::Losses {
                    stage: Stage::Autoencoder,
                    points: vec![(step, 0.5)],
                })
                .unwrap();
                wtx.send(Event::Latents {
                    epoch: step,
                    dim: 2,
                    latents: vec![0.0; 2_000],
                    labels: vec![0; 1_000],
                })
                .unwrap();
            }
        }
        wtx.send(Event::Finished {
            run_dir: "run".into(),
            seconds: 1.0,
            scores: None,
            unscored: None,
        })
        .unwrap();
        drop(wtx);
        // The window drains nothing until the worker is done.
        relay(&wrx, &tx, &|| {});
        let got: Vec<Event> = rx.try_iter().collect();
        assert!(got.len() < 100, "{} events held for the window", got.len());
        let losses = got
            .iter()
            .filter(|e| matches!(e, Event::Losses { .. }))
            .count();
        assert_eq!(losses, 50, "every loss point is kept");
        let last_progress = got.iter().rev().find_map(|e| match e {
            Event::Progress(p) => Some(p.step),
            _ => None,
        });
        assert_eq!(last_progress, Some(49_999), "the latest progress arrives");
        let last_latents = got.iter().rev().find_map(|e| match e {
            Event::Latents { epoch, .. } => Some(*epoch),
            _ => None,
        });
        assert_eq!(last_latents, Some(49_000));
        assert!(matches!(got.last(), Some(Event::Finished { .. })));
    }
}
