//! Finding a dataset on disk, downloading it if allowed, and loading it.
//!
//! Search order (first complete set of four files wins):
//! 1. `--data-dir`, if given. Missing files there are an error: the user
//!    asked for that directory, so silently using something else would hide
//!    a mistake.
//! 2. The user cache, `dirs::cache_dir()/latentlab/<mnist|fashion-mnist>`
//!    (`$XDG_CACHE_HOME` is honoured on Linux).
//! 3. Fashion only: `/usr/share/datasets/fashion-mnist` (Debian package
//!    `dataset-fashion-mnist`).
//! 4. If downloads are allowed: fetch the missing files into the cache from
//!    public mirrors, verifying SHA-256, written atomically.
//! 5. MNIST only: the embedded 9,000/1,000 offline subset
//!    (`assets/mnist-subset`, see assets/README.md).

use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Dataset;
use super::error::DataError;
use super::idx;

/// Setting this (to anything but "", "0" or "false") disables downloads.
pub const NO_DOWNLOAD_ENV: &str = "LATENTLAB_NO_DOWNLOAD";

/// Cap on a single downloaded file; the largest real one is ~26 MB.
const MAX_DOWNLOAD_BYTES: u64 = 64 << 20;

/// Sizes of the embedded offline subset (checked by tests).
pub const SUBSET_TRAIN: usize = 9_000;
pub const SUBSET_TEST: usize = 1_000;
const SUBSET_DIR: &str = "assets/mnist-subset";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetKind {
    Mnist,
    Fashion,
}

impl DatasetKind {
    pub const ALL: [DatasetKind; 2] = [DatasetKind::Mnist, DatasetKind::Fashion];

    /// Short name used on the command line and in configs.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::Fashion => "fashion",
        }
    }

    /// Name for humans.
    pub fn display_name(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "MNIST",
            DatasetKind::Fashion => "Fashion-MNIST",
        }
    }

    /// Directory name under the latentlab cache.
    pub fn cache_subdir(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::Fashion => "fashion-mnist",
        }
    }

    /// Mirrors tried in order; each serves `<base name>.gz`.
    pub fn mirrors(self) -> &'static [&'static str] {
        match self {
            DatasetKind::Mnist => &[
                "https://ossci-datasets.s3.amazonaws.com/mnist/",
                "https://storage.googleapis.com/cvdf-datasets/mnist/",
            ],
            DatasetKind::Fashion => &[
                "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
            ],
        }
    }

    /// System-wide directories searched after the cache.
    pub fn system_dirs(self) -> Vec<PathBuf> {
        match self {
            DatasetKind::Mnist => Vec::new(),
            DatasetKind::Fashion => vec![PathBuf::from("/usr/share/datasets/fashion-mnist")],
        }
    }

    fn checksums(self) -> &'static [RemoteFile; 4] {
        match self {
            DatasetKind::Mnist => &MNIST_FILES,
            DatasetKind::Fashion => &FASHION_FILES,
        }
    }
}

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DatasetKind {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "mnist" => Ok(DatasetKind::Mnist),
            "fashion" | "fashion-mnist" | "fashion_mnist" | "fashionmnist" => {
                Ok(DatasetKind::Fashion)
            }
            _ => Err(DataError::UnknownDataset {
                name: s.to_string(),
            }),
        }
    }
}

/// The four files of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileRole {
    TrainImages,
    TrainLabels,
    TestImages,
    TestLabels,
}

impl FileRole {
    pub const ALL: [FileRole; 4] = [
        FileRole::TrainImages,
        FileRole::TrainLabels,
        FileRole::TestImages,
        FileRole::TestLabels,
    ];

