//! A sweep: a grid of runs over a few config keys, kept as ordinary run
//! directories under `RUNS/<sweep-id>/`, with the plan in `sweep.json`.
//!
//! ```text
//! RUNS/<sweep-id>/sweep.json          the base config, the axes and every point
//! RUNS/<sweep-id>/000-lr=0.001/       one ordinary run per grid point, holding
//!     sweep.json                      its sweep id, index and grid values
//! ```
//!
//! The id and the run names are pure functions of the base config and the
//! grid, so running the same sweep command again finds the same directories
//! and resumes them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::checkpoint::{CheckpointError, write_atomic};
use crate::config::ExperimentConfig;

/// The plan of a sweep, in `RUNS/<sweep-id>/sweep.json`; and, in each of
/// its runs, the run's own place in it (`Membership`).
pub const SWEEP: &str = "sweep.json";
/// Axes a sweep may have (the window plots at most three).
pub const MAX_AXES: usize = 3;
/// Grid points a sweep may have.
pub const MAX_POINTS: usize = 1000;

/// One swept key and its values, as TOML text (`[16, 32]`, `1e-3`, `"cosine"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Axis {
    pub key: String,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub index: usize,
    /// The run directory's name inside the sweep directory.
    pub name: String,
    /// key → value (TOML text), in axis order.
    pub values: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sweep {
    pub id: String,
    /// The config every point starts from, as TOML.
    pub base: String,
    pub axes: Vec<Axis>,
    pub points: Vec<Point>,
}

/// What a run of a sweep keeps about its place in it (`RUN/sweep.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Membership {
    pub sweep: String,
    pub index: usize,
    pub values: BTreeMap<String, String>,
}

/// What a grid point needs, from its run directory's status: the CLI's
/// queue, its Slurm tasks and the window's queue all decide by this.
#[derive(Debug, PartialEq, Eq)]
pub enum Need {
    Done,
    /// Another process trains it now (its status beats).
    Elsewhere,
    Train,
}

pub fn need(run: &Path) -> Need {
    use super::status::{RunState, RunStatus, now_secs};
    match RunStatus::read(run).map(|s| s.seen(now_secs())) {
        Some(RunState::Finished) => Need::Done,
        Some(RunState::Running) => Need::Elsewhere,
        _ => Need::Train,
    }
}

