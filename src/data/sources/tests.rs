use std::cell::RefCell;
use std::collections::HashMap;
use std::fs;
use std::io::{self, Read};

use sha2::{Digest, Sha256};

use super::catalogue::{FASHION_FILES, MNIST_FILES};
use super::download::{Fetcher, download_one, hex};
use super::*;
use crate::data::Dataset;
use crate::data::idx::{self, IdxImages, encode_images, encode_labels, gzip_bytes};

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
    let mean = Dataset::to_f32(&ds.train_images).iter().sum::<f32>() / ds.train_images.len() as f32;
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
