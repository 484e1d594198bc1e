//! Finding a dataset on disk, downloading it if allowed, and loading it.
//!
//! Search order (first complete set of four files wins):
//! 1. `--data-dir`, if given. Missing files there are an error: the user
//!    asked for that directory, so silently using something else would hide
//!    a mistake.
//! 2. The user cache, `cache_root()/<mnist|fashion-mnist>`
//!    (`$XDG_CACHE_HOME` is honoured on Linux).
//! 3. Fashion only: `/usr/share/datasets/fashion-mnist` (Debian package
//!    `dataset-fashion-mnist`).
//! 4. If downloads are allowed: fetch the missing files into the cache from
//!    public mirrors, verifying SHA-256, written atomically.
//! 5. MNIST only: the embedded 9,000/1,000 offline subset
//!    (`assets/mnist-subset`, see assets/README.md).
//!
//! This file decides where to look (`locate`); `catalogue` knows the
//! datasets, their files, digests and the embedded subset; `find` matches
//! file names in a directory; `download` fetches and verifies; `load` reads
//! the files into a `Dataset`.

mod catalogue;
mod download;
mod find;
mod load;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use catalogue::{DatasetKind, FileRole, SUBSET_TEST, SUBSET_TRAIN, embedded_subset};
use catalogue::{RemoteFile, SUBSET_DIR};
use download::{Fetcher, UreqFetcher, download_missing};
pub use find::DatasetFiles;
use find::find_files;
pub use load::load;

use super::error::DataError;

/// Setting this (to anything but "", "0" or "false") disables downloads.
pub const NO_DOWNLOAD_ENV: &str = "LATENTLAB_NO_DOWNLOAD";

/// Where a located dataset came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    DataDir,
    Cache,
    System,
    Downloaded,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocatedDataset {
    Files {
        kind: DatasetKind,
        origin: Origin,
        dir: PathBuf,
        files: DatasetFiles,
    },
    /// Full MNIST was not available; the embedded subset is used instead.
    EmbeddedSubset {
        /// Why the full set was not used (searched dirs, download errors).
        note: Option<String>,
    },
}

impl LocatedDataset {
    /// One line for humans, e.g. "MNIST from ~/.cache/latentlab/mnist".
    pub fn describe(&self) -> String {
        match self {
            LocatedDataset::Files {
                kind, origin, dir, ..
            } => {
                let name = kind.display_name();
                let dir = tilde(dir);
                match origin {
                    Origin::DataDir => format!("{name} from {dir} (--data-dir)"),
                    Origin::Cache => format!("{name} from {dir}"),
                    Origin::System if *kind == DatasetKind::Fashion => {
                        format!("{name} from {dir} (Debian package dataset-fashion-mnist)")
                    }
                    Origin::System => format!("{name} from {dir}"),
                    Origin::Downloaded => format!("{name} downloaded to {dir}"),
                }
            }
            LocatedDataset::EmbeddedSubset { .. } => format!(
                "offline MNIST subset ({} train / {} test, {SUBSET_DIR}) — pass --data-dir for the full set",
                thousands(SUBSET_TRAIN),
                thousands(SUBSET_TEST)
            ),
        }
    }

    /// Why the full dataset was not used, if the subset was chosen.
    pub fn note(&self) -> Option<&str> {
        match self {
            LocatedDataset::EmbeddedSubset { note } => note.as_deref(),
            LocatedDataset::Files { .. } => None,
        }
    }

    pub fn is_subset(&self) -> bool {
        matches!(self, LocatedDataset::EmbeddedSubset { .. })
    }
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Shows paths under $HOME as ~/...
fn tilde(path: &Path) -> String {
    if let Some(home) = dirs::home_dir()
        && let Ok(rest) = path.strip_prefix(&home)
    {
        return format!("~/{}", rest.display());
    }
    path.display().to_string()
}

/// Progress of one file download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadProgress {
    /// File name being fetched, e.g. "train-images-idx3-ubyte.gz".
    pub file: String,
    pub url: String,
    pub done: u64,
    /// From Content-Length, when the server sends it.
    pub total: Option<u64>,
}

/// True if `LATENTLAB_NO_DOWNLOAD` disables downloads.
pub fn no_download_from_env() -> bool {
    env_flag(std::env::var(NO_DOWNLOAD_ENV).ok().as_deref())
}

