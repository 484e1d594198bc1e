#!/usr/bin/env bash
# flex's kernels on aarch64 (NEON): cross-compiles the library's unit tests
# and tests/fused.rs (every kernel against Burn's own, bit-for-bit
# determinism across thread counts) and runs them under QEMU's user-mode
# aarch64 emulation. Checks results, not speed.
#
# rustup cannot fetch another target's standard library offline, so this
# builds with Debian's rustc-web (1.96, bookworm-updates), whose aarch64
# standard library is a Debian package (libstd-rust-web-dev:arm64), and
# links with Debian's aarch64 gcc; the tests run against Debian's arm64
# C library (libc6:arm64). Installs what it needs with apt.
#   scripts/aarch64_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=aarch64-unknown-linux-gnu
RUSTC_DEBIAN=/usr/bin/rustc
need=(rustc-web libstd-rust-web-dev:arm64 libc6:arm64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)
if ! dpkg -s "${need[@]}" >/dev/null 2>&1; then
  command -v apt-get >/dev/null || { echo "aarch64_check: needs Debian/Ubuntu's apt for: ${need[*]}" >&2; exit 1; }
  dpkg --add-architecture arm64
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
[ -d "/usr/lib/rustlib/$TARGET" ] || { echo "aarch64_check: no $TARGET standard library under /usr/lib/rustlib" >&2; exit 1; }

export RUSTC=$RUSTC_DEBIAN
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
# No -L /usr/aarch64-linux-gnu: the cross toolchain's loader with the
# multiarch C library hangs in the first pthread_create; the multiarch
# loader (/lib/ld-linux-aarch64.so.1) and library match.
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER=qemu-aarch64
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
echo "== $("$RUSTC" --version), target $TARGET, under qemu-aarch64 =="
# Its own target dir: a different compiler's artefacts must not mix with
# the main build's.
cargo test --release --target "$TARGET" --target-dir target/aarch64 \
  --no-default-features --features flex --lib --test fused -- --test-threads 2
