#!/bin/bash
# cFID of 1,000 samples per sampler, step count and seed (0, 1, 2) on one
# run: DDPM-1000, DDIM-10/20/50/100, DPM-Solver++-5/10/15/20/25. Prints one
# tab-separated row per eval: sampler steps seed cfid confidence
# class_entropy seconds. An eval already in RUN/evals/ is reused (its
# seconds column is "-"), so an interrupted sweep picks up where it stopped.
set -euo pipefail
BIN=${BIN:-target/release/latentlab}
THREADS=${THREADS:-2}
RUN=${1:?usage: scripts/sampler_sweep.sh RUN_DIR [SAMPLER:STEPS ...]}
shift
CONFIGS=("$@")
[ ${#CONFIGS[@]} -gt 0 ] || CONFIGS=(ddim:10 ddim:20 ddim:50 ddim:100 dpmpp:5 dpmpp:10
  dpmpp:15 dpmpp:20 dpmpp:25 ddpm:1000)
row() {
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["cfid"], d["confidence"], d["class_entropy"], sep="\t")' "$1"
}
for cfg in "${CONFIGS[@]}"; do
  sampler=${cfg%:*} steps=${cfg#*:}
  for seed in 0 1 2; do
    file="$RUN/evals/$sampler-$steps-$seed.json"
    secs=-
    if [ ! -f "$file" ]; then
      start=$(date +%s.%N)
      "$BIN" --threads "$THREADS" eval --run "$RUN" --samples 1000 --sampler "$sampler" \
        --steps "$steps" --seed "$seed" --json >/dev/null
      secs=$(python3 -c "import time; print(round(time.time() - $start, 1))")
    fi
    printf '%s\t%s\t%s\t%s\t%s\n' "$sampler" "$steps" "$seed" "$(row "$file")" "$secs"
  done
done
