#!/usr/bin/env bash
# ADIM and ADIB at n = 100 under the CPU schedule (mnist.py: 40 rounds of 20 / 10 / 10 updates), adjax's defaults and
# the authors' conditions, 5 seeds, with the equilibrium diagnostics: what results/paper_schedule's figures are drawn
# beside. The same seeds as the first 5 of results/ablation's cells (their picked accuracies are equal). Resumable.
set -euo pipefail
cd "$(dirname "$0")/../.."
python -m experiments.ablation --num_seeds=5 --workdir=results/cpu_schedule --conditions=defaults,authors --methods=adim,adib