/// Split `v1,v2,…` at the commas outside brackets, braces and quotes, so
/// `[16,32],[32,64]` is two values.
pub fn split_values(raw: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth, mut quote) = (Vec::new(), String::new(), 0i32, None);
    for c in raw.chars() {
        match (c, quote) {
            ('"' | '\'', None) => quote = Some(c),
            (q, Some(open)) if q == open => quote = None,
            ('[' | '{', None) => depth += 1,
            (']' | '}', None) => depth -= 1,
            (',', None) if depth == 0 => {
                out.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur.trim().to_string());
    out
}

/// `--grid key=v1,v2,…` as an axis.
pub fn parse_axis(arg: &str) -> Result<Axis, String> {
    let (key, raw) = arg.split_once('=').ok_or_else(|| {
        format!("--grid {arg}: expected key=v1,v2,… e.g. ae_training.lr=1e-3,3e-3")
    })?;
    let values = split_values(raw);
    if values.iter().any(String::is_empty) {
        return Err(format!(
            "--grid {arg}: a value is empty (two commas in a row?)"
        ));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = values.iter().find(|v| !seen.insert(v.as_str())) {
        return Err(format!("--grid {arg}: {dup} is listed twice"));
    }
    Ok(Axis {
        key: key.trim().to_string(),
        values,
    })
}

/// FNV-1a: a hash that stays the same across Rust versions, for the id.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Letters, digits and `-_.=` kept; anything else becomes `_`.
fn safe(text: &str, max: usize) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace())
        .take(max)
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '=') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Sweep {
    /// Every grid point of `axes` over `base`, each applied and validated:
    /// all problems at once, each naming the point and the value.
    pub fn plan(
        base: &ExperimentConfig,
        axes: Vec<Axis>,
    ) -> Result<(Self, Vec<ExperimentConfig>), Vec<String>> {
        let mut problems = Vec::new();
        if axes.is_empty() {
            problems.push("give at least one --grid key=v1,v2,…".to_string());
        }
        if axes.len() > MAX_AXES {
            problems.push(format!("{} --grid axes: at most {MAX_AXES}", axes.len()));
        }
        let mut keys = std::collections::HashSet::new();
        for a in &axes {
            if !keys.insert(a.key.as_str()) {
                problems.push(format!("--grid {}: the key is swept twice", a.key));
            }
        }
        let total = axes
            .iter()
            .try_fold(1usize, |n, a| n.checked_mul(a.values.len()))
            .unwrap_or(usize::MAX);
        if total > MAX_POINTS {
            problems.push(format!("the grid has {total} points: at most {MAX_POINTS}"));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let spec: String = axes
            .iter()
            .map(|a| format!("{}={}", a.key, a.values.join(",")))
            .collect::<Vec<_>>()
            .join(";");
        let base_toml = base.to_toml();
        let id = format!(
            "{}-sweep-{:08x}",
            safe(&base.name, 40),
            fnv(&format!("{base_toml}\n{spec}")) as u32
        );
        let (mut points, mut configs) = (Vec::new(), Vec::new());
        for index in 0..total {
            // Mixed radix: the last axis varies fastest.
            let mut rest = index;
            let mut values = vec![(String::new(), String::new()); axes.len()];
            for (k, a) in axes.iter().enumerate().rev() {
                values[k] = (a.key.clone(), a.values[rest % a.values.len()].clone());
                rest /= a.values.len();
            }
            let mut cfg = base.clone();
            let mut ok = true;
            for (key, value) in &values {
                if let Err(e) = cfg.apply_override(&format!("{key}={value}")) {
                    problems.push(format!("grid point {index} ({key}={value}): {e}"));
                    ok = false;
                }
            }
            if ok {
                for p in cfg.validate() {
                    problems.push(format!("grid point {index}: {p}"));
                }
            }
            let label: Vec<String> = values
                .iter()
                .map(|(k, v)| format!("{}={}", k.rsplit('.').next().unwrap_or(k), v))
                .collect();
            points.push(Point {
                index,
                name: safe(&format!("{index:03}-{}", label.join("-")), 100),
                values,
            });
            configs.push(cfg);
        }
        if !problems.is_empty() {
            problems.dedup();
            return Err(problems);
        }
        Ok((
            Sweep {
                id,
                base: base_toml,
                axes,
                points,
            },
            configs,
        ))
    }

    /// The sweep's directory under the runs directory `runs`.
    pub fn dir(&self, runs: &Path) -> PathBuf {
        runs.join(&self.id)
    }

    /// The same sweep made by an earlier latentlab, whose config had fewer
    /// keys (so another id): same axes, and a base config that reads back
    /// equal to this one's. Adopting its id and base resumes it instead of
    /// starting over.
    pub fn adopt_existing(&mut self, runs: &Path) {
        if self.dir(runs).join(SWEEP).is_file() {
            return;
        }
        let Ok(base) = ExperimentConfig::from_toml(&self.base, "the sweep's base") else {
            return;
        };
        let Ok(entries) = std::fs::read_dir(runs) else {
            return;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let Some(Ok(found)) = Self::read(&entry.path()) else {
                continue;
            };
            let same_base = ExperimentConfig::from_toml(&found.base, "an earlier sweep")
                .is_ok_and(|b| b == base);
            if same_base && found.axes == self.axes && found.points == self.points {
                self.id = found.id;
                self.base = found.base;
                return;
            }
        }
    }

    /// Write the plan (`sweep.json`) and each point's config
    /// (`points/NNN.toml`) into `dir`; a plan already there must be this one.
    pub fn write(&self, dir: &Path, configs: &[ExperimentConfig]) -> Result<(), CheckpointError> {
        let invalid = |message: String| CheckpointError::Invalid {
            path: dir.join(SWEEP),
            message,
        };
        if let Some(found) = Self::read(dir) {
            let found = found.map_err(invalid)?;
            if found != *self {
                return Err(invalid(
                    "holds another sweep under the same id; move it away or choose another \
                     --runs-dir"
                        .into(),
                ));
            }
        }
        let points = dir.join("points");
        std::fs::create_dir_all(&points).map_err(|e| invalid(e.to_string()))?;
        for (p, cfg) in self.points.iter().zip(configs) {
            write_atomic(&self.point_config(dir, p.index), cfg.to_toml().as_bytes())?;
        }
        let text = serde_json::to_string_pretty(self).expect("sweeps serialise");
        write_atomic(&dir.join(SWEEP), text.as_bytes())
    }

    /// The plan in `dir`, if there is one.
    pub fn read(dir: &Path) -> Option<Result<Self, String>> {
        let path = dir.join(SWEEP);
        let text = std::fs::read_to_string(&path).ok()?;
        Some(serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display())))
    }

    pub fn point_config(&self, dir: &Path, index: usize) -> PathBuf {
        dir.join("points").join(format!("{index:03}.toml"))
    }

    pub fn run_dir(&self, dir: &Path, index: usize) -> PathBuf {
        dir.join(&self.points[index].name)
    }

    pub fn membership(&self, index: usize) -> Membership {
        Membership {
            sweep: self.id.clone(),
            index,
            values: self.points[index].values.iter().cloned().collect(),
        }
    }
}

