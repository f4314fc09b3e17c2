#!/usr/bin/env bash
# Table 1 at n = 100 (CPU schedule) for STUDENT, DISTN and ADIM, 5 seeds, in float32 and in bfloat16: what
# config.precision=bfloat16 costs in accuracy. Resumable (finished cells are reused).
set -euo pipefail
cd "$(dirname "$0")/../.."
for precision in bfloat16 float32; do
  python -m experiments.table1 --n_train=100 --methods=student,distn,adim --num_seeds=5 --rounds=40 \
    --workdir=results/precision/$precision --config.precision=$precision
done
