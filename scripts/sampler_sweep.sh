#!/bin/bash
# cFID of 1,000 samples, 3 seeds, per sampler and steps on the quick run.
BIN=${BIN:-target/release/latentlab}
RUN=${1:?usage: scripts/sampler_sweep.sh RUN_DIR}
for cfg in "ddim 10" "ddim 20" "ddim 50" "dpmpp 5" "dpmpp 10" "dpmpp 15" "dpmpp 20"; do
  set -- $cfg
  for seed in 0 1 2; do
    start=$(date +%s.%N)
    out=$($BIN --threads 2 eval --run $RUN --samples 1000 --sampler $1 --steps $2 --seed $seed --json 2>/dev/null)
    end=$(date +%s.%N)
    echo "$1 $2 $seed $(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["cfid"], d["confidence"], d["class_entropy"])') $(echo "$end - $start" | bc)"
  done
done