impl Membership {
    pub fn read(run: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(run.join(SWEEP)).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn write(&self, run: &Path) -> Result<(), CheckpointError> {
        std::fs::create_dir_all(run).map_err(|e| CheckpointError::Io {
            path: run.to_path_buf(),
            message: e.to_string(),
        })?;
        let text = serde_json::to_string_pretty(self).expect("memberships serialise");
        write_atomic(&run.join(SWEEP), text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_split_at_top_level_commas_only() {
        assert_eq!(split_values("1e-3, 3e-3"), ["1e-3", "3e-3"]);
        assert_eq!(
            split_values("[16,32,64],[32,64,128]"),
            ["[16,32,64]", "[32,64,128]"]
        );
        assert_eq!(split_values(r#""a,b",c"#), [r#""a,b""#, "c"]);
        assert!(parse_axis("lr").is_err());
        assert!(parse_axis("lr=1,,2").is_err());
        assert!(parse_axis("lr=1,1").is_err());
    }

    #[test]
    fn the_plan_is_every_point_named_and_identified_deterministically() {
        let base = ExperimentConfig::preset("quick").unwrap();
        let axes = vec![
            parse_axis("diffusion_training.lr=1e-3,2e-3").unwrap(),
            parse_axis("unet.channels=[16,32,64],[32,64,128]").unwrap(),
        ];
        let (sweep, configs) = Sweep::plan(&base, axes.clone()).unwrap();
        assert_eq!(sweep.points.len(), 4);
        assert_eq!(sweep.points[1].name, "001-lr=1e-3-channels=_32_64_128_");
        assert_eq!(configs[3].unet.channels, [32, 64, 128]);
        assert!((configs[2].diffusion_training.lr - 2e-3).abs() < 1e-12);
        let (again, _) = Sweep::plan(&base, axes).unwrap();
        assert_eq!(again.id, sweep.id, "the same sweep gets the same id");
        assert!(sweep.id.starts_with("quick-sweep-"));
        let other = vec![parse_axis("diffusion_training.lr=1e-3,5e-3").unwrap()];
        assert_ne!(Sweep::plan(&base, other).unwrap().0.id, sweep.id);
    }

    #[test]
    fn a_sweep_written_by_an_older_version_is_found_again() {
        let tmp = tempfile::tempdir().unwrap();
        let base = ExperimentConfig::preset("quick").unwrap();
        let axes = vec![parse_axis("diffusion_training.lr=1e-3,2e-3").unwrap()];
        let (mut old, configs) = Sweep::plan(&base, axes.clone()).unwrap();
        // An older latentlab wrote no `guidance` key (it defaults), and so
        // hashed another id.
        old.base = old
            .base
            .lines()
            .filter(|l| !l.starts_with("guidance"))
            .collect::<Vec<_>>()
            .join("\n");
        old.id = "quick-sweep-0ld0ld00".into();
        old.write(&old.dir(tmp.path()), &configs).unwrap();
        let (mut now, _) = Sweep::plan(&base, axes).unwrap();
        assert_ne!(now.id, old.id);
        now.adopt_existing(tmp.path());
        assert_eq!(now.id, old.id);
        now.write(&now.dir(tmp.path()), &configs).unwrap();
    }

    #[test]
    fn every_bad_point_is_named_before_anything_runs() {
        let base = ExperimentConfig::preset("quick").unwrap();
        let axes = vec![parse_axis("unet.heads=2,0,999").unwrap()];
        let problems = Sweep::plan(&base, axes).unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].starts_with("grid point 1: unet.heads"),
            "{problems:?}"
        );
        let problems = Sweep::plan(&base, vec![parse_axis("no.such=1,2").unwrap()]).unwrap_err();
        assert!(problems[0].contains("no.such"), "{problems:?}");
    }
}
