//! What latentlab knows about each dataset before it looks anywhere: names,
//! cache folders, mirrors, the published files and their digests, and the
//! embedded offline MNIST subset.

use std::fmt;

use crate::data::error::DataError;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Sizes of the embedded offline subset (checked by tests).
pub const SUBSET_TRAIN: usize = 9_000;
pub const SUBSET_TEST: usize = 1_000;
pub(super) const SUBSET_DIR: &str = "assets/mnist-subset";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetKind {
    Mnist,
    Fashion,
}

impl DatasetKind {
    /// The ten classes' names, by label.
    pub fn class_names(self) -> [&'static str; 10] {
        match self {
            DatasetKind::Mnist => ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
            DatasetKind::Fashion => [
                "t-shirt",
                "trouser",
                "pullover",
                "dress",
                "coat",
                "sandal",
                "shirt",
                "sneaker",
                "bag",
                "ankle-boot",
            ],
        }
    }

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

    pub(super) fn checksums(self) -> &'static [RemoteFile; 4] {
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

    pub(super) fn index(self) -> usize {
        self as usize
    }
}

/// Expected digests of one published file.
#[derive(Debug, Clone, Copy)]
pub(super) struct RemoteFile {
    pub(super) role: FileRole,
    /// SHA-256 of the `.gz` file as the mirrors serve it.
    pub(super) gz_sha256: &'static str,
    /// SHA-256 of the decompressed IDX bytes. Accepted as a fallback so a
    /// mirror that recompresses (Debian does) or serves the file already
    /// decoded still verifies; the content is what matters.
    pub(super) idx_sha256: &'static str,
}

// MNIST digests. The .gz values are those pinned by TensorFlow Datasets /
// Keras for the original yann.lecun.com files (the ossci and cvdf mirrors
// serve byte-identical copies) and are repeated in many independent
// projects; the decompressed values are likewise widely published and
// consistent with torchvision's MD5s. Not re-computed here (no network).
pub(super) const MNIST_FILES: [RemoteFile; 4] = [
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
pub(super) const FASHION_FILES: [RemoteFile; 4] = [
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
