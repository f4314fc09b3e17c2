"""Value functions of NGAN, ADIB and ADIM, exact and sampled (SPEC §3).

Every method's adversarial part is ``Σ_i ω_i E_{y~p_i}[log D_i(x, y)]`` over the
roles ``i ∈ {real, student, teacher}``, where ``log D_i`` is

* binary discriminator (NGAN, ADIB): ``log D`` for real, ``log(1 − D)`` for both
  generators, with weights ``(1, 1, 0)`` (NGAN) or ``(1, ω_s, ω_t)`` (ADIB);
* multi-class discriminator (ADIM): ``log D_r, log D_s, log D_t``, weights ``(ω_r, ω_s, ω_t)``.

The *sampled* form evaluates each role at one label vector per example (what
training uses); the *exact* form enumerates the labels and weights them by
``p_i`` (for theory, tests and small K).
"""

import jax
import jax.numpy as jnp

from adjax import discriminators
from adjax import losses

DISCRIMINATOR_KINDS = ('binary', 'multiclass')


def role_log_probs(kind: str, h: jax.Array, y_BxK: jax.Array) -> jax.Array:
  """``[B, 3]``: the term of each role (real, student, teacher) at label vectors ``y``.

  Args:
    kind: ``'binary'`` (``h`` is ``[B, K]``) or ``'multiclass'`` (``h`` is ``[B, H, K]``).
    h: discriminator scores.
    y_BxK: label vectors.
  """
  if kind == 'binary':
    log_d_B, log_not_d_B = discriminators.binary_log_probs(h, y_BxK)
    return jnp.stack([log_d_B, log_not_d_B, log_not_d_B], axis=-1)
  if kind == 'multiclass':
    return discriminators.multiclass_log_probs(h, y_BxK)
  raise ValueError(f'unknown discriminator kind {kind!r}; valid: {", ".join(DISCRIMINATOR_KINDS)}')


def adversarial_sampled(
  kind: str,
  weights_3: jax.Array,
  h: jax.Array,
  y_real_BxK: jax.Array,
  y_student_BxK: jax.Array,
  y_teacher_BxK: jax.Array,
) -> jax.Array:
  """``Σ_i ω_i log D_i(x, y_i)`` per example, one label vector per role."""
  terms_B = [role_log_probs(kind, h, y)[:, i] for i, y in enumerate((y_real_BxK, y_student_BxK, y_teacher_BxK))]
  return sum(w * t for w, t in zip(weights_3, terms_B))


def label_table(kind: str, h: jax.Array) -> jax.Array:
  """``[B, K, 3]``: ``log D_i(x, e_y)`` for every label ``y`` and role ``i``."""
  num_classes = h.shape[-1]
  eye_KxK = jnp.eye(num_classes, dtype=h.dtype)
  per_label = jax.vmap(lambda e_K: role_log_probs(kind, h, jnp.broadcast_to(e_K, (h.shape[0], num_classes))))
  return jnp.moveaxis(per_label(eye_KxK), 0, 1)


def adversarial_exact(
  kind: str,
  weights_3: jax.Array,
  h: jax.Array,
  p_real_BxK: jax.Array,
  p_student_BxK: jax.Array,
  p_teacher_BxK: jax.Array,
) -> jax.Array:
  """``Σ_i ω_i Σ_y p_i(y|x) log D_i(x, e_y)`` per example."""
  p_BxKx3 = jnp.stack([p_real_BxK, p_student_BxK, p_teacher_BxK], axis=-1)
  table_BxKx3 = label_table(kind, h)
  # 0 · log D = 0 even where log D = -inf.
  terms = jnp.where(p_BxKx3 > 0, p_BxKx3 * table_BxKx3, 0.0)
  return jnp.sum(terms.sum(axis=1) * jnp.asarray(weights_3), axis=-1)


def distillation_exact(
  log_p_real_BxK: jax.Array, log_p_student_BxK: jax.Array, log_p_teacher_BxK: jax.Array, nu, mu, upsilon
) -> jax.Array:
  """``ν L_KD(p_t || p_s) + µ L_KD(p_s || p_t)`` with a general real distribution ``p_r``."""
  kd_student = losses.kl_divergence(log_p_teacher_BxK, log_p_student_BxK) + upsilon * losses.kl_divergence(
    log_p_real_BxK, log_p_student_BxK
  )
  kd_teacher = losses.kl_divergence(log_p_student_BxK, log_p_teacher_BxK) + upsilon * losses.kl_divergence(
    log_p_real_BxK, log_p_teacher_BxK
  )
  return nu * kd_student + mu * kd_teacher


def value_exact(
  kind: str,
  weights_3,
  h: jax.Array,
  log_p_real_BxK: jax.Array,
  log_p_student_BxK: jax.Array,
  log_p_teacher_BxK: jax.Array,
  nu=0.0,
  mu=0.0,
  upsilon=0.0,
) -> jax.Array:
  """The exact value function per example: NGAN (Eq. 3), ADIB (Eq. 4) or ADIM (Eq. 6).

  NGAN is ``kind='binary'``, ``weights=(1, 1, 0)``, ``nu = mu = 0``; ADIB
  ``'binary'``, ``(1, ω_s, ω_t)``; ADIM ``'multiclass'``, ``(ω_r, ω_s, ω_t)``.
  """
  probs = [jnp.exp(lp) for lp in (log_p_real_BxK, log_p_student_BxK, log_p_teacher_BxK)]
  adversarial = adversarial_exact(kind, weights_3, h, *probs)
  return adversarial + distillation_exact(log_p_real_BxK, log_p_student_BxK, log_p_teacher_BxK, nu, mu, upsilon)