    /// Canonical file name without `.gz`.
    pub fn base_name(self) -> &'static str {
        match self {
            FileRole::TrainImages => "train-images-idx3-ubyte",
            FileRole::TrainLabels => "train-labels-idx1-ubyte",
            FileRole::TestImages => "t10k-images-idx3-ubyte",
            FileRole::TestLabels => "t10k-labels-idx1-ubyte",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Expected digests of one published file.
#[derive(Debug, Clone, Copy)]
struct RemoteFile {
    role: FileRole,
    /// SHA-256 of the `.gz` file as the mirrors serve it.
    gz_sha256: &'static str,
    /// SHA-256 of the decompressed IDX bytes. Accepted as a fallback so a
    /// mirror that recompresses (Debian does) or serves the file already
    /// decoded still verifies; the content is what matters.
    idx_sha256: &'static str,
}

// MNIST digests. The .gz values are those pinned by TensorFlow Datasets /
// Keras for the original yann.lecun.com files (the ossci and cvdf mirrors
// serve byte-identical copies) and are repeated in many independent
// projects; the decompressed values are likewise widely published and
// consistent with torchvision's MD5s. Not re-computed here (no network).
const MNIST_FILES: [RemoteFile; 4] = [
    RemoteFile {
        role: FileRole::TrainImages,
        gz_sha256: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        idx_sha256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    },
    RemoteFile {
        role: FileRole::TrainLabels,
        gz_sha256: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        idx_sha256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    },
    RemoteFile {
        role: FileRole::TestImages,
        gz_sha256: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        idx_sha256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    },
    RemoteFile {
        role: FileRole::TestLabels,
        gz_sha256: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        idx_sha256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
];

// Fashion-MNIST digests. The .gz values are the published upstream ones
// (files whose MD5s match the table in zalandoresearch/fashion-mnist's
// README; also pinned by TFDS). The decompressed values were computed here
// from Debian's dataset-fashion-mnist 0.0~git20200523.55506a9-1, whose .gz
// files are recompressed (different .gz hashes, identical content) and
// match independently published content hashes.
const FASHION_FILES: [RemoteFile; 4] = [
    RemoteFile {
        role: FileRole::TrainImages,
        gz_sha256: "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        idx_sha256: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    },
    RemoteFile {
        role: FileRole::TrainLabels,
        gz_sha256: "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        idx_sha256: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    },
    RemoteFile {
        role: FileRole::TestImages,
        gz_sha256: "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        idx_sha256: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    },
    RemoteFile {
        role: FileRole::TestLabels,
        gz_sha256: "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        idx_sha256: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
];

/// Paths of the four files of a located dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetFiles {
    pub train_images: PathBuf,
    pub train_labels: PathBuf,
    pub test_images: PathBuf,
    pub test_labels: PathBuf,
}

impl DatasetFiles {
    pub fn get(&self, role: FileRole) -> &Path {
        match role {
            FileRole::TrainImages => &self.train_images,
            FileRole::TrainLabels => &self.train_labels,
            FileRole::TestImages => &self.test_images,
            FileRole::TestLabels => &self.test_labels,
        }
    }

    fn from_array([train_images, train_labels, test_images, test_labels]: [PathBuf; 4]) -> Self {
        DatasetFiles {
            train_images,
            train_labels,
            test_images,
            test_labels,
        }
    }
}

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
        cache_dir: dirs::cache_dir().map(|d| d.join("latentlab").join(kind.cache_subdir())),
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

/// Candidate names for one file: canonical and the dotted variant some
/// distributions use ("train-images.idx3-ubyte"), each raw or gzipped.
fn candidates(role: FileRole) -> [String; 4] {
    let base = role.base_name();
    let dotted = base.replacen("-idx", ".idx", 1);
    [
        base.to_string(),
        format!("{base}.gz"),
        dotted.clone(),
        format!("{dotted}.gz"),
    ]
}

fn find_one(dir: &Path, role: FileRole) -> Option<PathBuf> {
    candidates(role)
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
}

/// All four files in `dir`, or the names of those missing.
fn find_files(dir: &Path) -> Result<DatasetFiles, Vec<String>> {
    let mut paths: [Option<PathBuf>; 4] = Default::default();
    let mut missing = Vec::new();
    for role in FileRole::ALL {
        match find_one(dir, role) {
            Some(p) => paths[role.index()] = Some(p),
            None => missing.push(format!("{}[.gz]", role.base_name())),
        }
    }
    match paths {
        [Some(a), Some(b), Some(c), Some(d)] if missing.is_empty() => {
            Ok(DatasetFiles::from_array([a, b, c, d]))
        }
        _ => Err(missing),
    }
}

/// Opens a URL for reading; returns the body and its length if known.
/// Errors are plain strings because they only end up in messages.
trait Fetcher {
    fn open(&self, url: &str) -> Result<(Box<dyn Read>, Option<u64>), String>;
}

struct UreqFetcher {
    agent: ureq::Agent,
}

impl UreqFetcher {
    fn new() -> Self {
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
fn download_missing(
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
fn download_one(
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Persists the rename itself; best effort (not all platforms allow
/// opening a directory).
fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

macro_rules! subset_file {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/assets/mnist-subset/",
            $name
        ))
    };
}

/// Bytes (gzipped IDX) of one file of the embedded offline MNIST subset.
pub fn embedded_subset(role: FileRole) -> &'static [u8] {
    match role {
        FileRole::TrainImages => subset_file!("train-images-idx3-ubyte.gz"),
        FileRole::TrainLabels => subset_file!("train-labels-idx1-ubyte.gz"),
        FileRole::TestImages => subset_file!("t10k-images-idx3-ubyte.gz"),
        FileRole::TestLabels => subset_file!("t10k-labels-idx1-ubyte.gz"),
    }
}

/// Reads and validates the four files of `located` into a `Dataset`.
pub fn load(kind: DatasetKind, located: &LocatedDataset) -> Result<Dataset, DataError> {
    let read = |role: FileRole| -> Result<(PathBuf, std::borrow::Cow<'static, [u8]>), DataError> {
        match located {
            LocatedDataset::Files { files, .. } => {
                let path = files.get(role).to_path_buf();
                let bytes = fs::read(&path).map_err(|e| DataError::Io {
                    path: path.clone(),
                    source: e,
                })?;
                Ok((path, bytes.into()))
            }
            LocatedDataset::EmbeddedSubset { .. } => {
                let path =
                    PathBuf::from(format!("<embedded>/{SUBSET_DIR}/{}.gz", role.base_name()));
                Ok((path, embedded_subset(role).into()))
            }
        }
    };
    match located {
        LocatedDataset::Files { kind: found, .. } if *found != kind => {
            return Err(DataError::KindMismatch {
                wanted: kind.display_name(),
                found: found.display_name(),
            });
        }
        LocatedDataset::EmbeddedSubset { .. } if kind != DatasetKind::Mnist => {
            return Err(DataError::SubsetIsMnistOnly {
                dataset: kind.display_name(),
            });
        }
        _ => {}
    }

    let split = |images: FileRole, labels: FileRole| -> Result<(Vec<u8>, Vec<u8>), DataError> {
        let (ipath, ibytes) = read(images)?;
        let img = idx::parse_images(&ibytes, &ipath)?;
        drop(ibytes);
        if (img.rows, img.cols) != (28, 28) {
            return Err(DataError::WrongImageSize {
                path: ipath,
                rows: img.rows,
                cols: img.cols,
            });
        }
        let (lpath, lbytes) = read(labels)?;
        let lab = idx::parse_labels(&lbytes, &lpath)?;
        if lab.len() != img.count {
            return Err(DataError::CountMismatch {
                images_path: ipath,
                labels_path: lpath,
                images: img.count,
                labels: lab.len(),
            });
        }
        Ok((img.pixels, lab))
    };
    let (train_images, train_labels) = split(FileRole::TrainImages, FileRole::TrainLabels)?;
    let (test_images, test_labels) = split(FileRole::TestImages, FileRole::TestLabels)?;
    Ok(Dataset {
        kind,
        train_images,
        train_labels,
        test_images,
        test_labels,
        rows: 28,
        cols: 28,
        source: located.describe(),
    })
}

#[cfg(test)]
mod tests {
    use super::idx::{IdxImages, encode_images, encode_labels, gzip_bytes};
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    /// Serves canned bodies by URL; anything else fails like a dead mirror.
    struct FakeFetcher {
        bodies: HashMap<String, Vec<u8>>,
        requested: RefCell<Vec<String>>,
    }

    impl FakeFetcher {
        fn new(bodies: &[(&str, Vec<u8>)]) -> Self {
            FakeFetcher {
                bodies: bodies
                    .iter()
                    .map(|(u, b)| (u.to_string(), b.clone()))
                    .collect(),
                requested: RefCell::new(Vec::new()),
            }
        }
    }

    impl Fetcher for FakeFetcher {
        fn open(&self, url: &str) -> Result<(Box<dyn Read>, Option<u64>), String> {
            self.requested.borrow_mut().push(url.to_string());
            match self.bodies.get(url) {
                Some(b) => Ok((Box::new(io::Cursor::new(b.clone())), Some(b.len() as u64))),
                None => Err("connection refused (fake)".into()),
            }
        }
    }

    fn images(count: usize, seed: u8) -> Vec<u8> {
        encode_images(&IdxImages {
            count,
            rows: 28,
            cols: 28,
            pixels: (0..count * 784)
                .map(|i| (i as u8).wrapping_mul(seed))
                .collect(),
        })
    }

    fn labels(count: usize) -> Vec<u8> {
        encode_labels(&(0..count).map(|i| (i % 10) as u8).collect::<Vec<_>>())
    }

    /// Raw IDX bytes of a tiny dataset, by role.
    fn tiny_raw() -> [Vec<u8>; 4] {
        [images(5, 3), labels(5), images(2, 7), labels(2)]
    }

    fn write_set(dir: &Path, gz: bool) {
        fs::create_dir_all(dir).unwrap();
        for (role, raw) in FileRole::ALL.iter().zip(tiny_raw()) {
            let (name, bytes) = if gz {
                (
                    format!("{}.gz", role.base_name()),
                    gzip_bytes(&raw).unwrap(),
                )
            } else {
                (role.base_name().to_string(), raw)
            };
            fs::write(dir.join(name), bytes).unwrap();
        }
    }

    /// Checksums matching `tiny_raw()` gzipped (gz digest) and raw.
    fn tiny_checksums() -> [RemoteFile; 4] {
        let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
        let raw = tiny_raw();
        let mut out = MNIST_FILES;
        for (spec, raw) in out.iter_mut().zip(raw) {
            spec.gz_sha256 = leak(hex(&Sha256::digest(gzip_bytes(&raw).unwrap())));
            spec.idx_sha256 = leak(hex(&Sha256::digest(&raw)));
        }
        out
    }

    fn no_progress(_: DownloadProgress) {}

    fn search<'a>(
        cache: Option<PathBuf>,
        system: Vec<PathBuf>,
        allow_download: bool,
        mirrors: &'a [&'a str],
        checksums: &'a [RemoteFile; 4],
        fetcher: &'a dyn Fetcher,
    ) -> Search<'a> {
        Search {
            cache_dir: cache,
            system_dirs: system,
            allow_download,
            mirrors,
            checksums,
            fetcher,
        }
    }

    #[test]
    fn kind_names_parse_and_serde() {
        for k in DatasetKind::ALL {
            assert_eq!(k.name().parse::<DatasetKind>().unwrap(), k);
            assert_eq!(k.to_string(), k.name());
        }
        assert_eq!(
            "Fashion-MNIST".parse::<DatasetKind>().unwrap(),
            DatasetKind::Fashion
        );
        let err = "cifar".parse::<DatasetKind>().unwrap_err().to_string();
        assert!(err.contains("cifar") && err.contains("mnist"), "{err}");
        assert_eq!(
            serde_json::to_string(&DatasetKind::Fashion).unwrap(),
            "\"fashion\""
        );
        assert_eq!(
            serde_json::from_str::<DatasetKind>("\"mnist\"").unwrap(),
            DatasetKind::Mnist
        );
        assert!(serde_json::from_str::<DatasetKind>("\"Mnist\"").is_err());
    }

    #[test]
    fn env_flag_values() {
        assert!(!env_flag(None));
        for v in ["", "0", "false", "FALSE", "no"] {
            assert!(!env_flag(Some(v)), "{v:?}");
        }
        for v in ["1", "true", "yes"] {
            assert!(env_flag(Some(v)), "{v:?}");
        }
    }

    #[test]
    fn checksum_constants_are_well_formed_and_ordered() {
        for kind in DatasetKind::ALL {
            for (spec, role) in kind.checksums().iter().zip(FileRole::ALL) {
                assert_eq!(spec.role, role);
                for h in [spec.gz_sha256, spec.idx_sha256] {
                    assert_eq!(h.len(), 64, "{h}");
                    assert!(
                        h.bytes()
                            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                    );
                }
            }
        }
    }

    #[test]
    fn finds_raw_gz_and_dotted_names() {
        let tmp = tempfile::tempdir().unwrap();
        write_set(tmp.path(), true);
        let files = find_files(tmp.path()).unwrap();
        assert!(files.train_images.ends_with("train-images-idx3-ubyte.gz"));
        // Raw wins over .gz when both exist.
        fs::write(tmp.path().join("t10k-labels-idx1-ubyte"), labels(2)).unwrap();
        let files = find_files(tmp.path()).unwrap();
        assert!(files.test_labels.ends_with("t10k-labels-idx1-ubyte"));
        // Dotted variant.
        fs::rename(
            tmp.path().join("train-labels-idx1-ubyte.gz"),
            tmp.path().join("train-labels.idx1-ubyte.gz"),
        )
        .unwrap();
        let files = find_files(tmp.path()).unwrap();
        assert!(files.train_labels.ends_with("train-labels.idx1-ubyte.gz"));
        fs::remove_file(files.train_labels).unwrap();
        assert_eq!(
            find_files(tmp.path()).unwrap_err(),
            vec!["train-labels-idx1-ubyte[.gz]".to_string()]
        );
    }

    #[test]
    fn data_dir_is_used_and_never_falls_through() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let cache = tmp.path().join("cache");
        write_set(&data, false);
        write_set(&cache, true);
        let f = FakeFetcher::new(&[]);
        let s = search(Some(cache.clone()), vec![], true, &[], &MNIST_FILES, &f);

        let loc = locate_with(DatasetKind::Mnist, Some(&data), &s, &no_progress).unwrap();
        assert!(
            matches!(&loc, LocatedDataset::Files { origin: Origin::DataDir, dir, .. } if *dir == data)
        );
        assert!(loc.describe().contains("--data-dir"), "{}", loc.describe());

        // Incomplete --data-dir: error naming dir and files, although the
        // cache is complete and downloads are allowed.
        fs::remove_file(data.join("t10k-images-idx3-ubyte")).unwrap();
        fs::remove_file(data.join("train-labels-idx1-ubyte")).unwrap();
        let err = locate_with(DatasetKind::Mnist, Some(&data), &s, &no_progress).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&data.display().to_string()), "{msg}");
        assert!(
            msg.contains("train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz]"),
            "{msg}"
        );
        assert!(f.requested.borrow().is_empty());

        let err = locate_with(
            DatasetKind::Mnist,
            Some(&tmp.path().join("nope")),
            &s,
            &no_progress,
        )
        .unwrap_err();
        assert!(matches!(err, DataError::DataDirNotADirectory { .. }));
    }

    #[test]
    fn cache_then_system_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = tmp.path().join("cache");
        let system = tmp.path().join("system");
        write_set(&system, true);
        let f = FakeFetcher::new(&[]);
        let s = search(
            Some(cache.clone()),
            vec![system.clone()],
            false,
            &[],
            &FASHION_FILES,
            &f,
        );
        let loc = locate_with(DatasetKind::Fashion, None, &s, &no_progress).unwrap();
        assert!(matches!(
            &loc,
            LocatedDataset::Files {
                origin: Origin::System,
                ..
            }
        ));
        assert!(
            loc.describe().contains("dataset-fashion-mnist"),
            "{}",
            loc.describe()
        );

        write_set(&cache, false);
        let loc = locate_with(DatasetKind::Fashion, None, &s, &no_progress).unwrap();
        assert!(
            matches!(&loc, LocatedDataset::Files { origin: Origin::Cache, dir, .. } if *dir == cache)
        );
        assert_eq!(
            loc.describe(),
            format!("Fashion-MNIST from {}", tilde(&cache))
        );
        let ds = load(DatasetKind::Fashion, &loc).unwrap();
        assert_eq!((ds.train_len(), ds.test_len()), (5, 2));
    }

