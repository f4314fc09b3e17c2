"""The paper's Fig. 3: ADIM's accuracy against ω_r, ω_s, ω_t, log10 ν and log10 µ (SPEC §7), on mnist5k.

  python -m experiments.sweep --config=experiments/configs/fig3.py --workdir=DIR

Each field is swept alone, the others at their defaults (ω's: the unswept
two share what the swept one leaves of 1): 23 points, two vmapped programs
of 12 per training size (``--chunk=16``). The paper's ranges are
ν ∈ (1e-3, 1e3) and µ ∈ (1e-4, 1e2), here one point per decade, at
n = 100, 1,000 and 10,000; mnist5k holds 5,000 digits, so its largest size
here is 3,000 (with 1,000 for validation). The schedule is the CPU one, 20
rounds after pretraining; `--config.rounds=40` or more on an accelerator.
"""

import ml_collections

from experiments.configs import mnist


def get_config() -> ml_collections.ConfigDict:
  c = mnist.get_config()
  c.method = 'adim'
  c.rounds = 20
  c.sweep = ml_collections.ConfigDict(
    {
      'specs': [
        'game.omega_r=lin:0.1:0.8:3',
        'game.omega_s=lin:0.1:0.8:3',
        'game.omega_t=lin:0.1:0.8:3',
        'game.nu=log:1e-3:1e3:7',
        'game.mu=log:1e-4:1e2:7',
      ],
      'combine': 'axes',
      'n_train': [100, 1000, 3000],
    }
  )
  return c
