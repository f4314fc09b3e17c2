"""Concrete samples, their density, and the generators' gradient estimators (SPEC §4).

A generator (student or teacher) descends ``E_{y ~ p_θ}[R(x, y)]``. Each
estimator returns a per-example *surrogate* whose gradient w.r.t. the
generator's logits is that estimator of the gradient, plus the reward values
(for baselines and logging). The reward function must be differentiable in
``y`` for ``pathwise`` and ``straight_through``.
"""

from collections.abc import Callable
import math

import jax
import jax.numpy as jnp

Reward = Callable[[jax.Array], jax.Array]  # y_BxK -> R_B

ESTIMATORS = ('reinforce', 'concrete_reinforce', 'pathwise', 'straight_through')
BASELINES = ('none', 'batch_mean', 'moving_average')


def temperature(round_: jax.Array | int, tau0: float, tau_min: float, decay: float, every: int) -> jax.Array:
  """``τ(r) = max(τ_min, τ0 · decay^⌊r / every⌋)``."""
  steps = jnp.floor_divide(jnp.asarray(round_), every)
  return jnp.maximum(tau_min, tau0 * jnp.power(decay, steps.astype(jnp.float32)))


def concrete_log_sample(key: jax.Array, log_p_BxK: jax.Array, tau: jax.Array | float) -> jax.Array:
  """``log ŷ = log_softmax((log p + g) / τ)``, ``g ~ Gumbel``: a log-space concrete sample."""
  g_BxK = jax.random.gumbel(key, log_p_BxK.shape, log_p_BxK.dtype)
  return jax.nn.log_softmax((log_p_BxK + g_BxK) / tau, axis=-1)


def exp_concrete_log_density(log_y_BxK: jax.Array, log_p_BxK: jax.Array, tau: jax.Array | float) -> jax.Array:
  """ExpConcrete log-density of ``l = log ŷ`` (Maddison, Mnih & Teh 2017), shape ``[B]``.

  ``log((K−1)!) + (K−1) log τ + Σ_k (log p_k − τ l_k) − K · logsumexp_k(log p_k − τ l_k)``.
  The form of Maddison et al. and TFP; as a Lebesgue density on ``l_1..l_{K−1}``
  it lacks ``− l_K``, a term that does not depend on the generator.
  """
  k = log_p_BxK.shape[-1]
  z_BxK = log_p_BxK - tau * log_y_BxK
  const = math.lgamma(k) + (k - 1) * jnp.log(tau)
  return const + jnp.sum(z_BxK, axis=-1) - k * jax.nn.logsumexp(z_BxK, axis=-1)


def surrogate(
  estimator: str,
  key: jax.Array,
  logits_BxK: jax.Array,
  reward_fn: Reward,
  tau: jax.Array | float,
  baseline: str = 'none',
  moving_average: jax.Array | float = 0.0,
) -> tuple[jax.Array, jax.Array]:
  """Per-example surrogate of ``E_{p_θ}[R]`` for ``estimator``, and the rewards.

  Args:
    estimator: one of ``ESTIMATORS``.
    key: PRNG key for the sample.
    logits_BxK: the generator's logits (differentiated).
    reward_fn: ``R(x, y)`` for the batch, ``y_BxK -> R_B``.
    tau: concrete temperature (unused by ``reinforce``).
    baseline: one of ``BASELINES``, subtracted from the reward of the
      score-function estimators (the pathwise ones need none).
    moving_average: the running mean of the reward, for ``'moving_average'``.

  Returns:
    ``(surrogate_B, reward_B)``; ``grad(mean(surrogate_B))`` is the estimate.
  """
  log_p_BxK = jax.nn.log_softmax(logits_BxK, axis=-1)
  if estimator == 'reinforce':
    y_B = jax.random.categorical(key, jax.lax.stop_gradient(log_p_BxK), axis=-1)
    reward_B = jax.lax.stop_gradient(reward_fn(jax.nn.one_hot(y_B, log_p_BxK.shape[-1], dtype=log_p_BxK.dtype)))
    log_q_B = jnp.take_along_axis(log_p_BxK, y_B[:, None], axis=-1)[:, 0]
    b = baseline_value(baseline, reward_B, moving_average)
    return (reward_B - b) * log_q_B, reward_B
  if estimator == 'concrete_reinforce':
    log_y_BxK = jax.lax.stop_gradient(concrete_log_sample(key, log_p_BxK, tau))
    reward_B = jax.lax.stop_gradient(reward_fn(jnp.exp(log_y_BxK)))
    b = baseline_value(baseline, reward_B, moving_average)
    return (reward_B - b) * exp_concrete_log_density(log_y_BxK, log_p_BxK, tau), reward_B
  if estimator in ('pathwise', 'straight_through'):
    y_BxK = jnp.exp(concrete_log_sample(key, log_p_BxK, tau))
    if estimator == 'straight_through':
      hard_BxK = jax.nn.one_hot(jnp.argmax(y_BxK, axis=-1), y_BxK.shape[-1], dtype=y_BxK.dtype)
      y_BxK = y_BxK + jax.lax.stop_gradient(hard_BxK - y_BxK)
    reward_B = reward_fn(y_BxK)
    return reward_B, jax.lax.stop_gradient(reward_B)
  raise ValueError(f'unknown estimator {estimator!r}; valid: {", ".join(ESTIMATORS)}')


def generator_sample(estimator: str, key: jax.Array, logits_BxK: jax.Array, tau: jax.Array | float) -> jax.Array:
  """The label vectors a generator shows the discriminator: one-hot for ``reinforce``, concrete otherwise.

  Uses the same key, hence the same draw, as ``surrogate`` would.
  """
  log_p_BxK = jax.nn.log_softmax(jax.lax.stop_gradient(logits_BxK), axis=-1)
  if estimator == 'reinforce':
    y_B = jax.random.categorical(key, log_p_BxK, axis=-1)
    return jax.nn.one_hot(y_B, log_p_BxK.shape[-1], dtype=log_p_BxK.dtype)
  y_BxK = jnp.exp(concrete_log_sample(key, log_p_BxK, tau))
  if estimator == 'straight_through':
    return jax.nn.one_hot(jnp.argmax(y_BxK, axis=-1), y_BxK.shape[-1], dtype=y_BxK.dtype)
  return y_BxK


def baseline_value(kind: str, reward_B: jax.Array, moving_average: jax.Array) -> jax.Array:
  """The baseline ``b`` subtracted from a score-function estimator's reward."""
  if kind == 'none':
    return jnp.zeros((), reward_B.dtype)
  if kind == 'batch_mean':
    return jax.lax.stop_gradient(jnp.mean(reward_B))
  if kind == 'moving_average':
    return jax.lax.stop_gradient(jnp.asarray(moving_average, reward_B.dtype))
  raise ValueError(f'unknown baseline {kind!r}; valid: {", ".join(BASELINES)}')


def update_moving_average(moving_average: jax.Array, reward_B: jax.Array, decay: float) -> jax.Array:
  return decay * moving_average + (1.0 - decay) * jnp.mean(reward_B)
