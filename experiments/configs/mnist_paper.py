r"""The authors' MNIST schedule (SPEC §5): k in passes over the training set, 100 rounds.

  python -m experiments.table1 --config=experiments/configs/mnist_paper.py:100 --n_train=100 --workdir=DIR
  python -m experiments.table1 --config=experiments/configs/mnist_paper.py:1000 --n_train=1000 \
      --num_seeds=3 --workdir=DIR

The argument after ``:`` is the training size the passes are counted for: a
round is k_d = 20, k_t = 10, k_s = 10 passes of batch 10, i.e. 200 / 100 / 100
updates at n = 100 and 2,000 / 1,000 / 1,000 at n = 1,000 — 10 to 100 times
the updates of the CPU default in ``mnist.py`` (20 / 10 / 10 updates, 40
rounds). Pretraining is counted in passes too (the authors' length is not
given): 10 for the student and the teacher, 2 for the discriminator, 50 for
the two-phase baselines' frozen teacher, i.e. 100 / 100 / 20 / 500 updates at
n = 100, against ``mnist.py``'s 400 / 400 / 100 / 2,000. At n = 100 an ADIM
seed fits a CPU (about 25 minutes on 2 cores).
"""

import ml_collections

from experiments.configs import mnist

PASSES = {'k_d': 20, 'k_t': 10, 'k_s': 10}


def get_config(n_train: str = '100') -> ml_collections.ConfigDict:
  c = mnist.get_config()
  c.n_train = int(n_train)
  updates_per_pass = max(1, c.n_train // c.batch_size)
  for k, passes in PASSES.items():
    c[k] = passes * updates_per_pass
  c.rounds = 100
  c.pretrain.update(
    {
      'student': 10 * updates_per_pass,
      'teacher': 10 * updates_per_pass,
      'discriminator': 2 * updates_per_pass,
      'frozen_teacher': 50 * updates_per_pass,
    }
  )
  return c
