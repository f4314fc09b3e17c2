"""The paper's Fig. 6: the teacher's (and student's) accuracy against µ, µ = 0 included (SPEC §7), on mnist5k.

  python -m experiments.sweep --config=experiments/configs/fig6.py --workdir=DIR

µ weights the teacher's distillation term L_KD(p_s || p_t); µ = 0 leaves the
teacher only the adversarial game. ADIM, CPU schedule as in fig3.py.
"""

import ml_collections

from experiments.configs import fig3


def get_config() -> ml_collections.ConfigDict:
  c = fig3.get_config()
  c.sweep.specs = ['game.mu=0,1e-4,1e-3,1e-2,1e-1,1,10,100']
  c.sweep.n_train = [100, 1000]
  return c
