#!/usr/bin/env bash
# Table 1 at n = 100 under the paper's schedule (mnist_paper.py:100), 5 seeds a cell, and the authors' conditions.
# Resumable: run it again and finished cells are reused, an unfinished one resumes from its checkpoint.
set -euo pipefail
cd "$(dirname "$0")/../.."
W=results/paper_schedule
run() { python -m experiments.ablation --config=experiments/configs/mnist_paper.py:100 --num_seeds=5 --workdir=$W "$@"; }
run --conditions=defaults --methods=adim,mimic,distn,noisy,student,codis,adib,ngan,adim_ngs
run --conditions=authors_update --methods=ngan,adib,adim
# The best two baselines first (the shortest cells).
run --conditions=authors --methods=${AUTHORS_BASELINES:-codis,distn},adim,adib
# The table and each method's diagnostics figure from every stored cell, beside the CPU schedule's.
python -m experiments.ablation --config=experiments/configs/mnist_paper.py:100 --num_seeds=5 --workdir=$W \
  --conditions=defaults,authors_update,authors --table_only \
  --label='paper schedule' --beside='CPU schedule=results/cpu_schedule'
