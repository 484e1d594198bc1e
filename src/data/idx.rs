//! Strict parser and encoder for the IDX format used by MNIST and
//! Fashion-MNIST (http://yann.lecun.com/exdb/mnist/, "FILE FORMATS").
//!
//! Images: big-endian u32 magic 0x00000803, count, rows, cols, then
//! count*rows*cols bytes. Labels: magic 0x00000801, count, then count bytes.
//! Gzip input is detected by its 1f 8b magic and decompressed first.
//! Anything that does not match the header exactly is rejected, because a
//! half-downloaded or mislabelled file would otherwise train silently on
//! garbage.

use std::borrow::Cow;
use std::io::{Read, Write};
use std::path::Path;

use super::error::DataError;

pub const IMAGES_MAGIC: u32 = 0x0000_0803;
pub const LABELS_MAGIC: u32 = 0x0000_0801;
/// Sanity limits: far above MNIST (60,000 x 28 x 28) yet small enough that a
/// garbage header cannot make us allocate absurd amounts of memory.
pub const MAX_ITEMS: u32 = 10_000_000;
pub const MAX_SIDE: u32 = 4096;
/// Upper bound on decompressed size (MNIST train images: 47 MB).
pub const MAX_DECOMPRESSED: u64 = 1 << 30;

const IMAGES_HEADER: usize = 16;
const LABELS_HEADER: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    /// count * rows * cols bytes, image after image, row-major.
    pub pixels: Vec<u8>,
}

/// True if `bytes` starts with the gzip magic.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// Returns the IDX bytes, decompressing gzip input (including multi-member
/// streams). Truncated or corrupt streams are errors naming `source`.
pub fn maybe_gunzip<'a>(bytes: &'a [u8], source: &Path) -> Result<Cow<'a, [u8]>, DataError> {
    if !is_gzip(bytes) {
        return Ok(Cow::Borrowed(bytes));
    }
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .take(MAX_DECOMPRESSED + 1)
        .read_to_end(&mut out)
        .map_err(|e| DataError::Gzip {
            path: source.to_path_buf(),
            source: e,
        })?;
    if out.len() as u64 > MAX_DECOMPRESSED {
        return Err(DataError::TooLarge {
            path: source.to_path_buf(),
            limit: MAX_DECOMPRESSED,
        });
    }
    Ok(Cow::Owned(out))
}

/// Gzip `raw` with mtime 0 and no file name, so output is reproducible.
pub fn gzip_bytes(raw: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    enc.write_all(raw)?;
    enc.finish()
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// A guess at what a file with the wrong magic actually is, for the error.
fn magic_hint(bytes: &[u8], found: u32) -> String {
    let head = &bytes[..bytes.len().min(16)];
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    if found == IMAGES_MAGIC {
        " (that is an image file; are the file names swapped?)".into()
    } else if found == LABELS_MAGIC {
        " (that is a label file; are the file names swapped?)".into()
    } else if text.starts_with("<!doc") || text.starts_with("<html") || text.starts_with("<?xml") {
        " (it looks like an HTML/XML page, probably a failed download)".into()
    } else {
        String::new()
    }
}

/// Checks magic and header length; returns the decompressed bytes.
fn header<'a>(
    bytes: &'a [u8],
    source: &Path,
    magic: u32,
    what: &'static str,
    header_len: usize,
) -> Result<Cow<'a, [u8]>, DataError> {
    let data = maybe_gunzip(bytes, source)?;
    if data.len() >= 4 {
        let found = be_u32(&data, 0);
        if found != magic {
            return Err(DataError::BadMagic {
                path: source.to_path_buf(),
                what,
                expected: magic,
                found,
                hint: magic_hint(&data, found),
            });
        }
    }
    if data.len() < header_len {
        return Err(DataError::TruncatedHeader {
            path: source.to_path_buf(),
            expected: header_len,
            found: data.len(),
        });
    }
    Ok(data)
}

/// Checks the body length against the header: exact match required.
fn check_body(
    source: &Path,
    what: &'static str,
    expected: u64,
    found: u64,
) -> Result<(), DataError> {
    if found < expected {
        return Err(DataError::Truncated {
            path: source.to_path_buf(),
            what,
            expected,
            found,
        });
    }
    if found > expected {
        return Err(DataError::TrailingBytes {
            path: source.to_path_buf(),
            expected,
            extra: found - expected,
        });
    }
    Ok(())
}

fn check_count(source: &Path, count: u32) -> Result<(), DataError> {
    if count == 0 || count > MAX_ITEMS {
        return Err(DataError::BadDimensions {
            path: source.to_path_buf(),
            detail: format!("item count {count} is outside 1..={MAX_ITEMS}"),
        });
    }
    Ok(())
}

