"""The method registry: each method is a set of players, the weights of its terms and the terms of its losses.

A method is data, not a trainer: ``adjax.game`` builds every method's round
from these fields. Everything a method needs is declared here, next to it:
its players, its adversarial weights (constants or ``config.game`` fields),
which of those must sum to 1, their defaults, and its distillation term. The
config checks, the default config, sweeps and the CLI all read these
declarations. Code outside adjax adds a method with ``register_method`` (and
a new weight field with ``register_weight``, a new distillation term with
``register_distillation``): see ``tests/test_registry.py``.
"""

from collections.abc import Callable
import dataclasses
import functools

import jax
import jax.numpy as jnp
import ml_collections

from adjax import losses
from adjax import registry
from adjax import values

# Roles as indexed in the value functions (adjax.values / adjax.discriminators).
REAL, STUDENT, TEACHER = 0, 1, 2
ROLE = {'student': STUDENT, 'teacher': TEACHER}
# Algorithm 1's order within a round.
PLAYERS = ('discriminator', 'teacher', 'student')


@dataclasses.dataclass(frozen=True)
class Weight:
  """A weight field of ``config.game``: non-negative, an array in the state (so sweepable in one program).

  ``default`` None: the field is unset in the config and each method that
  reads it gives its own default (``Method.defaults``).
  """

  default: float | None
  doc: str


#: The game's weight fields (SPEC §3), ``config.game.<name>``. A field named in a method's ``adversarial`` triple
#: enters the state as part of ``hparams['weights']``; every other one as ``hparams[name]``.
WEIGHTS: dict[str, Weight] = {
  'omega_r': Weight(None, 'ω_r: weight of the real term of the multi-class value (ADIM)'),
  'omega_s': Weight(None, 'ω_s: weight of the student term of the value (ADIB, ADIM)'),
  'omega_t': Weight(None, 'ω_t: weight of the teacher term of the value (ADIB, ADIM)'),
  'nu': Weight(1.0, "ν: weight of the student's L_KD(p_t || p_s)"),
  'mu': Weight(1.0, "µ: weight of the teacher's L_KD(p_s || p_t)"),
  'upsilon': Weight(1.0, 'υ: weight of the label term inside L_KD'),
}


@dataclasses.dataclass(frozen=True)
class Distillation:
  """A generator's term towards the other generator's current outputs.

  Attributes:
    loss: ``(target_BxK, logits_BxK, y_B[, key], **fields) -> [B]``, the
      per-example term, unweighted. It takes a PRNG ``key`` when ``random``,
      and as keywords the weight fields it ``reads`` (arrays of the state's
      ``hparams``: swept values) and the ``options`` it reads (``config.game``
      fields, Python values bound when the game is built: ``bind``).
    weights: the weight field of each role (``{'student': 'nu', 'teacher':
      'mu'}``); a role not named is weighted 1.
    reads: other weight fields ``loss`` takes (``kd``: υ).
    options: the ``config.game`` fields ``loss`` takes (``kd``: the
      temperature and the form); never a swept field (those are ``reads``).
    random: ``loss`` takes a PRNG key (NOISY's noise).
    batch_divided: with ``game.divide_by_batch`` the term is divided by the
      batch size once more, as the authors' code does to DISTN, MIMIC and
      NOISY (SPEC §8).
  """

  loss: Callable
  weights: dict[str, str] = dataclasses.field(default_factory=dict)
  reads: tuple[str, ...] = ()
  options: tuple[str, ...] = ()
  random: bool = False
  batch_divided: bool = False

  def bind(self, game_config) -> Callable:
    """The term with its options bound: ``(target_BxK, logits_BxK, y_B, key, hp) -> [B]``."""
    loss = functools.partial(self.loss, **{name: game_config[name] for name in self.options})

    def term(target_BxK, logits_BxK, y_B, key, hp):
      return loss(target_BxK, logits_BxK, y_B, *([key] if self.random else []), **{r: hp[r] for r in self.reads})

    return term


def _kd(target_BxK, logits_BxK, y_B, *, upsilon, kd_temperature, distillation):
  return losses.distillation(target_BxK, logits_BxK, y_B, upsilon, kd_temperature, distillation)


def _hinton(target_BxK, logits_BxK, y_B, *, kd_temperature, distn_alpha, form='kl'):
  soft_B = losses.distillation(target_BxK, logits_BxK, y_B, 0.0, kd_temperature, form)
  return distn_alpha * soft_B + (1 - distn_alpha) * losses.cross_entropy(logits_BxK, y_B)


def _mimic(target_BxK, logits_BxK, y_B):
  return losses.distillation(target_BxK, logits_BxK, y_B, 0.0, form='l2')


def _noisy(target_BxK, logits_BxK, y_B, key, *, noisy_sigma):
  return _mimic(target_BxK + noisy_sigma * jax.random.normal(key, target_BxK.shape), logits_BxK, y_B)


