//! Finding the four IDX files of a dataset in a directory, under the names
//! they are published and distributed with.

use std::path::{Path, PathBuf};

use super::catalogue::FileRole;

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

pub(super) fn find_one(dir: &Path, role: FileRole) -> Option<PathBuf> {
    candidates(role)
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
}

/// All four files in `dir`, or the names of those missing.
pub(super) fn find_files(dir: &Path) -> Result<DatasetFiles, Vec<String>> {
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