/// Parses an IDX image file (raw or gzip). `source` is only used in errors.
pub fn parse_images(bytes: &[u8], source: &Path) -> Result<IdxImages, DataError> {
    let data = header(bytes, source, IMAGES_MAGIC, "image", IMAGES_HEADER)?;
    let (count, rows, cols) = (be_u32(&data, 4), be_u32(&data, 8), be_u32(&data, 12));
    check_count(source, count)?;
    for (name, v) in [("rows", rows), ("cols", cols)] {
        if v == 0 || v > MAX_SIDE {
            return Err(DataError::BadDimensions {
                path: source.to_path_buf(),
                detail: format!("{name} = {v} is outside 1..={MAX_SIDE}"),
            });
        }
    }
    // u64 cannot overflow: 1e7 * 4096 * 4096 < 2^64.
    let expected = u64::from(count) * u64::from(rows) * u64::from(cols);
    check_body(
        source,
        "pixel",
        expected,
        (data.len() - IMAGES_HEADER) as u64,
    )?;
    // Reuse the decompression buffer instead of copying 47 MB again.
    let pixels = match data {
        Cow::Owned(mut v) => {
            v.drain(..IMAGES_HEADER);
            v
        }
        Cow::Borrowed(b) => b[IMAGES_HEADER..].to_vec(),
    };
    Ok(IdxImages {
        count: count as usize,
        rows: rows as usize,
        cols: cols as usize,
        pixels,
    })
}

/// Parses an IDX label file (raw or gzip); every label must be 0..=9.
pub fn parse_labels(bytes: &[u8], source: &Path) -> Result<Vec<u8>, DataError> {
    let data = header(bytes, source, LABELS_MAGIC, "label", LABELS_HEADER)?;
    let count = be_u32(&data, 4);
    check_count(source, count)?;
    let body = &data[LABELS_HEADER..];
    check_body(source, "label", u64::from(count), body.len() as u64)?;
    if let Some((index, &value)) = body.iter().enumerate().find(|&(_, &v)| v > 9) {
        return Err(DataError::BadLabel {
            path: source.to_path_buf(),
            index,
            value,
        });
    }
    Ok(body.to_vec())
}

/// Raw (uncompressed) IDX bytes for `images`. The header is written from the
/// struct fields as given, so inconsistent values produce a file the parser
/// rejects (useful for tests).
pub fn encode_images(images: &IdxImages) -> Vec<u8> {
    let mut out = Vec::with_capacity(IMAGES_HEADER + images.pixels.len());
    out.extend_from_slice(&IMAGES_MAGIC.to_be_bytes());
    for v in [images.count, images.rows, images.cols] {
        out.extend_from_slice(&(v as u32).to_be_bytes());
    }
    out.extend_from_slice(&images.pixels);
    out
}

