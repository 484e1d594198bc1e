//! Reading a located dataset's files into memory, validated.

use std::fs;
use std::path::PathBuf;

use super::LocatedDataset;
use super::catalogue::{DatasetKind, FileRole, SUBSET_DIR, embedded_subset};
use crate::data::error::DataError;
use crate::data::{Dataset, idx};

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
