r"""Trains one run of any adjax method; see experiments/configs/ for the configs (default: mnist.py).

  python -m experiments.main --config=experiments/configs/mnist.py --workdir=DIR \
      --config.method=adim --config.n_train=100 --config.seed=0 --config.rounds=30
"""

import os

from absl import flags
from absl import logging

from adjax import figures
from adjax import parallel
from adjax import train
from adjax.run import results as results_lib
from experiments import cli

_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints, event files and results.json.')
_CONFIG = cli.define_config(os.path.join(os.path.dirname(__file__), 'configs', 'mnist.py'))


def main(argv):
  del argv
  logging.set_verbosity(logging.INFO)
  with cli.reported():
    results = train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  if not parallel.is_writer():
    return
  player = 'student' if results['final']['student'] else 'teacher'
  final, metric, seeds = results['final'][player], results_lib.selected_figure(results), results['num_seeds']
  name = figures.test(metric)
  spread = f' ± {final[name + "_std"]:.4f} (std over {seeds} seeds)' if seeds > 1 else ''
  print(f'{results["method"]}: {player} test {metric} {final[name]:.4f}{spread}, selected on validation {metric}')


if __name__ == '__main__':
  cli.run(main)
