"""Concrete samples, their density, and the generators' gradient estimators (SPEC §4).

A generator (student or teacher) descends ``E_{y ~ p_θ}[R(x, y)]``. Each
estimator returns a per-example *surrogate* whose gradient w.r.t. the
generator's logits is that estimator of the gradient, plus the reward values
(for baselines and logging). The reward function must be differentiable in
``y`` for ``pathwise`` and ``straight_through``.
"""

from collections.abc import Callable
import dataclasses
import math

import jax
import jax.numpy as jnp
import optax

from adjax import registry

Reward = Callable[[jax.Array], jax.Array]  # y_BxK -> R_B

BASELINES = ('none', 'batch_mean', 'moving_average')


def temperature(round_: jax.Array | int, tau0: float, tau_min: float, decay: float, every: int) -> jax.Array:
  """The concrete temperature of a round, ``τ(r) = max(τ_min, τ0 · decay^⌊r / every⌋)``.

  Args:
    round_: scalar int, the round ``r`` (0 in pretraining).
    tau0: scalar initial temperature (an array when swept).
    tau_min: the lowest temperature.
    decay: factor in (0, 1] applied every ``every`` rounds.
    every: rounds between decays.

  Returns:
    Scalar float32 ``τ(r)``.

  References:
    SPEC.md §4 (temperature schedule of Algorithm 1).
  """
  steps = jnp.floor_divide(jnp.asarray(round_), every)
  return jnp.maximum(tau_min, tau0 * jnp.power(decay, steps.astype(jnp.float32)))


def concrete_log_sample(key: jax.Array, log_p_BxK: jax.Array, tau: jax.Array | float) -> jax.Array:
  """A log-space concrete (Gumbel-softmax) sample, ``log ŷ = log_softmax((log p + g) / τ)``, ``g ~ Gumbel``.

  Args:
    key: PRNG key of the Gumbel noise.
    log_p_BxK: ``[B, K]`` log-probabilities of the generator.
    tau: scalar temperature > 0.

  Returns:
    ``[B, K]`` log of a point on the simplex (log space: no underflow at small τ).

  References:
    SPEC.md §4 (concrete samples); Maddison, Mnih & Teh (2017), Jang et al. (2017).
  """
  g_BxK = jax.random.gumbel(key, log_p_BxK.shape, log_p_BxK.dtype)
  return jax.nn.log_softmax((log_p_BxK + g_BxK) / tau, axis=-1)


def exp_concrete_log_density(log_y_BxK: jax.Array, log_p_BxK: jax.Array, tau: jax.Array | float) -> jax.Array:
  """ExpConcrete log-density of ``l = log ŷ`` (Maddison, Mnih & Teh 2017).

  Args:
    log_y_BxK: ``[B, K]`` a log-space concrete sample (``concrete_log_sample``).
    log_p_BxK: ``[B, K]`` the generator's log-probabilities (differentiated).
    tau: scalar temperature > 0.

  Returns:
    ``[B]`` log-densities; its gradient w.r.t. ``log_p_BxK`` is the score of
    the concrete-REINFORCE estimator (SPEC.md §4).

  ``log((K−1)!) + (K−1) log τ + Σ_k (log p_k − τ l_k) − K · logsumexp_k(log p_k − τ l_k)``.
  The form of Maddison et al. and TFP; as a Lebesgue density on ``l_1..l_{K−1}``
  it lacks ``− l_K``, a term that does not depend on the generator.
  """
  k = log_p_BxK.shape[-1]
  z_BxK = log_p_BxK - tau * log_y_BxK
  const = math.lgamma(k) + (k - 1) * jnp.log(tau)
  return const + jnp.sum(z_BxK, axis=-1) - k * jax.nn.logsumexp(z_BxK, axis=-1)


@dataclasses.dataclass(frozen=True)
class Estimator:
  """A gradient estimator of ``E_{y ~ p_θ}[R(y)]``.

  Attributes:
    surrogate: ``(key, log_p_BxK, reward_fn, tau, baseline_fn) -> (surrogate_B,
      reward_B)``: ``grad(mean(surrogate_B))`` w.r.t. the logits is the
      estimate; ``baseline_fn(reward_B) -> b`` gives the baseline of the
      score-function estimators.
    sample: ``(key, log_p_BxK, tau) -> y_BxK``: the label vectors the
      generator shows the discriminator, the same draw as ``surrogate``'s with
      the same key.
    takes_logits: ``surrogate`` gets the generator's logits instead of its
      log-probabilities (``log_p_BxK`` above): a loss of the raw logit.
    estimates_gradient: its gradient estimates that of ``E[R]`` (SPEC §4);
      False for an update of another form (``authors``), which
      gradient-variance benchmarks leave out by default.
  """

  surrogate: Callable
  sample: Callable
  takes_logits: bool = False
  estimates_gradient: bool = True