    #[test]
    fn nothing_found_offline() {
        let tmp = tempfile::tempdir().unwrap();
        let f = FakeFetcher::new(&[]);
        let s = search(
            Some(tmp.path().join("c")),
            vec![tmp.path().join("s")],
            false,
            &[],
            &MNIST_FILES,
            &f,
        );

        let loc = locate_with(DatasetKind::Mnist, None, &s, &no_progress).unwrap();
        assert!(loc.is_subset());
        assert!(
            loc.describe().contains("9,000 train / 1,000 test"),
            "{}",
            loc.describe()
        );
        let note = loc.note().unwrap();
        assert!(
            note.contains("disabled") && note.contains(NO_DOWNLOAD_ENV),
            "{note}"
        );

        let msg = locate_with(DatasetKind::Fashion, None, &s, &no_progress)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("dataset-fashion-mnist") && msg.contains("--data-dir"),
            "{msg}"
        );
        assert!(
            msg.contains(&tmp.path().join("s").display().to_string()),
            "{msg}"
        );
        assert!(f.requested.borrow().is_empty());
    }

    #[test]
    fn download_tries_mirrors_in_order_and_writes_atomically() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = tmp.path().join("cache");
        fs::create_dir_all(&cache).unwrap();
        // One file already cached: it must not be fetched again.
        fs::write(
            cache.join("t10k-labels-idx1-ubyte.gz"),
            gzip_bytes(&labels(2)).unwrap(),
        )
        .unwrap();

        let sums = tiny_checksums();
        let raw = tiny_raw();
        let mirrors = ["http://dead/", "http://good/"];
        let bodies: Vec<(String, Vec<u8>)> = FileRole::ALL
            .iter()
            .zip(&raw)
            .map(|(r, b)| {
                (
                    format!("http://good/{}.gz", r.base_name()),
                    gzip_bytes(b).unwrap(),
                )
            })
            .collect();
        let bodies: Vec<(&str, Vec<u8>)> = bodies
            .iter()
            .map(|(u, b)| (u.as_str(), b.clone()))
            .collect();
        let f = FakeFetcher::new(&bodies);
        let s = search(Some(cache.clone()), vec![], true, &mirrors, &sums, &f);

        let events = RefCell::new(Vec::new());
        let progress = |p: DownloadProgress| events.borrow_mut().push(p);
        let loc = locate_with(DatasetKind::Mnist, None, &s, &progress).unwrap();
        assert!(matches!(
            &loc,
            LocatedDataset::Files {
                origin: Origin::Downloaded,
                ..
            }
        ));
        assert!(
            loc.describe().starts_with("MNIST downloaded to"),
            "{}",
            loc.describe()
        );

        let req = f.requested.borrow().clone();
        assert_eq!(req.len(), 6, "{req:?}"); // 3 missing files x 2 mirrors
        assert_eq!(req[0], "http://dead/train-images-idx3-ubyte.gz");
        assert_eq!(req[1], "http://good/train-images-idx3-ubyte.gz");
        assert!(!req.iter().any(|u| u.contains("t10k-labels")));

        // Progress ends at done == total for each file.
        let ev = events.borrow();
        let last = ev
            .iter()
            .rfind(|p| p.file == "train-images-idx3-ubyte.gz")
            .unwrap();
        assert_eq!(Some(last.done), last.total);
        assert_eq!(
            ev.iter()
                .find(|p| p.file == "train-images-idx3-ubyte.gz")
                .unwrap()
                .done,
            0
        );

        // No leftovers, and the result loads.
        let leftovers: Vec<_> = fs::read_dir(&cache)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
            .collect();
        assert!(leftovers.is_empty());
        let ds = load(DatasetKind::Mnist, &loc).unwrap();
        assert_eq!((ds.train_len(), ds.test_len()), (5, 2));
    }

    #[test]
    fn failed_downloads_list_every_mirror() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = tmp.path().join("cache");
        let mirrors = ["http://m1/", "http://m2/"];
        let f = FakeFetcher::new(&[]);

        let s = search(
            Some(cache.clone()),
            vec![],
            true,
            &mirrors,
            &FASHION_FILES,
            &f,
        );
        let msg = locate_with(DatasetKind::Fashion, None, &s, &no_progress)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("http://m1/train-images-idx3-ubyte.gz: connection refused"),
            "{msg}"
        );
        assert!(
            msg.contains("http://m2/train-images-idx3-ubyte.gz: connection refused"),
            "{msg}"
        );
        assert!(
            msg.contains("--data-dir") && msg.contains("dataset-fashion-mnist"),
            "{msg}"
        );

        // MNIST falls back to the subset, keeping the reason.
        let s = search(
            Some(cache.clone()),
            vec![],
            true,
            &mirrors,
            &MNIST_FILES,
            &f,
        );
        let loc = locate_with(DatasetKind::Mnist, None, &s, &no_progress).unwrap();
        assert!(loc.is_subset());
        let note = loc.note().unwrap();
        assert!(
            note.contains("http://m1/") && note.contains("http://m2/"),
            "{note}"
        );
        assert_eq!(
            fs::read_dir(&cache).unwrap().count(),
            0,
            "nothing left in the cache"
        );
    }

    #[test]
    fn checksum_mismatch_is_rejected_and_cleaned_up() {
        let tmp = tempfile::tempdir().unwrap();
        let body = gzip_bytes(&images(1, 1)).unwrap();
        let f = FakeFetcher::new(&[("http://m/train-images-idx3-ubyte.gz", body)]);
        let spec = &MNIST_FILES[0];
        let err = download_one(spec, tmp.path(), &["http://m/"], &f, &no_progress).unwrap_err();
        assert_eq!(err.len(), 1);
        assert!(
            err[0].1.contains("SHA-256 mismatch") && err[0].1.contains(spec.gz_sha256),
            "{err:?}"
        );
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn recompressed_or_decoded_downloads_verify_by_content() {
        let tmp = tempfile::tempdir().unwrap();
        let raw = tiny_raw()[1].clone();
        let mut spec = tiny_checksums()[1];
        spec.gz_sha256 = "0000000000000000000000000000000000000000000000000000000000000000";

        // Different gzip bytes, same content: stored as .gz.
        let f = FakeFetcher::new(&[(
            "http://m/train-labels-idx1-ubyte.gz",
            gzip_bytes(&raw).unwrap(),
        )]);
        let p = download_one(&spec, tmp.path(), &["http://m/"], &f, &no_progress).unwrap();
        assert!(p.ends_with("train-labels-idx1-ubyte.gz"));
        fs::remove_file(&p).unwrap();

        // Served already decoded: stored raw, without .gz.
        let f = FakeFetcher::new(&[("http://m/train-labels-idx1-ubyte.gz", raw.clone())]);
        let p = download_one(&spec, tmp.path(), &["http://m/"], &f, &no_progress).unwrap();
        assert!(p.ends_with("train-labels-idx1-ubyte"));
        assert_eq!(fs::read(&p).unwrap(), raw);
    }

    /// Serves `body`; the first download waits at its end until the second
    /// has started writing, the second then stalls so the first publishes.
    struct GatedFetcher {
        body: Vec<u8>,
        first: bool,
        gate: std::sync::Arc<std::sync::Barrier>,
    }

    struct GatedBody {
        inner: io::Cursor<Vec<u8>>,
        first: bool,
        gate: Option<std::sync::Arc<std::sync::Barrier>>,
    }

    impl Read for GatedBody {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if !self.first
                && let Some(g) = self.gate.take()
            {
                g.wait();
                std::thread::sleep(std::time::Duration::from_millis(300));
            }
            let n = self.inner.read(buf)?;
            if n == 0
                && self.first
                && let Some(g) = self.gate.take()
            {
                g.wait();
            }
            Ok(n)
        }
    }

    impl Fetcher for GatedFetcher {
        fn open(&self, _url: &str) -> Result<(Box<dyn Read>, Option<u64>), String> {
            let body = GatedBody {
                inner: io::Cursor::new(self.body.clone()),
                first: self.first,
                gate: Some(self.gate.clone()),
            };
            Ok((Box::new(body), Some(self.body.len() as u64)))
        }
    }

    #[test]
    fn concurrent_downloads_of_one_file_never_publish_a_torn_file() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = tiny_checksums()[0];
        let body = gzip_bytes(&tiny_raw()[0]).unwrap();
        let gate = std::sync::Arc::new(std::sync::Barrier::new(2));
        let run = |first: bool| {
            let (dir, body, gate) = (tmp.path().to_path_buf(), body.clone(), gate.clone());
            std::thread::spawn(move || {
                let f = GatedFetcher { body, first, gate };
                let p = download_one(&spec, &dir, &["http://m/"], &f, &no_progress);
                // Read what was published at once, as another process would.
                p.map(|p| fs::read(p).unwrap())
            })
        };
        let (a, b) = (run(true), run(false));
        let published = a.join().unwrap().expect("the first download succeeds");
        assert_eq!(published, body, "the published file is the whole download");
        assert_eq!(b.join().unwrap().expect("so does the second"), body);
        let leftovers: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().ends_with(".part"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn oversized_download_is_refused() {
        struct Huge;
        impl Fetcher for Huge {
            fn open(&self, _: &str) -> Result<(Box<dyn Read>, Option<u64>), String> {
                Ok((Box::new(io::repeat(0)), None))
            }
        }
        let tmp = tempfile::tempdir().unwrap();
        let err = download_one(
            &MNIST_FILES[0],
            tmp.path(),
            &["http://m/"],
            &Huge,
            &no_progress,
        )
        .unwrap_err();
        assert!(err[0].1.contains("more than"), "{err:?}");
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn real_http_client_reports_unreachable_mirror() {
        // Port 9 on loopback: refused at once, no external traffic.
        let f = UreqFetcher::new();
        let tmp = tempfile::tempdir().unwrap();
        let err = download_one(
            &MNIST_FILES[3],
            tmp.path(),
            &["http://127.0.0.1:9/"],
            &f,
            &no_progress,
        )
        .unwrap_err();
        assert_eq!(err[0].0, "http://127.0.0.1:9/t10k-labels-idx1-ubyte.gz");
        assert!(!err[0].1.is_empty());
    }

    #[test]
    fn load_rejects_mismatched_counts_and_sizes() {
        let tmp = tempfile::tempdir().unwrap();
        write_set(tmp.path(), false);
        let loc = LocatedDataset::Files {
            kind: DatasetKind::Mnist,
            origin: Origin::DataDir,
            dir: tmp.path().to_path_buf(),
            files: find_files(tmp.path()).unwrap(),
        };
        fs::write(tmp.path().join("train-labels-idx1-ubyte"), labels(4)).unwrap();
        let msg = load(DatasetKind::Mnist, &loc).unwrap_err().to_string();
        assert!(
            msg.contains("5 images") && msg.contains("4 labels"),
            "{msg}"
        );

        fs::write(tmp.path().join("train-labels-idx1-ubyte"), labels(5)).unwrap();
        let small = encode_images(&IdxImages {
            count: 2,
            rows: 8,
            cols: 8,
            pixels: vec![0; 128],
        });
        fs::write(tmp.path().join("t10k-images-idx3-ubyte"), small).unwrap();
        let err = load(DatasetKind::Mnist, &loc).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::WrongImageSize {
                    rows: 8,
                    cols: 8,
                    ..
                }
            ),
            "{err:?}"
        );

        assert!(matches!(
            load(DatasetKind::Fashion, &loc),
            Err(DataError::KindMismatch { .. })
        ));
        assert!(matches!(
            load(
                DatasetKind::Fashion,
                &LocatedDataset::EmbeddedSubset { note: None }
            ),
            Err(DataError::SubsetIsMnistOnly { .. })
        ));
    }

    #[test]
    fn embedded_subset_is_stratified_and_plausible() {
        let ds = load(
            DatasetKind::Mnist,
            &LocatedDataset::EmbeddedSubset { note: None },
        )
        .unwrap();
        assert_eq!((ds.train_len(), ds.test_len()), (SUBSET_TRAIN, SUBSET_TEST));
        assert_eq!(ds.train_images.len(), SUBSET_TRAIN * 784);
        assert!(ds.source.contains("offline MNIST subset"));
        let mut train = [0usize; 10];
        let mut test = [0usize; 10];
        ds.train_labels.iter().for_each(|&l| train[l as usize] += 1);
        ds.test_labels.iter().for_each(|&l| test[l as usize] += 1);
        for d in 0..10 {
            // Each class is 863..1127 images in the package, split ~90/10.
            assert!((750..=1050).contains(&train[d]), "class {d}: {train:?}");
            assert!((80..=120).contains(&test[d]), "class {d}: {test:?}");
            let share = train[d] as f64 / (train[d] + test[d]) as f64;
            assert!((0.88..=0.92).contains(&share), "class {d}: {share}");
        }
        // Shuffled, not grouped by class.
        assert!(
            ds.train_labels[..100]
                .iter()
                .any(|&l| l != ds.train_labels[0])
        );
        let mean =
            Dataset::to_f32(&ds.train_images).iter().sum::<f32>() / ds.train_images.len() as f32;
        assert!((0.11..0.15).contains(&mean), "mean {mean}");
        // Real digits have mostly-black borders.
        let border: u64 = (0..ds.train_len())
            .map(|i| u64::from(ds.train_image(i).unwrap()[0]))
            .sum();
        assert_eq!(border, 0);
    }

    /// Checks our Fashion-MNIST content digests against Debian's files,
    /// when the package is installed (skipped otherwise).
    #[test]
    fn debian_fashion_files_match_content_digests() {
        let dir = Path::new("/usr/share/datasets/fashion-mnist");
        let Ok(files) = find_files(dir) else {
            eprintln!("skipped: {} not installed", dir.display());
            return;
        };
        for spec in &FASHION_FILES {
            let path = files.get(spec.role);
            let bytes = fs::read(path).unwrap();
            let raw = idx::maybe_gunzip(&bytes, path).unwrap();
            assert_eq!(
                hex(&Sha256::digest(&raw)),
                spec.idx_sha256,
                "{}",
                path.display()
            );
        }
        let loc = LocatedDataset::Files {
            kind: DatasetKind::Fashion,
            origin: Origin::System,
            dir: dir.to_path_buf(),
            files,
        };
        let ds = load(DatasetKind::Fashion, &loc).unwrap();
        assert_eq!((ds.train_len(), ds.test_len()), (60_000, 10_000));
    }
}
