//! Fetching missing files from the mirrors into the cache: each verified by
//! SHA-256, written under a name of its own and renamed into place.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::catalogue::{DatasetKind, RemoteFile};
use super::find::{DatasetFiles, find_files, find_one};
use super::{DownloadProgress, Search};
use crate::data::error::DataError;
use crate::data::idx;

/// Cap on a single downloaded file; the largest real one is ~26 MB.
const MAX_DOWNLOAD_BYTES: u64 = 64 << 20;

/// Opens a URL for reading; returns the body and its length if known.
/// Errors are plain strings because they only end up in messages.
pub(super) trait Fetcher {
    fn open(&self, url: &str) -> Result<(Box<dyn Read>, Option<u64>), String>;
}

pub(super) struct UreqFetcher {
    agent: ureq::Agent,
}

impl UreqFetcher {
    pub(super) fn new() -> Self {
        // Connect/idle timeouts only: a slow link may legitimately need
        // minutes for the 26 MB file, but a stalled one should not hang.
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(20)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            .user_agent(concat!("latentlab/", env!("CARGO_PKG_VERSION")))
            .build();
        UreqFetcher {
            agent: ureq::Agent::new_with_config(config),
        }
    }
}

impl Fetcher for UreqFetcher {
    fn open(&self, url: &str) -> Result<(Box<dyn Read>, Option<u64>), String> {
        let response = self.agent.get(url).call().map_err(|e| e.to_string())?;
        let total = response.body().content_length();
        Ok((Box::new(response.into_body().into_reader()), total))
    }
}

/// Downloads every file missing from `cache` (keeping those present).
pub(super) fn download_missing(
    kind: DatasetKind,
    cache: &Path,
    search: &Search<'_>,
    progress: &dyn Fn(DownloadProgress),
) -> Result<DatasetFiles, DataError> {
    fs::create_dir_all(cache).map_err(|e| DataError::CacheDir {
        path: cache.to_path_buf(),
        source: e,
    })?;
    for spec in search.checksums {
        if find_one(cache, spec.role).is_none() {
            download_one(spec, cache, search.mirrors, search.fetcher, progress).map_err(
                |attempts| DataError::DownloadFailed {
                    dataset: kind.display_name(),
                    advice: download_advice(kind),
                    file: format!("{}.gz", spec.role.base_name()),
                    dir: cache.to_path_buf(),
                    attempts,
                },
            )?;
        }
    }
    find_files(cache).map_err(|missing| DataError::DataDirIncomplete {
        dir: cache.to_path_buf(),
        missing,
    })
}

fn download_advice(kind: DatasetKind) -> String {
    let base = "pass --data-dir DIR with the four IDX files (raw or .gz) instead";
    match kind {
        DatasetKind::Mnist => base.to_string(),
        DatasetKind::Fashion => format!(
            "{base}, or install the Debian package dataset-fashion-mnist \
             (apt-get install dataset-fashion-mnist)"
        ),
    }
}

/// How a verified download is stored.
#[derive(Debug, PartialEq, Eq)]
enum Verified {
    /// Gzip bytes (matching either digest).
    Gz,
    /// Already-decoded IDX bytes (store without .gz).
    Raw,
}

/// Tries each mirror in turn; returns the final path, or (url, error) for
/// every attempt.
pub(super) fn download_one(
    spec: &RemoteFile,
    dir: &Path,
    mirrors: &[&str],
    fetcher: &dyn Fetcher,
    progress: &dyn Fn(DownloadProgress),
) -> Result<PathBuf, Vec<(String, String)>> {
    let base = spec.role.base_name();
    let name = format!("{base}.gz");
    // A name of its own: two processes downloading the same file must not
    // truncate each other's bytes (a shared name could publish a corrupt file).
    let part = dir.join(unique_part_name(&name));
    let mut attempts = Vec::new();
    for mirror in mirrors {
        let url = format!("{mirror}{name}");
        let result = fetch_to_part(&url, &name, &part, spec, fetcher, progress).and_then(|v| {
            let dest = match v {
                Verified::Gz => dir.join(&name),
                Verified::Raw => dir.join(base),
            };
            // Same directory, so the rename is atomic: readers see either
            // no file or a complete, verified one.
            fs::rename(&part, &dest)
                .map_err(|e| format!("could not move {} into place: {e}", part.display()))?;
            sync_dir(dir);
            Ok(dest)
        });
        match result {
            Ok(dest) => return Ok(dest),
            Err(e) => {
                let _ = fs::remove_file(&part);
                attempts.push((url, e));
            }
        }
    }
    Err(attempts)
}

/// `<name>.<pid>-<n>.part`: unique to this process and call.
fn unique_part_name(name: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("{name}.{}-{n}.part", std::process::id())
}

/// Streams `url` into `part`, fsyncs it and verifies its digest.
fn fetch_to_part(
    url: &str,
    name: &str,
    part: &Path,
    spec: &RemoteFile,
    fetcher: &dyn Fetcher,
    progress: &dyn Fn(DownloadProgress),
) -> Result<Verified, String> {
    let (mut body, total) = fetcher.open(url)?;
    if let Some(t) = total
        && t > MAX_DOWNLOAD_BYTES
    {
        return Err(format!(
            "server announces {t} bytes, more than the {MAX_DOWNLOAD_BYTES} allowed; not the expected file"
        ));
    }
    let report = |done| {
        progress(DownloadProgress {
            file: name.to_string(),
            url: url.to_string(),
            done,
            total,
        })
    };
    let write_err = |e: io::Error| format!("could not write {}: {e}", part.display());
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(part)
        .map_err(write_err)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut done: u64 = 0;
    report(0);
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("transfer failed after {done} bytes: {e}")),
        };
        done += n as u64;
        if done > MAX_DOWNLOAD_BYTES {
            return Err(format!(
                "more than {MAX_DOWNLOAD_BYTES} bytes received; not the expected file"
            ));
        }
        file.write_all(&buf[..n]).map_err(write_err)?;
        hasher.update(&buf[..n]);
        report(done);
    }
    file.sync_all().map_err(write_err)?;
    drop(file);

    let got = hex(&hasher.finalize());
    if got == spec.gz_sha256 {
        return Ok(Verified::Gz);
    }
    // Fallback: compare decompressed content (recompressed or pre-decoded).
    let bytes = fs::read(part).map_err(|e| format!("could not re-read {}: {e}", part.display()))?;
    let (content_sha, verified) = if idx::is_gzip(&bytes) {
        match idx::maybe_gunzip(&bytes, part) {
            Ok(raw) => (hex(&Sha256::digest(&raw)), Verified::Gz),
            Err(e) => {
                return Err(format!(
                    "SHA-256 mismatch (got {got}, expected {}) and {e}",
                    spec.gz_sha256
                ));
            }
        }
    } else {
        (got.clone(), Verified::Raw)
    };
    if content_sha == spec.idx_sha256 {
        Ok(verified)
    } else {
        Err(format!(
            "SHA-256 mismatch: got {got}, expected {} (or decompressed {}); the mirror served a different file",
            spec.gz_sha256, spec.idx_sha256
        ))
    }
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Persists the rename itself; best effort (not all platforms allow
/// opening a directory).
fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}
