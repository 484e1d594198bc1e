//! The rows of a run's two logs, serialised and parsed here and nowhere
//! else: `losses.jsonl` (one `LossRow` per logged step) and `epochs.jsonl`
//! (one `EpochRow` per epoch). JSON lines, so a log cut by a crash loses at
//! most its last line, and old runs keep loading: unknown keys are ignored
//! and a line that does not parse is skipped.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::train::Stage;

/// A row of one of the logs: which file it goes to, and where in training
/// it was written (a resumed run drops rows past its checkpoint).
pub trait Row: Serialize + DeserializeOwned {
    const FILE: &'static str;
    fn stage(&self) -> Stage;
    /// Steps done in the row's stage when it was written.
    fn step(&self) -> usize;
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LossRow {
    pub stage: Stage,
    pub step: usize,
    pub loss: f32,
}

/// Mean loss of an epoch, and for autoencoder epochs the test scores.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochRow {
    pub stage: Stage,
    pub epoch: usize,
    pub step: usize,
    pub mean_loss: f64,
    #[serde(default)]
    pub seconds: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psnr: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssim: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssim_gaussian: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_images: Option<usize>,
}

impl Row for LossRow {
    const FILE: &'static str = super::LOSSES;
    fn stage(&self) -> Stage {
        self.stage
    }
    fn step(&self) -> usize {
        self.step
    }
}

impl Row for EpochRow {
    const FILE: &'static str = super::EPOCHS;
    fn stage(&self) -> Stage {
        self.stage
    }
    fn step(&self) -> usize {
        self.step
    }
}

/// One JSON line per row.
pub fn to_lines<R: Row>(rows: &[R]) -> String {
    let mut text = String::new();
    for row in rows {
        text.push_str(&serde_json::to_string(row).expect("log rows serialise"));
        text.push('\n');
    }
    text
}

/// The rows of `text` that parse, in order.
pub fn parse_lines<R: Row>(text: &str) -> Vec<R> {
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Every row of `R`'s log in the run directory `dir` (none when the log
/// does not exist yet).
pub fn read<R: Row>(dir: &Path) -> Result<Vec<R>, String> {
    let path = dir.join(R::FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(parse_lines(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_and_old_lines_still_parse() {
        let rows = [
            LossRow {
                stage: Stage::Autoencoder,
                step: 3,
                loss: 0.25,
            },
            LossRow {
                stage: Stage::Diffusion,
                step: 7,
                loss: 0.5,
            },
        ];
        assert_eq!(parse_lines::<LossRow>(&to_lines(&rows)), rows);
        // As earlier versions wrote them (keys sorted), plus a torn last line.
        let old = "{\"mean_loss\":0.1,\"epoch\":1,\"psnr\":20.5,\"seconds\":2.0,\"ssim\":0.9,\
                   \"ssim_gaussian\":0.8,\"stage\":\"autoencoder\",\"step\":70,\"test_images\":1000}\n\
                   {\"epoch\":1,\"mean_loss\":0.3,\"seconds\":1.5,\"stage\":\"diffusion\",\"step\":35}\n\
                   {\"epoch\":2,\"mean_lo";
        let epochs = parse_lines::<EpochRow>(old);
        assert_eq!(epochs.len(), 2);
        assert_eq!(epochs[0].psnr, Some(20.5));
        assert_eq!(
            (epochs[1].stage, epochs[1].step, epochs[1].psnr),
            (Stage::Diffusion, 35, None)
        );
        let line = to_lines(&epochs[1..]);
        assert!(!line.contains("psnr"), "{line}");
    }
}
