"""Classification and distillation losses, per example and unreduced (SPEC §3)."""

import jax
import jax.numpy as jnp


def cross_entropy(logits_BxK: jax.Array, labels_B: jax.Array) -> jax.Array:
  """Cross-entropy ``-sum_y p_r(y|x) log p(y|x)`` against the real distribution: ``-log p(y|x)`` of integer labels
  (``p_r = e_y``), or, for multi-label examples, ``p_r`` uniform over each example's tags.

  Args:
    logits_BxK: ``[B, K]`` float logits of ``p(·|x)``.
    labels_B: ``[B]`` integer labels in ``{0..K-1}``, or ``[B, K]`` multi-hot tags (each row at least one).

  Returns:
    ``[B]`` loss of each example (unreduced).

  References:
    SPEC.md §3, the distillation loss (``KL(e_y || p_b) = -log p_b(y)``); §6, ``p_r`` of the tag task.
  """
  log_p_BxK = jax.nn.log_softmax(logits_BxK)
  if labels_B.ndim == 2:
    return -jnp.sum(real_distribution(labels_B) * log_p_BxK, axis=-1)
  return -jnp.take_along_axis(log_p_BxK, labels_B[:, None], axis=-1)[:, 0]


def real_distribution(tags_BxK: jax.Array) -> jax.Array:
  """``p_r(y|x)`` of multi-label examples: uniform over each example's tags (``[B, K]`` multi-hot)."""
  tags_BxK = tags_BxK.astype(jnp.float32)
  return tags_BxK / jnp.sum(tags_BxK, axis=-1, keepdims=True)


def real_log_probs(labels_B: jax.Array, num_classes: int) -> jax.Array:
  """``log p_r(y|x)`` ``[B, K]`` of integer labels (the one-hot label: ``-inf`` elsewhere) or of multi-hot tags
  (uniform over each example's tags)."""
  p_BxK = real_distribution(labels_B) if labels_B.ndim == 2 else jax.nn.one_hot(labels_B, num_classes)
  return jnp.where(p_BxK > 0, jnp.log(jnp.where(p_BxK > 0, p_BxK, 1.0)), -jnp.inf)


def entropy(log_p_BxK: jax.Array) -> jax.Array:
  """``H(p) = −Σ_y p log p`` per example ``[B]`` from log-probabilities; terms with ``p = 0`` count zero."""
  p_BxK = jnp.exp(log_p_BxK)
  return -jnp.sum(jnp.where(p_BxK > 0, p_BxK * log_p_BxK, 0.0), axis=-1)


def real_sample(key: jax.Array, labels_B: jax.Array, num_classes: int) -> jax.Array:
  """A one-hot real label ``[B, K]`` per example: the label itself, or a tag drawn from ``p_r`` (multi-label)."""
  if labels_B.ndim == 2:
    return jax.nn.one_hot(jax.random.categorical(key, jnp.log(real_distribution(labels_B))), num_classes)
  return jax.nn.one_hot(labels_B, num_classes)


def kl_divergence(target_log_p_BxK: jax.Array, log_q_BxK: jax.Array) -> jax.Array:
  """``KL(p || q)`` from log-probabilities; terms with ``p = 0`` count zero.

  The masking makes ``0 · log 0 = 0`` even where ``log p = -inf`` (e.g. a one-hot ``p_r``).

  Args:
    target_log_p_BxK: ``[B, K]`` float log-probabilities of the target ``p``.
    log_q_BxK: ``[B, K]`` float log-probabilities of ``q``.

  Returns:
    ``[B]`` divergence of each example. No ``stop_gradient``: gradients flow into both arguments.

  References:
    SPEC.md §3, the distillation loss ``L_KD``.
  """
  p_BxK = jnp.exp(target_log_p_BxK)
  terms = jnp.where(p_BxK > 0, p_BxK * (target_log_p_BxK - log_q_BxK), 0.0)
  return jnp.sum(terms, axis=-1)


# The forms of ``distillation``'s match term (``config.game.distillation``).
DISTILLATION_FORMS = ('kl', 'l2', 'mse')


def distillation(
  target_logits_BxK: jax.Array,
  learner_logits_BxK: jax.Array,
  labels_B: jax.Array,
  upsilon: float | jax.Array = 0.0,
  temperature: float | None = None,
  form: str = 'kl',
) -> jax.Array:
  """Distillation loss ``L_KD(p_a || p_b) = KL(p_a || p_b) + υ · KL(p_r || p_b)``, per example.

  The target ``p_a`` is held constant. Options: ``temperature`` gives Hinton's
  ``T² · KL(softmax(z_a/T) || softmax(z_b/T))``; ``form='l2'`` replaces the KL
  term with ``½ ||z_a − z_b||²`` on logits; ``form='mse'`` (DISTN in the
  authors' code, SPEC §8) with ``T² · mean_k (z_a/T − z_b/T)²``, which is
  ``mean_k (z_a − z_b)²``: T cancels.

  Args:
    target_logits_BxK: ``[B, K]`` float logits ``z_a`` of the target distribution ``p_a`` (wrapped in
      ``stop_gradient``).
    learner_logits_BxK: ``[B, K]`` float logits ``z_b`` of the learner ``p_b``.
    labels_B: ``[B]`` integer labels (``p_r = e_y``) or ``[B, K]`` multi-hot tags (``p_r`` uniform over them).
    upsilon: scalar weight ``υ`` of the label term (never tempered).
    temperature: optional scalar Hinton temperature ``T`` of the KL term; ``None`` means ``T = 1``. Ignored when
      ``form='l2'``.
    form: ``'kl'``, ``'l2'`` or ``'mse'``; anything else raises ``ValueError``.

  Returns:
    ``[B]`` loss of each example (unreduced).

  References:
    SPEC.md §3, the distillation loss ``L_KD`` and its temperature / logit-L2 options.
  """
  target_BxK = jax.lax.stop_gradient(target_logits_BxK)
  if form == 'l2':
    match_B = 0.5 * jnp.sum((target_BxK - learner_logits_BxK) ** 2, axis=-1)
  elif form == 'mse':
    t = 1.0 if temperature is None else temperature
    match_B = (t * t) * jnp.mean((target_BxK / t - learner_logits_BxK / t) ** 2, axis=-1)
  elif form == 'kl':
    t = 1.0 if temperature is None else temperature
    match_B = (t * t) * kl_divergence(jax.nn.log_softmax(target_BxK / t), jax.nn.log_softmax(learner_logits_BxK / t))
  else:
    raise ValueError(f'distillation form must be one of {", ".join(DISTILLATION_FORMS)}, got {form!r}')
  return match_B + upsilon * cross_entropy(learner_logits_BxK, labels_B)