def _reinforce_sample(key, log_p_BxK, tau):
  del tau
  y_B = jax.random.categorical(key, jax.lax.stop_gradient(log_p_BxK), axis=-1)
  return jax.nn.one_hot(y_B, log_p_BxK.shape[-1], dtype=log_p_BxK.dtype)


def _reinforce(key, log_p_BxK, reward_fn, tau, baseline_fn):
  y_BxK = _reinforce_sample(key, log_p_BxK, tau)
  reward_B = jax.lax.stop_gradient(reward_fn(y_BxK))
  log_q_B = jnp.take_along_axis(log_p_BxK, jnp.argmax(y_BxK, axis=-1)[:, None], axis=-1)[:, 0]
  return (reward_B - baseline_fn(reward_B)) * log_q_B, reward_B


def _concrete_sample(key, log_p_BxK, tau):
  return jnp.exp(concrete_log_sample(key, jax.lax.stop_gradient(log_p_BxK), tau))


def _concrete_reinforce(key, log_p_BxK, reward_fn, tau, baseline_fn):
  log_y_BxK = jax.lax.stop_gradient(concrete_log_sample(key, log_p_BxK, tau))
  reward_B = jax.lax.stop_gradient(reward_fn(jnp.exp(log_y_BxK)))
  return (reward_B - baseline_fn(reward_B)) * exp_concrete_log_density(log_y_BxK, log_p_BxK, tau), reward_B


def _pathwise(key, log_p_BxK, reward_fn, tau, baseline_fn):
  del baseline_fn  # a pathwise gradient needs none
  reward_B = reward_fn(jnp.exp(concrete_log_sample(key, log_p_BxK, tau)))
  return reward_B, jax.lax.stop_gradient(reward_B)


def _hard(y_BxK):
  return jax.nn.one_hot(jnp.argmax(y_BxK, axis=-1), y_BxK.shape[-1], dtype=y_BxK.dtype)


def _straight_through_sample(key, log_p_BxK, tau):
  return _hard(_concrete_sample(key, log_p_BxK, tau))


def _straight_through(key, log_p_BxK, reward_fn, tau, baseline_fn):
  del baseline_fn
  y_BxK = jnp.exp(concrete_log_sample(key, log_p_BxK, tau))
  reward_B = reward_fn(y_BxK + jax.lax.stop_gradient(_hard(y_BxK) - y_BxK))
  return reward_B, jax.lax.stop_gradient(reward_B)


def _authors(key, logits_BxK, reward_fn, tau, baseline_fn):
  """The generator update of the authors' code (SPEC §8): a sigmoid cross-entropy pulling the logit at a sampled
  label towards the probability the discriminator gives the generator's wanted outcome."""
  del baseline_fn  # a regression target, no baseline
  y_BxK = _reinforce_sample(key, jax.nn.log_softmax(logits_BxK, axis=-1), tau)
  reward_B = jax.lax.stop_gradient(reward_fn(y_BxK))
  return optax.sigmoid_binary_cross_entropy(jnp.sum(logits_BxK * y_BxK, axis=-1), authors_target(reward_B)), reward_B


def authors_target(reward_B: jax.Array) -> jax.Array:
  """The authors' regression target: the probability of the outcome the generator wants.

  Args:
    reward_B: ``[B]`` the rewards ``R = log q`` the generator descends (``q``: ``1 − D`` of a binary discriminator,
      ``D_i`` of the multi-class one).

  Returns:
    ``[B]`` ``1 − q``, computed as ``−expm1(R)``: ``D`` for NGAN and ADIB, as in the authors' code; for ADIM,
    ``1 − D_i = D_r + D_other`` (adjax's extension: the code read scores the student against real labels only).
  """
  return -jnp.expm1(reward_B)


