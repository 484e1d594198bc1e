//! Finding the runs in a runs directory and naming a fresh one.

use std::path::{Path, PathBuf};

/// Run directories under `root` (those holding a config), and the runs of
/// each sweep directory there (`RUNS/<sweep-id>/<run>`), newest first.
pub fn list_runs(root: &Path) -> Vec<PathBuf> {
    let children = |dir: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.path())
                    // Hidden: a run being deleted, or not latentlab's.
                    .filter(|p| {
                        !p.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut found = Vec::new();
    for p in children(root) {
        if p.join(super::CONFIG).is_file() {
            found.push(p);
        } else if p.join(super::sweep::SWEEP).is_file() {
            found.extend(
                children(&p)
                    .into_iter()
                    .filter(|r| r.join(super::CONFIG).is_file()),
            );
        }
    }
    let mut runs: Vec<(std::time::SystemTime, PathBuf)> = found
        .into_iter()
        .map(|p| {
            let t = std::fs::metadata(&p)
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            (t, p)
        })
        .collect();
    runs.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    runs.into_iter().map(|(_, p)| p).collect()
}

/// A new run directory under `runs` for an experiment called `name`:
/// `<name>-<UTC time>`, with anything but letters, digits, `-` and `_`
/// replaced, so a name such as `../../x` stays inside `runs`; `-2`, `-3`, …
/// when that directory exists. One rule for the CLI and the window.
pub fn fresh_run_dir(runs: &Path, name: &str) -> PathBuf {
    let safe: String = name
        .chars()
        .take(64)
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let base = format!("{safe}-{}", utc_stamp());
    let mut dir = runs.join(&base);
    let mut k = 2;
    while dir.exists() {
        dir = runs.join(format!("{base}-{k}"));
        k += 1;
    }
    dir
}

/// "20261129-115301" in UTC, without a date-time dependency.
pub fn utc_stamp() -> String {
    stamp_of(super::status::now_secs())
}

/// `utc_stamp` of a time given in Unix seconds.
pub fn stamp_of(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