/// Raw (uncompressed) IDX bytes for `labels`.
pub fn encode_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(LABELS_HEADER + labels.len());
    out.extend_from_slice(&LABELS_MAGIC.to_be_bytes());
    out.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    out.extend_from_slice(labels);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("/data/test-file")
    }

    fn sample() -> IdxImages {
        IdxImages {
            count: 3,
            rows: 2,
            cols: 4,
            pixels: (0..24).map(|i| (i * 10) as u8).collect(),
        }
    }

    #[test]
    fn round_trip_images_and_labels() {
        let img = sample();
        assert_eq!(parse_images(&encode_images(&img), p()).unwrap(), img);
        let labels = vec![0, 9, 3, 7];
        assert_eq!(parse_labels(&encode_labels(&labels), p()).unwrap(), labels);
    }

    #[test]
    fn gz_round_trip() {
        let img = sample();
        let gz = gzip_bytes(&encode_images(&img)).unwrap();
        assert!(is_gzip(&gz));
        assert_eq!(parse_images(&gz, p()).unwrap(), img);
        let gz = gzip_bytes(&encode_labels(&[1, 2, 3])).unwrap();
        assert_eq!(parse_labels(&gz, p()).unwrap(), vec![1, 2, 3]);
        // Reproducible: same input, same bytes (mtime 0, no name).
        assert_eq!(gzip_bytes(b"abc").unwrap(), gzip_bytes(b"abc").unwrap());
    }

    #[test]
    fn multi_member_gzip_is_accepted() {
        let raw = encode_labels(&[4, 5, 6, 7]);
        let mut gz = gzip_bytes(&raw[..5]).unwrap();
        gz.extend(gzip_bytes(&raw[5..]).unwrap());
        assert_eq!(parse_labels(&gz, p()).unwrap(), vec![4, 5, 6, 7]);
    }

    #[test]
    fn corrupt_gz_is_an_error_naming_the_file() {
        let gz = gzip_bytes(&encode_images(&sample())).unwrap();
        // Cut off mid-stream.
        let err = parse_images(&gz[..gz.len() / 2], p()).unwrap_err();
        assert!(matches!(err, DataError::Gzip { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("/data/test-file") && msg.contains("--data-dir"),
            "{msg}"
        );
        // Missing only the CRC/size trailer is still caught.
        let err = parse_images(&gz[..gz.len() - 4], p()).unwrap_err();
        assert!(matches!(err, DataError::Gzip { .. }), "{err:?}");
        // Garbage after a valid gzip header.
        let mut bad = gz[..10].to_vec();
        bad.extend_from_slice(&[0xff; 32]);
        assert!(matches!(
            parse_images(&bad, p()),
            Err(DataError::Gzip { .. })
        ));
    }

    #[test]
    fn bad_magic_says_what_was_found() {
        let mut bytes = encode_images(&sample());
        bytes[3] = 0x04;
        let msg = parse_images(&bytes, p()).unwrap_err().to_string();
        assert!(
            msg.contains("0x00000803") && msg.contains("0x00000804"),
            "{msg}"
        );
        assert!(msg.contains("/data/test-file"), "{msg}");

        // Label file passed as images: say so.
        let msg = parse_images(&encode_labels(&[1]), p())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("label file"), "{msg}");

        let msg = parse_labels(b"<!DOCTYPE html><html>", p())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("HTML"), "{msg}");
    }

    #[test]
    fn truncated_header() {
        let bytes = encode_images(&sample());
        for len in [0, 3, 4, 15] {
            let err = parse_images(&bytes[..len], p()).unwrap_err();
            assert!(
                matches!(err, DataError::TruncatedHeader { expected: 16, found, .. } if found == len),
                "{len}: {err:?}"
            );
        }
        let err = parse_labels(&encode_labels(&[1])[..7], p()).unwrap_err();
        assert!(matches!(
            err,
            DataError::TruncatedHeader {
                expected: 8,
                found: 7,
                ..
            }
        ));
    }

    #[test]
    fn truncated_body() {
        let bytes = encode_images(&sample());
        let msg = parse_images(&bytes[..bytes.len() - 5], p())
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("truncated: expected 24 bytes of pixel data, found 19"),
            "{msg}"
        );
        let bytes = encode_labels(&[1, 2, 3]);
        let err = parse_labels(&bytes[..bytes.len() - 1], p()).unwrap_err();
        assert!(matches!(
            err,
            DataError::Truncated {
                expected: 3,
                found: 2,
                ..
            }
        ));
    }

    #[test]
    fn trailing_bytes() {
        let mut bytes = encode_images(&sample());
        bytes.extend_from_slice(&[0, 0]);
        let err = parse_images(&bytes, p()).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::TrailingBytes {
                    expected: 24,
                    extra: 2,
                    ..
                }
            ),
            "{err:?}"
        );
        let mut bytes = encode_labels(&[1]);
        bytes.push(0);
        assert!(matches!(
            parse_labels(&bytes, p()),
            Err(DataError::TrailingBytes { extra: 1, .. })
        ));
    }

    #[test]
    fn label_10_is_rejected_with_index_and_value() {
        let err = parse_labels(&encode_labels(&[0, 9, 10, 3]), p()).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::BadLabel {
                    index: 2,
                    value: 10,
                    ..
                }
            ),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("label 10 at index 2"), "{msg}");
    }

    #[test]
    fn insane_dimensions_are_rejected() {
        let mut img = sample();
        img.count = 0;
        img.pixels.clear();
        assert!(matches!(
            parse_images(&encode_images(&img), p()),
            Err(DataError::BadDimensions { .. })
        ));
        let mut img = sample();
        img.rows = 5000;
        assert!(matches!(
            parse_images(&encode_images(&img), p()),
            Err(DataError::BadDimensions { .. })
        ));
        let mut img = sample();
        img.cols = 0;
        assert!(matches!(
            parse_images(&encode_images(&img), p()),
            Err(DataError::BadDimensions { .. })
        ));
        // A header claiming 4 billion items must not allocate; it fails fast.
        let mut bytes = encode_labels(&[1]);
        bytes[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            parse_labels(&bytes, p()),
            Err(DataError::BadDimensions { .. })
        ));
    }
}
