r"""The authors' conditions (SPEC §8): where the public KDGAN code differs from the paper's equations, all turned on.

  python -m experiments.main --config=experiments/configs/mnist_authors.py --config.method=ngan --workdir=DIR
  python -m experiments.ablation --workdir=DIR        # the n = 100 row under each condition of CONDITIONS

Each difference is an option of adjax, off by default:

- ``game.estimator=authors``: the generators' adversarial update is a sigmoid
  cross-entropy pulling the logit at a sampled label towards the
  discriminator's probability of the generator's wanted outcome (NGAN, ADIB,
  ADIM), not a REINFORCE surrogate of the value.
- ``game.distill_terms.hinton=hinton_mse``: DISTN's soft term is an MSE of
  temperature-scaled logits, not a KL.
- ``game.distill_terms.noisy=noisy_multiplicative``: NOISY multiplies the
  teacher's logits by a dropout mask plus Gaussian noise instead of adding noise.
- ``game.divide_by_batch``: cross-entropy and DISTN / MIMIC / NOISY's terms
  divided by the batch size a second time.

Their optimisers, learning rates, weight decay and augmentation (SPEC §5:
Adam 1e-3 for D, 5e-4 for S and T, 4e-5, small rotations / shifts / zooms)
are adjax's defaults already. The schedule: the argument ``cpu`` (default)
keeps the CPU schedule of ``mnist.py`` (k in updates, 40 rounds); an integer
``N`` takes the authors' schedule in passes for ``n_train = N``
(``mnist_paper.py``: 10 to 100 times the updates, for accelerators).

Not an option here (named in the docs, "Why the ordering differs"): the discriminator of the code read
scores the student's samples only, and its temperature is not clamped.
"""

import ml_collections

from adjax import sweeps
from experiments.configs import mnist
from experiments.configs import mnist_paper

# Each difference alone, as config overrides (dotted field -> value); AUTHORS is all of them.
DIFFERENCES = {
  'authors_update': {'game.estimator': 'authors'},
  'distn_mse': {'game.distill_terms.hinton': 'hinton_mse'},
  'noisy_multiplicative': {'game.distill_terms.noisy': 'noisy_multiplicative'},
  'divide_by_batch': {'game.divide_by_batch': True},
}
AUTHORS = {k: v for overrides in DIFFERENCES.values() for k, v in overrides.items()}
# The ablation's conditions, in the order of its table: adjax's defaults, the authors' conditions together, each
# difference alone, and the non-saturating generator reward (standard GAN practice, not the authors').
CONDITIONS = {
  'defaults': {},
  'authors': AUTHORS,
  **DIFFERENCES,
  'non_saturating': {'game.generator_reward': 'non_saturating'},
}


def get_config(schedule: str = 'cpu') -> ml_collections.ConfigDict:
  if schedule == 'cpu':
    base = mnist.get_config()
  elif schedule.isdigit():
    base = mnist_paper.get_config(schedule)
  else:
    raise ValueError(f"mnist_authors.py:{schedule}: give 'cpu' or a training size N (the authors' schedule for N)")
  return sweeps.with_overrides(base, AUTHORS)