fn env_flag(value: Option<&str>) -> bool {
    match value {
        None => false,
        Some(v) => !matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "" | "0" | "false" | "no"
        ),
    }
}

/// Finds `kind` (see the module docs for the order). Downloads only if
/// `allow_download` and `LATENTLAB_NO_DOWNLOAD` is not set.
pub fn locate(
    kind: DatasetKind,
    data_dir: Option<&Path>,
    allow_download: bool,
    progress: &dyn Fn(DownloadProgress),
) -> Result<LocatedDataset, DataError> {
    let fetcher = UreqFetcher::new();
    let search = Search {
        cache_dir: Some(cache_root().join(kind.cache_subdir())),
        system_dirs: kind.system_dirs(),
        allow_download: allow_download && !no_download_from_env(),
        mirrors: kind.mirrors(),
        checksums: kind.checksums(),
        fetcher: &fetcher,
    };
    locate_with(kind, data_dir, &search, progress)
}

/// Everything `locate` depends on, injectable for tests.
struct Search<'a> {
    cache_dir: Option<PathBuf>,
    system_dirs: Vec<PathBuf>,
    allow_download: bool,
    mirrors: &'a [&'a str],
    checksums: &'a [RemoteFile; 4],
    fetcher: &'a dyn Fetcher,
}

fn locate_with(
    kind: DatasetKind,
    data_dir: Option<&Path>,
    search: &Search<'_>,
    progress: &dyn Fn(DownloadProgress),
) -> Result<LocatedDataset, DataError> {
    let found = |origin, dir: &Path, files| LocatedDataset::Files {
        kind,
        origin,
        dir: dir.to_path_buf(),
        files,
    };

    if let Some(dir) = data_dir {
        if !dir.is_dir() {
            return Err(DataError::DataDirNotADirectory {
                dir: dir.to_path_buf(),
            });
        }
        return match find_files(dir) {
            Ok(files) => Ok(found(Origin::DataDir, dir, files)),
            Err(missing) => Err(DataError::DataDirIncomplete {
                dir: dir.to_path_buf(),
                missing,
            }),
        };
    }

    let mut searched = Vec::new();
    if let Some(cache) = &search.cache_dir {
        if let Ok(files) = find_files(cache) {
            return Ok(found(Origin::Cache, cache, files));
        }
        searched.push(cache.clone());
    }
    for dir in &search.system_dirs {
        if let Ok(files) = find_files(dir) {
            return Ok(found(Origin::System, dir, files));
        }
        searched.push(dir.clone());
    }

    let download_error = if !search.allow_download {
        None
    } else if let Some(cache) = &search.cache_dir {
        match download_missing(kind, cache, search, progress) {
            Ok(files) => return Ok(found(Origin::Downloaded, cache, files)),
            Err(e) => Some(e),
        }
    } else {
        Some(DataError::NotFound {
            dataset: kind.display_name(),
            searched: searched.clone(),
            advice: "There is no user cache directory to download into; pass --data-dir DIR."
                .into(),
        })
    };

    let where_ = if searched.is_empty() {
        "no search location".to_string()
    } else {
        searched
            .iter()
            .map(|p| tilde(p))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match kind {
        DatasetKind::Mnist => {
            let why = match download_error {
                Some(e) => format!("full MNIST not in {where_}, and downloading failed: {e}"),
                None => format!(
                    "full MNIST not in {where_}, and downloads are disabled \
                     (allow them or unset {NO_DOWNLOAD_ENV})"
                ),
            };
            Ok(LocatedDataset::EmbeddedSubset { note: Some(why) })
        }
        DatasetKind::Fashion => match download_error {
            Some(e) => Err(e),
            None => Err(DataError::NotFound {
                dataset: kind.display_name(),
                searched,
                advice: format!(
                    "Install the Debian package dataset-fashion-mnist (apt-get install \
                     dataset-fashion-mnist), pass --data-dir DIR with the four IDX files, \
                     or allow downloads (unset {NO_DOWNLOAD_ENV})."
                ),
            }),
        },
    }
}

/// latentlab's cache (datasets, the scoring classifier):
/// `LATENTLAB_CACHE_DIR` when set, else the platform's cache directory +
/// `latentlab` (e.g. ~/.cache/latentlab).
pub fn cache_root() -> PathBuf {
    match std::env::var_os("LATENTLAB_CACHE_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => dirs::cache_dir()
            .unwrap_or_else(std::env::temp_dir)
            .join("latentlab"),
    }
}
