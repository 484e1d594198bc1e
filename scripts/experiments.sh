#!/usr/bin/env bash
# Reproduce the README's results table: train presets, then score
# reconstructions over the whole test split and 1,000 generated samples.
#   scripts/experiments.sh [PRESET ...]        (default: seed quick cosine)
# Extra flags for every `latentlab` call go in LATENTLAB_FLAGS (e.g.
# "--backend tch --device cuda"); DATA_DIR points at full MNIST if you have it.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/latentlab}
OUT=${OUT:-runs/experiments}
N=${N:-1000}
FLAGS=${LATENTLAB_FLAGS:-}
data_args=()
[ -n "${DATA_DIR:-}" ] && data_args=(--data-dir "$DATA_DIR")
mkdir -p "$OUT"
for preset in "${@:-seed quick cosine}"; do
  for p in $preset; do
    run="$OUT/$p"
    if [ -f "$run/checkpoint/state.json" ] && grep -q '"diffusion_done": true' "$run/checkpoint/state.json"; then
      echo "== $p: already trained"
    elif [ -d "$run" ]; then
      echo "== $p: resuming"; $BIN $FLAGS train --resume "$run" "${data_args[@]}"
    else
      echo "== $p: training"; /usr/bin/time -f "%e s wall" $BIN $FLAGS train --preset "$p" --run-dir "$run" "${data_args[@]}"
    fi
    # The run's own sampler (seed: DDPM-1000; the others: DDIM-50), fixed seed.
    $BIN $FLAGS eval --run "$run" --samples "$N" --seed 0 --json "${data_args[@]}" | tee "$run/eval.json"
  done
done