def _noisy_multiplicative(target_BxK, logits_BxK, y_B, key, *, noisy_sigma, noisy_keep):
  k_mask, k_noise = jax.random.split(key)
  mask_BxK = jax.random.bernoulli(k_mask, noisy_keep, target_BxK.shape) / noisy_keep
  noise_BxK = noisy_sigma * jax.random.normal(k_noise, target_BxK.shape)
  return losses.distillation(target_BxK * (mask_BxK + noise_BxK), logits_BxK, y_B, 0.0, form='l2')


_HINTON = {'options': ('kd_temperature', 'distn_alpha'), 'batch_divided': True}
_NOISY = {'random': True, 'batch_divided': True}
#: The distillation terms a method names (``Method.distill``) and ``game.distill_terms`` replaces.
DISTILLATION: dict[str, Distillation] = {
  # ν L_KD(p_t||p_s), µ L_KD(p_s||p_t)
  'kd': Distillation(_kd, {'student': 'nu', 'teacher': 'mu'}, ('upsilon',), ('kd_temperature', 'distillation')),
  'hinton': Distillation(_hinton, **_HINTON),  # (1−α) CE + α T² KL
  'mimic': Distillation(_mimic, batch_divided=True),  # L2 on logits
  'noisy': Distillation(_noisy, options=('noisy_sigma',), **_NOISY),  # L2 on logits perturbed by Gaussian noise
  # The authors' code (SPEC §8), chosen with game.distill_terms: (1−α) CE + α T² MSE(z_t/T, z_s/T) (mean over
  # classes; T cancels) for DISTN; for NOISY, L2 to z_t ⊙ (m + ε), m a dropout mask (keep game.noisy_keep, scaled
  # by 1/keep: mean 1), ε ~ N(0, noisy_sigma²). SPEC gives neither the authors' keep nor their σ.
  'hinton_mse': Distillation(functools.partial(_hinton, form='mse'), **_HINTON),
  'noisy_multiplicative': Distillation(_noisy_multiplicative, options=('noisy_sigma', 'noisy_keep'), **_NOISY),
}


@dataclasses.dataclass(frozen=True)
class Method:
  """How one method trains.

  Attributes:
    players: the players it trains, a subset of ``PLAYERS``.
    discriminator: ``None`` or a key of ``values.DISCRIMINATOR_KINDS`` (``'binary'``, ``'multiclass'``).
    adversarial: ``(w_real, w_student, w_teacher)``, the weights of the
      adversarial terms (SPEC §3): each a constant or the name of a weight
      field of ``config.game`` (``WEIGHTS``).
    sum_to_one: weight fields whose values must sum to 1 (ADIB's ω_s, ω_t).
    defaults: the values of unset weight fields for this method.
    supervised: generators descend cross-entropy on the labels, nothing else.
    distill: the term a generator descends towards the other generator's
      current outputs, a key of ``DISTILLATION``; ``None`` for none.
    frozen: players present in the state but not trained by rounds (the
      pretrained teacher of two-phase baselines).
    estimator: forces a gradient estimator (else the config's).
  """

  players: tuple[str, ...]
  discriminator: str | None = None
  adversarial: tuple[float | str, float | str, float | str] = (0.0, 0.0, 0.0)
  sum_to_one: tuple[str, ...] = ()
  defaults: dict[str, float] = dataclasses.field(default_factory=dict)
  supervised: bool = False
  distill: str | None = None
  frozen: tuple[str, ...] = ()
  estimator: str | None = None

  def __hash__(self):  # part of the key of compiled programs: hashed by what it declares
    fields = dataclasses.astuple(self)
    return hash(tuple(tuple(sorted(f.items())) if isinstance(f, dict) else f for f in fields))

  @property
  def present(self) -> tuple[str, ...]:
    """Every player in the state, in Algorithm 1's order."""
    return tuple(p for p in PLAYERS if p in self.players or p in self.frozen)

  def weight_fields(self) -> tuple[str, ...]:
    """The weight fields this method reads: its adversarial ones and its distillation term's."""
    adversarial = [w for w in self.adversarial if isinstance(w, str)]
    term = DISTILLATION[self.distill] if self.distill else None
    distill = [*term.weights.values(), *term.reads] if term else []
    return tuple(dict.fromkeys(adversarial + distill))

  def weights(self, game_config) -> tuple[float, float, float]:
    """``(w_real, w_student, w_teacher)`` of a validated config."""
    return tuple(float(game_config[w]) if isinstance(w, str) else float(w) for w in self.adversarial)


_TWO_PHASE = {'players': ('student',), 'frozen': ('teacher',)}
_ADIM = {
  'discriminator': 'multiclass',
  'adversarial': ('omega_r', 'omega_s', 'omega_t'),
  'sum_to_one': ('omega_r', 'omega_s', 'omega_t'),
  'defaults': {'omega_r': 1 / 3, 'omega_s': 1 / 3, 'omega_t': 1 / 3},
  'distill': 'kd',
}

