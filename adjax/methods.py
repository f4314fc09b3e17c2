"""The method table: each method is a set of players and the terms of their losses.

A method is data, not a trainer: ``adjax.game`` builds every method's round
from these fields. Adding a method is adding a row (and, for a new kind of
loss term, a branch in ``adjax.game.generator_loss``).
"""

from collections.abc import Callable
import dataclasses

import ml_collections

# Roles as indexed in the value functions (adjax.values / adjax.discriminators).
REAL, STUDENT, TEACHER = 0, 1, 2
ROLE = {'student': STUDENT, 'teacher': TEACHER}
# Algorithm 1's order within a round.
PLAYERS = ('discriminator', 'teacher', 'student')


@dataclasses.dataclass(frozen=True)
class Method:
  """How one method trains.

  Attributes:
    players: the players it trains, a subset of ``PLAYERS``.
    discriminator: ``None``, ``'binary'`` or ``'multiclass'``.
    weights: maps the game config to ``(w_real, w_student, w_teacher)``, the
      weights of the adversarial terms (SPEC §3).
    supervised: generators descend cross-entropy on the labels, nothing else.
    distill: the term a generator descends towards the other generator's
      current outputs, one of ``DISTILL_TERMS``: ``'kd'`` (student
      ``ν L_KD(p_t||p_s)``, teacher ``µ L_KD(p_s||p_t)``), ``'hinton'``
      (``(1−α) CE + α T² KL``), ``'mimic'`` (L2 on logits), ``'noisy'`` (L2 on
      logits perturbed by Gaussian noise); ``None`` for none.
    frozen: players present in the state but not trained by rounds (the
      pretrained teacher of two-phase baselines).
    estimator: forces a gradient estimator (else the config's).
  """

  players: tuple[str, ...]
  discriminator: str | None = None
  weights: Callable[[ml_collections.ConfigDict], tuple[float, float, float]] = lambda g: (0.0, 0.0, 0.0)
  supervised: bool = False
  distill: str | None = None
  frozen: tuple[str, ...] = ()
  estimator: str | None = None

  @property
  def present(self) -> tuple[str, ...]:
    """Every player in the state, in Algorithm 1's order."""
    return tuple(p for p in PLAYERS if p in self.players or p in self.frozen)


def _adim_weights(g):
  return (g.omega_r, g.omega_s, g.omega_t)


DISTILL_TERMS = ('kd', 'hinton', 'mimic', 'noisy')
_TWO_PHASE = {'players': ('student',), 'frozen': ('teacher',)}

METHODS: dict[str, Method] = {
  'student': Method(players=('student',), supervised=True),
  'teacher': Method(players=('teacher',), supervised=True),
  # Two-phase baselines: the teacher is trained first (pretrain.frozen_teacher steps), then frozen.
  'distn': Method(**_TWO_PHASE, distill='hinton'),
  'mimic': Method(**_TWO_PHASE, distill='mimic'),
  'noisy': Method(**_TWO_PHASE, distill='noisy'),
  # Codistillation: both trained together, each with CE + KL to the other's current predictions.
  'codis': Method(players=('teacher', 'student'), distill='kd'),
  'ngan': Method(players=('discriminator', 'student'), discriminator='binary', weights=lambda g: (1.0, 1.0, 0.0)),
  'adib': Method(players=PLAYERS, discriminator='binary', weights=lambda g: (1.0, g.omega_s, g.omega_t), distill='kd'),
  'adim': Method(players=PLAYERS, discriminator='multiclass', weights=_adim_weights, distill='kd'),
  'adim_ngs': Method(
    players=PLAYERS, discriminator='multiclass', weights=_adim_weights, distill='kd', estimator='reinforce'
  ),
}

# Weights each adversarial method uses when the config leaves them unset.
DEFAULT_OMEGAS = {
  'adib': {'omega_s': 0.5, 'omega_t': 0.5},
  'adim': {'omega_r': 1 / 3, 'omega_s': 1 / 3, 'omega_t': 1 / 3},
  'adim_ngs': {'omega_r': 1 / 3, 'omega_s': 1 / 3, 'omega_t': 1 / 3},
}
