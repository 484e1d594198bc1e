//! Errors from locating, downloading and parsing datasets.
//!
//! Every message names the file or directory involved and says what the
//! user can do about it, because these reach the terminal unchanged.

use std::path::PathBuf;

/// Appended to messages about a damaged data file.
pub const FIX_FILE: &str = "delete it and let latentlab download it again, or pass --data-dir \
     pointing at intact copies";

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("could not read {}: {source}; check the path and its permissions, or pass --data-dir", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{} is a corrupt or truncated gzip file ({source}); {FIX_FILE}", path.display())]
    Gzip {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{} decompresses to more than {limit} bytes, which no MNIST-style file does; {FIX_FILE}", path.display())]
    TooLarge { path: PathBuf, limit: u64 },

    #[error("{} is not an IDX {what} file: expected magic number {expected:#010x}, found {found:#010x}{hint}; {FIX_FILE}", path.display())]
    BadMagic {
        path: PathBuf,
        what: &'static str,
        expected: u32,
        found: u32,
        /// Extra guess about what the file really is (may be empty).
        hint: String,
    },

    #[error("{} is truncated: the IDX header needs {expected} bytes, found {found}; {FIX_FILE}", path.display())]
    TruncatedHeader {
        path: PathBuf,
        expected: usize,
        found: usize,
    },

    #[error("{} has an implausible IDX header: {detail}; {FIX_FILE}", path.display())]
    BadDimensions { path: PathBuf, detail: String },

    #[error("{} is truncated: expected {expected} bytes of {what} data, found {found}; {FIX_FILE}", path.display())]
    Truncated {
        path: PathBuf,
        what: &'static str,
        expected: u64,
        found: u64,
    },

    #[error("{} has {extra} trailing bytes after the {expected} bytes its header declares; {FIX_FILE}", path.display())]
    TrailingBytes {
        path: PathBuf,
        expected: u64,
        extra: u64,
    },

    #[error("{} has label {value} at index {index}, but labels must be 0..=9; {FIX_FILE}", path.display())]
    BadLabel {
        path: PathBuf,
        index: usize,
        value: u8,
    },

    #[error("{} holds {images} images but {} holds {labels} labels; the two files must come from the same split — replace them with a matching pair, or pass --data-dir", images_path.display(), labels_path.display())]
    CountMismatch {
        images_path: PathBuf,
        labels_path: PathBuf,
        images: usize,
        labels: usize,
    },

    #[error("{} holds {rows}x{cols} images, but latentlab needs 28x28 (MNIST / Fashion-MNIST); pass --data-dir pointing at the right files", path.display())]
    WrongImageSize {
        path: PathBuf,
        rows: usize,
        cols: usize,
    },

    #[error("--data-dir {} is missing {}: put the four IDX files there (raw or .gz), or drop --data-dir to use latentlab's cache", dir.display(), missing.join(", "))]
    DataDirIncomplete { dir: PathBuf, missing: Vec<String> },

    #[error("{} is not a directory: pass --data-dir pointing at the folder that holds the IDX files", dir.display())]
    DataDirNotADirectory { dir: PathBuf },

    #[error("{dataset} not found; looked in {}. {advice}", join_paths(searched))]
    NotFound {
        dataset: &'static str,
        searched: Vec<PathBuf>,
        advice: String,
    },

    #[error("could not create the dataset cache directory {}: {source}; pass --data-dir instead", path.display())]
    CacheDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("could not download {file} for {dataset} into {}:{}\n{advice}", dir.display(), format_attempts(attempts))]
    DownloadFailed {
        dataset: &'static str,
        /// What to do instead (always mentions --data-dir).
        advice: String,
        file: String,
        dir: PathBuf,
        /// (url, what went wrong) for every mirror tried, in order.
        attempts: Vec<(String, String)>,
    },

    #[error("internal error: asked to load {wanted} but the located files are {found}")]
    KindMismatch {
        wanted: &'static str,
        found: &'static str,
    },

    #[error("unknown dataset {name:?}: use \"mnist\" or \"fashion\"")]
    UnknownDataset { name: String },

    #[error(
        "the embedded offline subset only holds MNIST, not {dataset}; pass --data-dir with the {dataset} files"
    )]
    SubsetIsMnistOnly { dataset: &'static str },
}

fn join_paths(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "nowhere".to_string();
    }
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn format_attempts(attempts: &[(String, String)]) -> String {
    if attempts.is_empty() {
        return " no mirror was tried".to_string();
    }
    attempts
        .iter()
        .map(|(url, err)| format!("\n  - {url}: {err}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_failure_lists_every_mirror() {
        let e = DataError::DownloadFailed {
            dataset: "MNIST",
            advice: "pass --data-dir DIR".into(),
            file: "train-images-idx3-ubyte.gz".into(),
            dir: PathBuf::from("/cache/mnist"),
            attempts: vec![
                ("https://a/x.gz".into(), "dns error".into()),
                ("https://b/x.gz".into(), "http status: 404".into()),
            ],
        };
        let msg = e.to_string();
        assert!(msg.contains("https://a/x.gz: dns error"), "{msg}");
        assert!(msg.contains("https://b/x.gz: http status: 404"), "{msg}");
        assert!(msg.contains("--data-dir"), "{msg}");
    }

    #[test]
    fn data_dir_message_names_dir_and_files() {
        let e = DataError::DataDirIncomplete {
            dir: PathBuf::from("/d"),
            missing: vec!["a".into(), "b".into()],
        };
        let msg = e.to_string();
        assert!(msg.contains("/d") && msg.contains("a, b"), "{msg}");
    }
}