#: The methods by ``config.method``: the paper's, its baselines and any registered one.
METHODS: dict[str, Method] = {
  'student': Method(players=('student',), supervised=True),
  'teacher': Method(players=('teacher',), supervised=True),
  # Two-phase baselines: the teacher is trained first (pretrain.frozen_teacher steps), then frozen.
  'distn': Method(**_TWO_PHASE, distill='hinton'),
  'mimic': Method(**_TWO_PHASE, distill='mimic'),
  'noisy': Method(**_TWO_PHASE, distill='noisy'),
  # Codistillation: both trained together, each with CE + KL to the other's current predictions.
  'codis': Method(players=('teacher', 'student'), distill='kd'),
  'ngan': Method(players=('discriminator', 'student'), discriminator='binary', adversarial=(1.0, 1.0, 0.0)),
  'adib': Method(
    players=PLAYERS,
    discriminator='binary',
    adversarial=(1.0, 'omega_s', 'omega_t'),
    sum_to_one=('omega_s', 'omega_t'),
    defaults={'omega_s': 0.5, 'omega_t': 0.5},
    distill='kd',
  ),
  'adim': Method(players=PLAYERS, **_ADIM),
  'adim_ngs': Method(players=PLAYERS, **_ADIM, estimator='reinforce'),
}


def register_weight(name: str, default: float | None, doc: str) -> None:
  """Adds a weight field ``config.game.<name>`` (before the config is built: ``adjax.default_config``)."""
  if registry.is_new('weight', WEIGHTS, name, Weight(default, doc)):
    WEIGHTS[name] = Weight(default, doc)


def register_distillation(name: str, term: Distillation) -> None:
  """Adds a distillation term that methods can name in ``Method.distill``."""
  if not registry.is_new('distillation term', DISTILLATION, name, term):
    return
  for field in (*term.weights.values(), *term.reads):
    if field not in WEIGHTS:
      raise ValueError(f'distillation term {name!r} reads game.{field}, which is not a registered weight')
  for option in term.options:  # bound as a Python value: a swept weight would keep its base value at every point
    if option in WEIGHTS:
      raise ValueError(f'distillation term {name!r}: option game.{option} is a weight (an array in the state); '
                       'name it in reads, not options')  # fmt: skip
  DISTILLATION[name] = term


def resolved(method: Method, game_config: ml_collections.ConfigDict) -> Method:
  """``method`` with its distillation term replaced as ``game.distill_terms`` says (``{term: replacement}``; a term
  not named there stays)."""
  replace = game_config.get('distill_terms') or {}
  if method.distill is None or replace.get(method.distill, method.distill) == method.distill:
    return method
  return dataclasses.replace(method, distill=replace[method.distill])


def register_method(name: str, method: Method) -> Method:
  """Adds a method under ``name`` (``config.method``); its weight fields must be registered first."""
  if not registry.is_new('method', METHODS, name, method):
    return method
  for player in method.present:
    if player not in PLAYERS:
      raise ValueError(f'method {name!r}: player {player!r} is not one of {", ".join(PLAYERS)}')
  kinds = tuple(values.DISCRIMINATOR_KINDS)
  if method.discriminator not in (None, *kinds):
    raise ValueError(f'method {name!r}: discriminator={method.discriminator!r} is not None or one of {kinds}')
  if (method.discriminator is None) != ('discriminator' not in method.players):
    raise ValueError(f'method {name!r}: a discriminator kind goes with a trained discriminator player, and only then')
  if method.distill is not None and method.distill not in DISTILLATION:
    raise ValueError(f'method {name!r}: distill={method.distill!r} is not one of {", ".join(DISTILLATION)}')
  for field in (*method.weight_fields(), *method.sum_to_one, *method.defaults):
    if field not in WEIGHTS:
      raise ValueError(f'method {name!r} reads game.{field}: register it first with register_weight')
  METHODS[name] = method
  return method


def scalar_weights() -> tuple[str, ...]:
  """Weight fields that enter the state as ``hparams[name]``: those no method uses only in its adversarial triple
  (those enter through ``hparams['weights']``), and every field a distillation term reads."""
  adversarial = {w for m in METHODS.values() for w in m.adversarial if isinstance(w, str)}
  read = {w for t in DISTILLATION.values() for w in (*t.weights.values(), *t.reads)}
  return tuple(w for w in WEIGHTS if w not in adversarial or w in read)


def hyperparameters(method: Method, game_config) -> dict[str, jax.Array]:
  """A method's weights as the arrays the programs read: ``weights`` ``[3]`` and each scalar weight field."""
  out = {'weights': jnp.asarray(method.weights(game_config), jnp.float32)}
  for name in scalar_weights():
    value = game_config.get(name)
    out[name] = jnp.asarray(0.0 if value is None else value, jnp.float32)
  return out
