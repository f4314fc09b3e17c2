"""Trains one run of any adjax method; see experiments/configs/ for the configs.

  python -m experiments.main --config=experiments/configs/mnist.py --workdir=DIR \
      --config.method=adim --config.n_train=100 --config.seed=0 --config.rounds=30
"""

from absl import flags
from absl import logging
from ml_collections import config_flags

from adjax import train
from experiments import cli

_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints, event files and results.json.')
config_flags.DEFINE_config_file('config', None, 'Config file (a get_config() module).', lock_config=True)
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  del argv
  logging.set_verbosity(logging.INFO)
  with cli.reported():
    results = train.train_and_evaluate(flags.FLAGS.config, _WORKDIR.value)
  student = results['final']['student'] or results['final']['teacher']
  print(f'{results["method"]}: test accuracy {student["test_accuracy"]:.4f} (selected on validation)')


if __name__ == '__main__':
  cli.run(main)
