#!/usr/bin/env bash
# The GPU check, in one go, on a machine with an NVIDIA GPU:
#   1. build latentlab with --features tch against PyTorch 2.9.0's libtorch
#   2. run the tests that touch CUDA (tests/backend.rs trains on cuda and
#      tests/fused.rs checks the fused ops' gradients on cuda when libtorch
#      sees a GPU) and the benchmarks on cuda
#   3. the seed recipe end to end (AE 10 epochs, U-Net 100 epochs, batch 64)
#      with latentlab and with the PyTorch twin, wall time and images/s of both
# Results go to $OUT (or ./gpu-results). Needs cargo and a Python whose torch
# is 2.9.0 with CUDA (PY=..., default: python3).
#   DATA_DIR=/path/to/mnist bench/gpu.sh     (default: the offline MNIST subset)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-results}; mkdir -p "$OUT"
PY=${PY:-python3}
DATA=(--data-dir "${DATA_DIR:-assets/mnist-subset}")
"$PY" -c 'import torch; assert torch.cuda.is_available(), "no CUDA"; print("torch", torch.__version__, torch.cuda.get_device_name(0))' | tee "$OUT/env.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee -a "$OUT/env.txt"

export LIBTORCH=$("$PY" -c 'import torch, os; print(os.path.dirname(torch.__file__))')
t0=$(date +%s)
cargo build --release --features tch --bin latentlab 2>&1 | tail -3
echo "build: $(( $(date +%s) - t0 )) s" | tee -a "$OUT/times.txt"
BIN=target/release/latentlab

cargo test --release --features tch --test backend --test training --test fused 2>&1 | tee "$OUT/tests.txt" | grep -E "test result|FAILED|panicked"

$BIN --backend tch --device cuda bench --batches 64,256 --full --json | tee "$OUT/bench-latentlab.json"
"$PY" bench/torch_twin.py bench --device cuda --batches 64,256 --full --json | tee "$OUT/bench-torch.json"

rm -rf runs/gpu-seed
t0=$(date +%s)
$BIN --backend tch --device cuda train --preset seed --run-dir runs/gpu-seed "${DATA[@]}" 2>&1 | tee "$OUT/seed-latentlab.log" | grep -E "epoch +(1|10|50|100):|finished"
echo "latentlab seed recipe: $(( $(date +%s) - t0 )) s" | tee -a "$OUT/times.txt"
t0=$(date +%s)
"$PY" bench/torch_twin.py train --device cuda "${DATA[@]}" 2>&1 | tee "$OUT/seed-torch.log" | tail -5
echo "PyTorch twin seed recipe: $(( $(date +%s) - t0 )) s" | tee -a "$OUT/times.txt"
$BIN --backend tch --device cuda eval --run runs/gpu-seed --samples 1000 --json "${DATA[@]}" | tee "$OUT/seed-eval.json"
cat "$OUT/times.txt"
