//! Datasets: finding them (`sources`), parsing IDX files (`idx`), and the
//! in-memory `Dataset` the trainer consumes.

pub mod error;
pub mod idx;
pub mod sources;

pub use error::DataError;
pub use idx::{IdxImages, encode_images, encode_labels, parse_images, parse_labels};
pub use sources::{
    DatasetFiles, DatasetKind, DownloadProgress, FileRole, LocatedDataset, Origin, load, locate,
    no_download_from_env,
};

/// A full dataset in memory as raw bytes: 28x28 u8 images, labels 0..=9.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub kind: DatasetKind,
    /// train_len() * rows * cols bytes, image after image, row-major.
    pub train_images: Vec<u8>,
    pub train_labels: Vec<u8>,
    pub test_images: Vec<u8>,
    pub test_labels: Vec<u8>,
    pub rows: usize,
    pub cols: usize,
    /// Human description of where the data came from (LocatedDataset::describe).
    pub source: String,
}

impl Dataset {
    pub fn train_len(&self) -> usize {
        self.train_labels.len()
    }

    pub fn test_len(&self) -> usize {
        self.test_labels.len()
    }

    /// Bytes per image (rows * cols).
    pub fn image_size(&self) -> usize {
        self.rows * self.cols
    }

    /// Pixels of training image `i`; None if out of range.
    pub fn train_image(&self, i: usize) -> Option<&[u8]> {
        let n = self.image_size();
        self.train_images.get(i * n..(i + 1) * n)
    }

    /// Pixels of test image `i`; None if out of range.
    pub fn test_image(&self, i: usize) -> Option<&[u8]> {
        let n = self.image_size();
        self.test_images.get(i * n..(i + 1) * n)
    }

    /// A short identity of the training split: kind, size and an FNV-1a
    /// hash of its images and labels.
    pub fn fingerprint(&self) -> String {
        let hash = self.train_hash();
        format!(
            "{} · {} training images · {hash:016x}",
            self.kind.name(),
            self.train_len()
        )
    }

    /// FNV-1a of the training images and labels: which data a model saw.
    pub fn train_hash(&self) -> u64 {
        self.train_images
            .iter()
            .chain(&self.train_labels)
            .fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
                (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
            })
    }

    /// Scales bytes to [0, 1] floats (v / 255).
    pub fn to_f32(pixels: &[u8]) -> Vec<f32> {
        pixels.iter().map(|&v| f32::from(v) / 255.0).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Dataset {
        Dataset {
            kind: DatasetKind::Mnist,
            train_images: (0..8).collect(),
            train_labels: vec![1, 2],
            test_images: vec![9; 4],
            test_labels: vec![3],
            rows: 2,
            cols: 2,
            source: "test".into(),
        }
    }

    #[test]
    fn lengths_and_image_slices() {
        let d = tiny();
        assert_eq!((d.train_len(), d.test_len(), d.image_size()), (2, 1, 4));
        assert_eq!(d.train_image(1), Some(&[4u8, 5, 6, 7][..]));
        assert_eq!(d.train_image(2), None);
        assert_eq!(d.test_image(0), Some(&[9u8; 4][..]));
    }

    #[test]
    fn to_f32_scales_to_unit_interval() {
        assert_eq!(Dataset::to_f32(&[0, 255, 51]), vec![0.0, 1.0, 0.2]);
    }
}