#: Estimators by ``config.game.estimator`` (SPEC §4; ``authors``: SPEC §8).
ESTIMATORS: dict[str, Estimator] = {
  'reinforce': Estimator(_reinforce, _reinforce_sample),
  'concrete_reinforce': Estimator(_concrete_reinforce, _concrete_sample),
  'pathwise': Estimator(_pathwise, _concrete_sample),
  'straight_through': Estimator(_straight_through, _straight_through_sample),
  'authors': Estimator(_authors, _reinforce_sample, takes_logits=True, estimates_gradient=False),
}


def register_estimator(name: str, estimator: Estimator) -> None:
  """Adds ``config.game.estimator=name``."""
  if registry.is_new('estimator', ESTIMATORS, name, estimator):
    ESTIMATORS[name] = estimator


def _lookup(estimator: str) -> Estimator:
  return registry.lookup('estimator', ESTIMATORS, estimator)


def surrogate(
  estimator: str,
  key: jax.Array,
  logits_BxK: jax.Array,
  reward_fn: Reward,
  tau: jax.Array | float,
  baseline: str = 'none',
  moving_average: jax.Array | float = 0.0,
  batch_axis: str | None = None,
) -> tuple[jax.Array, jax.Array]:
  """Per-example surrogate of ``E_{p_θ}[R]`` for ``estimator``, and the rewards.

  Args:
    estimator: a key of ``ESTIMATORS``.
    key: PRNG key for the sample.
    logits_BxK: ``[B, K]`` the generator's logits (differentiated).
    reward_fn: ``R(x, y)`` for the batch, ``y_BxK [B, K] -> R_B [B]``.
    tau: scalar concrete temperature (unused by ``reinforce``).
    baseline: one of ``BASELINES``, subtracted from the reward of the
      score-function estimators (the pathwise ones need none).
    moving_average: scalar running mean of the reward, for ``'moving_average'``.
    batch_axis: the mesh axis a minibatch is split over (data parallelism),
      so that ``'batch_mean'`` is the whole minibatch's mean.

  Returns:
    ``(surrogate_B [B], reward_B [B])``; ``grad(mean(surrogate_B))`` is the estimate.

  References:
    SPEC.md §4 (the estimators and baselines).
  """
  chosen = _lookup(estimator)
  inputs_BxK = logits_BxK if chosen.takes_logits else jax.nn.log_softmax(logits_BxK, axis=-1)
  baseline_fn = lambda reward_B: baseline_value(baseline, reward_B, moving_average, batch_axis)
  return chosen.surrogate(key, inputs_BxK, reward_fn, tau, baseline_fn)


def generator_sample(estimator: str, key: jax.Array, logits_BxK: jax.Array, tau: jax.Array | float) -> jax.Array:
  """The label vectors ``[B, K]`` a generator shows the discriminator: one-hot for ``reinforce`` and
  ``straight_through``, concrete otherwise.

  Uses the same key, hence the same draw, as ``surrogate`` would.
  """
  log_p_BxK = jax.nn.log_softmax(jax.lax.stop_gradient(logits_BxK), axis=-1)
  return _lookup(estimator).sample(key, log_p_BxK, tau)


def baseline_value(
  kind: str, reward_B: jax.Array, moving_average: jax.Array, batch_axis: str | None = None
) -> jax.Array:
  """The baseline ``b`` subtracted from a score-function estimator's reward (SPEC.md §4).

  Args:
    kind: one of ``BASELINES``: ``'none'`` (0), ``'batch_mean'`` (the batch's
      mean reward), ``'moving_average'`` (``moving_average``).
    reward_B: ``[B]`` rewards.
    moving_average: scalar running mean of the reward.
    batch_axis: a mesh axis the minibatch is split over: ``'batch_mean'``
      averages over all of it (``lax.pmean``).

  Returns:
    Scalar ``b``, with no gradient.
  """
  if kind == 'none':
    return jnp.zeros((), reward_B.dtype)
  if kind == 'batch_mean':
    mean = jnp.mean(reward_B)
    return jax.lax.stop_gradient(mean if batch_axis is None else jax.lax.pmean(mean, batch_axis))
  if kind == 'moving_average':
    return jax.lax.stop_gradient(jnp.asarray(moving_average, reward_B.dtype))
  raise ValueError(f'unknown baseline {kind!r}; valid: {", ".join(BASELINES)}')


def update_moving_average(moving_average: jax.Array, reward_B: jax.Array, decay: float) -> jax.Array:
  """``decay · moving_average + (1 − decay) · mean(reward_B)``: the running mean after one update (a scalar)."""
  return decay * moving_average + (1.0 - decay) * jnp.mean(reward_B)
