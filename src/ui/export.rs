//! Exports from the panels: PNG grids, denoising GIFs, loss curves as CSV
//! and JSON, and checkpoint copies. Encoding, the file dialog and the write
//! all happen on a job thread. Without a dialog the file goes to a fresh name
//! in the run directory's `exports/`; an existing file is never replaced
//! unless the user confirms it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::GrayImage;

use super::jobs::{Job, JobResult, Jobs, dialogs_available};
use super::session::Curves;
use crate::run::checkpoint::write_atomic;

pub enum Payload {
    Bytes(Vec<u8>),
    Png(GrayImage),
    Gif {
        frames: Vec<GrayImage>,
        delay_ms: u32,
    },
    /// Copy a run directory (config, logs, checkpoint).
    RunDir(PathBuf),
}

pub struct ExportRequest {
    /// File stem, e.g. "samples"; a time stamp is added.
    pub stem: String,
    pub ext: &'static str,
    pub payload: Payload,
}

/// Where exports go when no dialog can open.
pub fn default_dir(run_dir: Option<&Path>, runs_root: &Path) -> PathBuf {
    match run_dir {
        Some(d) => d.join(crate::run::EXPORTS),
        None => runs_root.join(crate::run::EXPORTS),
    }
}

/// A name in `dir` that does not exist yet.
pub fn fresh_path(dir: &Path, stem: &str, ext: &str) -> PathBuf {
    let stamp = crate::run::utc_stamp();
    let mut path = dir.join(format!("{stem}-{stamp}.{ext}"));
    let mut k = 2;
    while path.exists() {
        path = dir.join(format!("{stem}-{stamp}-{k}.{ext}"));
        k += 1;
    }
    path
}

pub fn export(jobs: &Jobs, req: ExportRequest, dir: PathBuf, use_dialogs: bool) {
    jobs.spawn(Job::Export, move |reply| {
        let dialog = use_dialogs && dialogs_available();
        if let Payload::RunDir(src) = &req.payload {
            let dest = if dialog {
                match rfd::FileDialog::new().set_directory(&dir).pick_folder() {
                    Some(parent) => parent.join(src.file_name().unwrap_or_default()),
                    None => {
                        reply.send(JobResult::ExportCancelled);
                        return Ok(());
                    }
                }
            } else {
                fresh_path(&dir, &req.stem, "run")
            };
            if dest.exists() {
                return Err(format!(
                    "{} already exists; choose another folder (nothing was overwritten)",
                    dest.display()
                ));
            }
            copy_run(src, &dest)?;
            reply.send(JobResult::ExportWritten(dest));
            return Ok(());
        }
        let bytes = encode(req.payload);
        let path = if dialog {
            let name = format!("{}.{}", req.stem, req.ext);
            match rfd::FileDialog::new()
                .set_directory(&dir)
                .set_file_name(name)
                .add_filter(req.ext.to_uppercase(), &[req.ext])
                .save_file()
            {
                Some(p) => p,
                None => {
                    reply.send(JobResult::ExportCancelled);
                    return Ok(());
                }
            }
        } else {
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            fresh_path(&dir, &req.stem, req.ext)
        };
        if path.exists() {
            reply.send(JobResult::ExportExists {
                path,
                bytes: Arc::new(bytes),
            });
            return Ok(());
        }
        write_atomic(&path, &bytes).map_err(|e| e.to_string())?;
        reply.send(JobResult::ExportWritten(path));
        Ok(())
    });
}

/// After the user confirmed: replace `path`.
pub fn overwrite(jobs: &Jobs, path: PathBuf, bytes: Arc<Vec<u8>>) {
    jobs.spawn(Job::Export, move |reply| {
        write_atomic(&path, &bytes).map_err(|e| e.to_string())?;
        reply.send(JobResult::ExportWritten(path));
        Ok(())
    });
}

fn encode(payload: Payload) -> Vec<u8> {
    match payload {
        Payload::Bytes(b) => b,
        Payload::Png(img) => crate::export::png_bytes(&img),
        Payload::Gif { frames, delay_ms } => crate::export::gif_bytes(&frames, delay_ms, 1500),
        Payload::RunDir(_) => unreachable!("run directories are copied, not encoded"),
    }
}

/// Copy a run directory (skipping earlier exports), through a temporary
/// name so a half-copied run never appears under the final name.
fn copy_run(src: &Path, dest: &Path) -> Result<(), String> {
    // A name of its own, created fresh: a `.partial` left by a crashed
    // export (or another one running) is never merged into.
    let tmp = partial_name(dest);
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::create_dir(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    copy_tree(src, &tmp, &src.join(crate::run::EXPORTS))
        .and_then(|_| std::fs::rename(&tmp, dest).map_err(|e| format!("{}: {e}", dest.display())))
        .inspect_err(|_| {
            let _ = std::fs::remove_dir_all(&tmp);
        })
}

/// `<dest>.<pid>-<n>.partial`, beside `dest`.
fn partial_name(dest: &Path) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}-{n}.partial", std::process::id()));
    dest.with_file_name(name)
}

fn copy_tree(src: &Path, dest: &Path, skip: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    let entries = std::fs::read_dir(src).map_err(|e| format!("{}: {e}", src.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path == skip || path.extension().is_some_and(|e| e == "tmp") {
            continue;
        }
        let target = dest.join(path.file_name().unwrap_or_default());
        if path.is_dir() {
            copy_tree(&path, &target, skip)?;
        } else {
            std::fs::copy(&path, &target).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    Ok(())
}

/// Loss curves as CSV: stage,step,loss (one row per logged step).
pub fn curves_csv(c: &Curves) -> Vec<u8> {
    let mut s = String::from("stage,step,loss\n");
    for (name, points) in [("autoencoder", &c.ae), ("diffusion", &c.diffusion)] {
        for (step, loss) in points {
            s.push_str(&format!("{name},{step},{loss}\n"));
        }
    }
    s.into_bytes()
}

/// Loss curves and per-epoch means as JSON.
pub fn curves_json(c: &Curves) -> Vec<u8> {
    let epochs = |v: &[super::session::EpochMean]| {
        v.iter()
            .map(|e| serde_json::json!({"epoch": e.epoch, "step": e.step, "mean_loss": e.mean}))
            .collect::<Vec<_>>()
    };
    let value = serde_json::json!({
        "autoencoder": {"steps": c.ae, "epochs": epochs(&c.ae_epochs)},
        "diffusion": {"steps": c.diffusion, "epochs": epochs(&c.diffusion_epochs)},
    });
    serde_json::to_vec_pretty(&value).expect("JSON values serialise")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_export_never_merges_into_a_stale_partial_copy() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("run");
        std::fs::create_dir_all(src.join("checkpoint")).unwrap();
        std::fs::write(src.join("config.toml"), "name = 'x'").unwrap();
        std::fs::write(src.join("checkpoint/state.json"), "{}").unwrap();
        let dest = tmp.path().join("out/run-copy");
        // What a crashed export under the old naming left behind.
        let stale = dest.with_extension("partial");
        std::fs::create_dir_all(&stale).unwrap();
        std::fs::write(stale.join("junk.bpk"), "half a file").unwrap();
        copy_run(&src, &dest).unwrap();
        let mut names: Vec<_> = std::fs::read_dir(&dest)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["checkpoint", "config.toml"]);
        assert!(dest.join("checkpoint/state.json").is_file());
        // The only thing beside the copy is the stale leftover, untouched.
        let beside = std::fs::read_dir(dest.parent().unwrap()).unwrap().count();
        assert_eq!(beside, 2);
    }
}
