#!/bin/bash
# The accelerator benchmarks, as one script a session with a GPU runs as is (under 8 minutes on one H100):
#
#   bash benchmarks/device_suite.sh [OUT_DIR]          # default OUT_DIR: results/device
#   TINY=1 bash benchmarks/device_suite.sh OUT_DIR     # CPU-sized smoke run (tests/test_benchmarks.py runs it)
#
# Writes OUT_DIR/*.json: the round benchmark in float32 and bfloat16 with the PyTorch round (autocast for bfloat16) on
# the same device in the same run
# (round_time.json), sweep throughput for K = 1, 4, 16, 64 (sweep_throughput.json), gradient-variance draws per
# second (grad_variance/), sharding overhead and members per second per device count (scaling.json), the tag task's
# round and its LSTM share (tag_round.json), and, if time
# remains, the n = 100 row of Table 1 on the authors' schedule, 10 seeds (table1/).
#
# PYTHON (default python3) must have jax with the accelerator's plugin. Packages the machine lacks (the device image
# has jax, flax, optax, orbax and torch, not ml_collections, mlxtend or tensorboardX) travel as wheels in .whl/ and are
# installed to /tmp/site first; the docs' Speed page says how to fetch them.
set -euo pipefail
OUT=${1:-results/device}
PY=${PYTHON:-python3}
BUDGET=${BUDGET_S:-420}  # seconds; the optional Table 1 row starts only with time left
START=$(date +%s)
mkdir -p "$OUT"
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=.:${PYTHONPATH:-} PYTHONUNBUFFERED=1
"$PY" -c 'import jax; print("devices:", jax.devices())' | tee "$OUT/devices.txt"

TORCH=()
if "$PY" -c 'import torch' 2>/dev/null; then
  DEVICE=$("$PY" -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')
  TORCH=(--torch_python="$PY" --torch_device="$DEVICE")
fi

if [ -n "${TINY:-}" ]; then
  ROUND=(--tiny --methods=adim --batch_sizes=4 --repeats=1 --cycles=1)
  SWEEP=(--ks=1,2 --rounds=1 --config.n_train=20 --config.n_val=20 --config.k_d=1 --config.k_t=1 --config.k_s=1
         --config.student.model=mlp --config.teacher.model=mlp --config.discriminator.model=mlp)
  GRAD=(--rounds=1 --every=1 --draws=4 --draws_per_chunk=2 --omegas=0.5 --estimators=reinforce
        --config.n_train=20 --config.n_val=20 --config.k_d=1 --config.k_t=1 --config.k_s=1
        --config.pretrain.student=2 --config.pretrain.teacher=2 --config.pretrain.discriminator=2
        --config.student.model=mlp --config.teacher.model=mlp --config.discriminator.model=mlp)
  SCALING=(--tiny --members=2 --rounds=1 --repeats=1)
  TABLE=()
  TORCH=()
else
  ROUND=(--batch_sizes=10,64 --precisions=float32,bfloat16 --repeats=5 --cycles=2)
  SWEEP=(--ks=1,4,16,64 --rounds=2)
  GRAD=(--rounds=10 --every=5)
  SCALING=(--members=16 --rounds=2 --repeats=3)
  TABLE=(--config=experiments/configs/mnist_paper.py:100 --n_train=100 --num_seeds=10)
fi

"$PY" -m benchmarks.round_time "${ROUND[@]}" "${TORCH[@]}" --out="$OUT/round_time.json"
"$PY" -m benchmarks.sweep_throughput "${SWEEP[@]}" --out="$OUT/sweep_throughput.json"
"$PY" -m benchmarks.grad_variance "${GRAD[@]}" --out="$OUT/grad_variance"
"$PY" -m benchmarks.scaling "${SCALING[@]}" --out="$OUT/scaling.json"
if [ -z "${TINY:-}" ]; then
  "$PY" -m benchmarks.tag_round --out="$OUT/tag_round.json"
fi
LEFT=$((BUDGET - ($(date +%s) - START)))
if [ ${#TABLE[@]} -gt 0 ] && [ "$LEFT" -gt 120 ]; then
  timeout "$LEFT" "$PY" -m experiments.table1 "${TABLE[@]}" --workdir="$OUT/table1" || echo "table1: stopped at the budget"
fi
echo "device suite: $(($(date +%s) - START)) s"
