#!/usr/bin/env bash
# flex's kernels on x86 CPUs without AVX-512: runs the kernel tests
# (tests/fused.rs: every kernel against Burn's, bit-for-bit determinism
# across thread counts) and the library's unit tests under QEMU's user-mode
# emulation of
#  - a Haswell (AVX2 + FMA, no AVX-512): the run-time dispatch takes the
#    AVX2 paths of gemm and of our kernels (multiversion!);
#  - a Nehalem (SSE4.2, no AVX): the baseline paths, the same portable Rust
#    that other architectures (aarch64) compile.
# Checks results, not speed.
#   scripts/cpu_check.sh            (after `cargo test --release`)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(uname -m)" != x86_64 ]; then
  echo "cpu_check: not an x86-64 machine; nothing to emulate"
  exit 0
fi
if ! command -v qemu-x86_64 >/dev/null; then
  if command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user >/dev/null 2>&1 ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user >/dev/null; }
  else
    echo "cpu_check: needs qemu-x86_64 (Debian/Ubuntu: apt-get install qemu-user)" >&2
    exit 1
  fi
fi

# The test executables cargo builds for the library and for tests/fused.rs.
binaries=$(cargo test --release --lib --test fused --no-run 2>&1 |
  sed -n 's/.*Executable .*(\(target\/[^)]*\)).*/\1/p')
[ -n "$binaries" ] || { echo "cpu_check: no test executables found" >&2; exit 1; }

for cpu in Haswell Nehalem; do
  for bin in $binaries; do
    echo "== $bin on an emulated $cpu =="
    # pipefail: a failing test fails the pipeline, and with it the script.
    qemu-x86_64 -cpu "$cpu" "$bin" --test-threads 2 2>&1 | grep -v "warning: TCG doesn't support"
  done
done
