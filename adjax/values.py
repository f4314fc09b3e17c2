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

from collections.abc import Callable
import dataclasses

import jax
import jax.numpy as jnp

from adjax import discriminators
from adjax import losses
from adjax import registry


@dataclasses.dataclass(frozen=True)
class DiscriminatorKind:
  """A kind of discriminator: how its scores give each role's terms, and what network it is.

  Attributes:
    log_probs: ``(h, y_BxK) -> [B, 3]``, ``log D_i(x, y)`` of the roles real, student, teacher.
    log_complements: ``(h, y_BxK) -> [B, 3]``, ``log(1 − D_i(x, y))`` without cancellation (the non-saturating
      reward reads it).
    heads: the discriminator is ``game.heads`` copies of the player's network stacked to ``[B, H, K]`` scores
      (``models.Heads``); otherwise the network itself, ``[B, K]``.
    optimal: ``(weights_3, log_p_BxKx3) -> [B, K, 3]``, ``log D_i*(x, e_y)`` of the best discriminator of this kind
      for fixed generators, from the role weights and the roles' log-probabilities (the theory's closed form; None:
      not known, no optimality gap).
    divergence: ``(weights_3, log_p_BxKx3) -> [B]``, the divergence the generators minimise when the discriminator
      is ``optimal`` (None: not known).
    outcomes: the outcome each role's term reports (real, student, teacher): ``(0, 1, 1)`` for a binary
      discriminator, whose two fake terms are one outcome; the discriminator's accuracy counts outcomes.
  """

  log_probs: Callable[[jax.Array, jax.Array], jax.Array]
  log_complements: Callable[[jax.Array, jax.Array], jax.Array]
  heads: bool = False
  optimal: Callable[[jax.Array, jax.Array], jax.Array] | None = None
  divergence: Callable[[jax.Array, jax.Array], jax.Array] | None = None
  outcomes: tuple[int, int, int] = (0, 1, 2)


def _binary_log_probs(h_BxK: jax.Array, y_BxK: jax.Array) -> jax.Array:
  log_d_B, log_not_d_B = discriminators.binary_log_probs(h_BxK, y_BxK)
  return jnp.stack([log_d_B, log_not_d_B, log_not_d_B], axis=-1)  # both generators share the fake term


def _binary_log_complements(h_BxK: jax.Array, y_BxK: jax.Array) -> jax.Array:
  return _binary_log_probs(h_BxK, y_BxK)[:, jnp.array([1, 0, 0])]  # (log(1 − D), log D, log D)


def log_weights(weights: jax.Array) -> jax.Array:
  """``log w`` of non-negative weights, ``-inf`` where a weight is 0 (no ``log 0``: no warning, no NaN gradient)."""
  positive = weights > 0
  return jnp.where(positive, jnp.log(jnp.where(positive, weights, 1.0)), -jnp.inf)


def weighted_js(weights_N: jax.Array, log_p_BxKxN: jax.Array) -> jax.Array:
  """The generalised Jensen–Shannon divergence ``Σ_i π_i KL(p_i || Σ_j π_j p_j)``, ``π = w / Σ w``, per example.

  Equal weights of two distributions give ``JS(p || q)``; a zero weight drops its distribution, and all weights 0
  give 0.

  Args:
    weights_N: ``[N]`` non-negative weights of the distributions.
    log_p_BxKxN: ``[B, K, N]`` log-probabilities of the ``N`` distributions over ``K`` labels.

  Returns:
    ``[B]`` divergence of each example (nats).
  """
  w_N = jnp.asarray(weights_N, log_p_BxKxN.dtype)
  total = jnp.sum(w_N)
  pi_N = w_N / jnp.where(total > 0, total, 1.0)
  log_mean_BxK = jax.nn.logsumexp(log_p_BxKxN + log_weights(pi_N), axis=-1)
  kls_BxN = jnp.stack(
    [losses.kl_divergence(log_p_BxKxN[..., i], log_mean_BxK) for i in range(log_p_BxKxN.shape[-1])], axis=-1
  )
  return jnp.sum(jnp.where(pi_N > 0, pi_N * kls_BxN, 0.0), axis=-1)


def js_divergence(log_p_BxK: jax.Array, log_q_BxK: jax.Array) -> jax.Array:
  """Jensen–Shannon divergence ``½ KL(p || m) + ½ KL(q || m)``, ``m = (p + q) / 2``, per example ``[B]`` (nats)."""
  return weighted_js(jnp.ones(2), jnp.stack([log_p_BxK, log_q_BxK], axis=-1))


def _binary_optimal(weights_3: jax.Array, log_p_BxKx3: jax.Array) -> jax.Array:
  # Lemma 4.1: D* = ω_r p_r / (ω_r p_r + ω_s p_s + ω_t p_t), the pointwise maximiser of a log D + b log(1 − D).
  log_wp = log_p_BxKx3 + log_weights(weights_3)
  real, fake = log_wp[..., 0], jax.nn.logsumexp(log_wp[..., 1:], axis=-1)
  total = jnp.logaddexp(real, fake)
  return jnp.stack([real - total, fake - total, fake - total], axis=-1)


def _multiclass_optimal(weights_3: jax.Array, log_p_BxKx3: jax.Array) -> jax.Array:
  # Lemma 4.3: D_i* = ω_i p_i / Σ_j ω_j p_j.
  log_wp = log_p_BxKx3 + log_weights(weights_3)
  return log_wp - jax.nn.logsumexp(log_wp, axis=-1, keepdims=True)


def _binary_divergence(weights_3: jax.Array, log_p_BxKx3: jax.Array) -> jax.Array:
  # Theorem 4.2, weighted: at D*, V = A log(A / W) + B log(B / W) + W · JS_π(p_r, p_ω), A = ω_r, B = ω_s + ω_t,
  # W = A + B, π = (A, B) / W, p_ω = (ω_s p_s + ω_t p_t) / B. ADIB and NGAN (A = B = 1): 2 JS(p_r || p_ω) − log 4.
  fake = weights_3[1:]
  log_fake = jax.nn.logsumexp(log_p_BxKx3[..., 1:] + log_weights(fake / jnp.maximum(jnp.sum(fake), 1e-30)), axis=-1)
  return weighted_js(jnp.stack([weights_3[0], jnp.sum(fake)]), jnp.stack([log_p_BxKx3[..., 0], log_fake], axis=-1))


def _multiclass_divergence(weights_3: jax.Array, log_p_BxKx3: jax.Array) -> jax.Array:
  # Theorem 4.4: at D*, V = Σ ω_i log ω_i + Σ ω_i KL(p_i || p̄), p̄ = Σ ω_j p_j (ω summing to 1).
  return weighted_js(weights_3, log_p_BxKx3)


#: The discriminator kinds a method may name (``Method.discriminator``): ``binary`` (NGAN, ADIB: one head, ``log D``
#: for real and ``log(1 − D)`` for both generators), ``multiclass`` (ADIM: ``log D_r, log D_s, log D_t``).
DISCRIMINATOR_KINDS: dict[str, DiscriminatorKind] = {
  'binary': DiscriminatorKind(
    _binary_log_probs,
    _binary_log_complements,
    optimal=_binary_optimal,
    divergence=_binary_divergence,
    outcomes=(0, 1, 1),
  ),
  'multiclass': DiscriminatorKind(
    discriminators.multiclass_log_probs,
    discriminators.multiclass_log_complements,
    heads=True,
    optimal=_multiclass_optimal,
    divergence=_multiclass_divergence,
  ),
}


def register_discriminator_kind(name: str, kind: DiscriminatorKind) -> None:
  """Adds a discriminator kind that a method can name (``Method(discriminator=name)``)."""
  if registry.is_new('discriminator kind', DISCRIMINATOR_KINDS, name, kind):
    DISCRIMINATOR_KINDS[name] = kind


def discriminator_kind(kind: str) -> DiscriminatorKind:
  """The registered kind ``kind``; ``ValueError`` naming the valid ones otherwise."""
  return registry.lookup('discriminator kind', DISCRIMINATOR_KINDS, kind)


def role_log_probs(kind: str, h: jax.Array, y_BxK: jax.Array) -> jax.Array:
  """The log-probability term ``log D_i(x, y)`` of each role (real, student, teacher) at label vectors ``y``.

  For ``'binary'`` the three columns are ``(log D, log(1 − D), log(1 − D))``: both generators share the fake
  term. For ``'multiclass'`` they are ``(log D_r, log D_s, log D_t)``.

  Args:
    kind: a key of ``DISCRIMINATOR_KINDS`` (``'binary'``, ``'multiclass'``); anything else raises ``ValueError``.
    h: discriminator scores; the rank depends on ``kind``: ``[B, K]`` float scores (one head) for ``'binary'``,
      ``[B, H, K]`` float scores of ``H = 2`` or ``3`` heads for ``'multiclass'``. Scores, not probabilities.
    y_BxK: ``[B, K]`` float label vectors, one-hot or on the simplex; the same ``y`` is scored for every role.

  Returns:
    ``[B, 3]`` log-probability of each role, columns in the order real, student, teacher.

  References:
    SPEC.md §2, the binary and multi-class discriminators; SPEC.md §3, the per-role terms of Eqs. 3, 4 and 6.
  """
  return discriminator_kind(kind).log_probs(h, y_BxK)


def role_log_complements(kind: str, h: jax.Array, y_BxK: jax.Array) -> jax.Array:
  """``log(1 − D_i(x, y))`` of each role (real, student, teacher), computed without cancellation.

  For ``'binary'`` the columns are ``(log(1 − D), log D, log D)``; for ``'multiclass'``,
  ``discriminators.multiclass_log_complements``. The non-saturating generator
  reward ``−log(1 − D_i)`` (``game.generator_reward``) reads it.

  Args:
    kind: a key of ``DISCRIMINATOR_KINDS``; anything else raises ``ValueError``.
    h: discriminator scores, as ``role_log_probs`` takes them.
    y_BxK: ``[B, K]`` float label vectors.

  Returns:
    ``[B, 3]`` ``log(1 − D_i)``, columns in the order real, student, teacher.
  """
  return discriminator_kind(kind).log_complements(h, y_BxK)


# What a generator descends at its sampled labels, per role column (``game.generator_reward``): ``minimax`` the
# value's own term ``log D_i`` (Eqs. 3, 4, 6: ``log(1 − D)`` for NGAN and ADIB's generators), ``non_saturating``
# ``−log(1 − D_i)`` (standard GAN practice: NGAN's generator maximises ``log D``; same fixed points, strong gradients
# where the discriminator rejects the generator's samples).
def _non_saturating(kind: str, h: jax.Array, y_BxK: jax.Array) -> jax.Array:
  return -role_log_complements(kind, h, y_BxK)


GENERATOR_REWARDS: dict[str, Callable[[str, jax.Array, jax.Array], jax.Array]] = {
  'minimax': role_log_probs,
  'non_saturating': _non_saturating,
}


def adversarial_sampled(
  kind: str,
  weights_3: jax.Array,
  h: jax.Array,
  y_real_BxK: jax.Array,
  y_student_BxK: jax.Array,
  y_teacher_BxK: jax.Array,
) -> jax.Array:
  """Sampled adversarial term ``Σ_i ω_i log D_i(x, y_i)`` per example, one label vector per role.

  This is the single-sample estimate of ``Σ_i ω_i E_{y~p_i}[log D_i(x, y)]`` that training uses.

  Args:
    kind: ``'binary'`` or ``'multiclass'``; anything else raises ``ValueError``.
    weights_3: ``[3]`` role weights ``(ω_r, ω_s, ω_t)`` (a sequence or array); ``(1, 1, 0)`` for NGAN.
    h: discriminator scores; the rank depends on ``kind``: ``[B, K]`` float scores (one head) for ``'binary'``,
      ``[B, H, K]`` float scores of ``H = 2`` or ``3`` heads for ``'multiclass'``. Scores, not probabilities.
    y_real_BxK: ``[B, K]`` float label vector of the real role, usually the one-hot ``e_y``.
    y_student_BxK: ``[B, K]`` float label vector sampled from the student ``p_s``, one-hot or a concrete sample.
    y_teacher_BxK: ``[B, K]`` float label vector sampled from the teacher ``p_t``, one-hot or a concrete sample.

  Returns:
    ``[B]`` weighted adversarial term of each example (unreduced).

  References:
    SPEC.md §3, the adversarial terms of NGAN (Eq. 3), ADIB (Eq. 4) and ADIM (Eq. 6); SPEC.md §4, sampling.
  """
  terms_B = [role_log_probs(kind, h, y)[:, i] for i, y in enumerate((y_real_BxK, y_student_BxK, y_teacher_BxK))]
  return sum(w * t for w, t in zip(weights_3, terms_B))


def label_table(kind: str, h: jax.Array) -> jax.Array:
  """Table of ``log D_i(x, e_y)`` for every one-hot label ``y`` and role ``i``, used by the exact form.

  Args:
    kind: ``'binary'`` or ``'multiclass'``; anything else raises ``ValueError``.
    h: discriminator scores; the rank depends on ``kind``: ``[B, K]`` float scores (one head) for ``'binary'``,
      ``[B, H, K]`` float scores of ``H = 2`` or ``3`` heads for ``'multiclass'``. Scores, not probabilities.
      ``K`` is read from the last axis.

  Returns:
    ``[B, K, 3]`` log-probability of each role (real, student, teacher) at each label.

  References:
    SPEC.md §3, the exact form of the expectations over labels.
  """
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
  """Exact adversarial term ``Σ_i ω_i Σ_y p_i(y|x) log D_i(x, e_y)`` per example, enumerating the labels.

  Labels with ``p_i(y|x) = 0`` contribute zero even where ``log D_i = -inf``.

  Args:
    kind: ``'binary'`` or ``'multiclass'``; anything else raises ``ValueError``.
    weights_3: ``[3]`` role weights ``(ω_r, ω_s, ω_t)`` (a sequence or array); ``(1, 1, 0)`` for NGAN.
    h: discriminator scores; the rank depends on ``kind``: ``[B, K]`` float scores (one head) for ``'binary'``,
      ``[B, H, K]`` float scores of ``H = 2`` or ``3`` heads for ``'multiclass'``. Scores, not probabilities.
    p_real_BxK: ``[B, K]`` float probabilities of the real distribution ``p_r`` (``e_y`` for a labelled example).
    p_student_BxK: ``[B, K]`` float probabilities of the student ``p_s``.
    p_teacher_BxK: ``[B, K]`` float probabilities of the teacher ``p_t``.

  Returns:
    ``[B]`` weighted adversarial term of each example (unreduced).

  References:
    SPEC.md §3, the adversarial terms of NGAN (Eq. 3), ADIB (Eq. 4) and ADIM (Eq. 6), exact form.
  """
  p_BxKx3 = jnp.stack([p_real_BxK, p_student_BxK, p_teacher_BxK], axis=-1)
  return table_value(weights_3, p_BxKx3, label_table(kind, h))


def table_value(weights_3: jax.Array, p_BxKx3: jax.Array, table_BxKx3: jax.Array) -> jax.Array:
  """``Σ_i ω_i Σ_y p_i(y|x) table[y, i]`` per example ``[B]``: the adversarial term of a discriminator given as its
  ``log D_i(x, e_y)`` table (``label_table``, ``optimal_table``). A term with ``ω_i p_i(y) = 0`` counts zero even
  where the table is ``-inf``."""
  w_3 = jnp.asarray(weights_3, p_BxKx3.dtype)
  mass = w_3 * p_BxKx3
  return jnp.sum(jnp.where(mass > 0, mass * table_BxKx3, 0.0), axis=(1, 2))


def distillation_exact(
  log_p_real_BxK: jax.Array, log_p_student_BxK: jax.Array, log_p_teacher_BxK: jax.Array, nu, mu, upsilon
) -> jax.Array:
  """Exact distillation terms ``ν L_KD(p_t || p_s) + µ L_KD(p_s || p_t)`` with a general real distribution ``p_r``.

  Unlike ``losses.distillation`` it takes log-probabilities, allows a soft ``p_r`` and applies no
  ``stop_gradient``: it is the value itself, for tests and theory.

  Args:
    log_p_real_BxK: ``[B, K]`` float log-probabilities of the real distribution ``p_r``.
    log_p_student_BxK: ``[B, K]`` float log-probabilities of the student ``p_s``.
    log_p_teacher_BxK: ``[B, K]`` float log-probabilities of the teacher ``p_t``.
    nu: scalar weight ``ν`` of the student's loss ``L_KD(p_t || p_s)``.
    mu: scalar weight ``µ`` of the teacher's loss ``L_KD(p_s || p_t)``.
    upsilon: scalar weight ``υ`` of the label term ``KL(p_r || ·)`` inside each ``L_KD``.

  Returns:
    ``[B]`` distillation terms of each example (unreduced).

  References:
    SPEC.md §3, the distillation loss ``L_KD`` and the ``ν``, ``µ`` terms of ADIB (Eq. 4) and ADIM (Eq. 6).
  """
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

  Args:
    kind: ``'binary'`` or ``'multiclass'``; anything else raises ``ValueError``.
    weights_3: ``[3]`` role weights ``(ω_r, ω_s, ω_t)`` (a sequence or array).
    h: discriminator scores; the rank depends on ``kind``: ``[B, K]`` float scores (one head) for ``'binary'``,
      ``[B, H, K]`` float scores of ``H = 2`` or ``3`` heads for ``'multiclass'``. Scores, not probabilities.
    log_p_real_BxK: ``[B, K]`` float log-probabilities of the real distribution ``p_r``.
    log_p_student_BxK: ``[B, K]`` float log-probabilities of the student ``p_s``.
    log_p_teacher_BxK: ``[B, K]`` float log-probabilities of the teacher ``p_t``.
    nu: scalar weight ``ν`` of ``L_KD(p_t || p_s)``.
    mu: scalar weight ``µ`` of ``L_KD(p_s || p_t)``.
    upsilon: scalar weight ``υ`` of the label term inside each ``L_KD``.

  Returns:
    ``[B]`` value ``V`` of each example (unreduced; a batch takes the mean).

  References:
    SPEC.md §3, the NGAN (Eq. 3), ADIB (Eq. 4) and ADIM (Eq. 6) value functions.
  """
  probs = [jnp.exp(lp) for lp in (log_p_real_BxK, log_p_student_BxK, log_p_teacher_BxK)]
  adversarial = adversarial_exact(kind, weights_3, h, *probs)
  return adversarial + distillation_exact(log_p_real_BxK, log_p_student_BxK, log_p_teacher_BxK, nu, mu, upsilon)


def optimal_table(kind: str, weights_3: jax.Array, log_p_BxKx3: jax.Array) -> jax.Array | None:
  """The best discriminator of ``kind`` against fixed generators, as its table ``log D_i*(x, e_y)``.

  Args:
    kind: a key of ``DISCRIMINATOR_KINDS``.
    weights_3: ``[3]`` role weights ``(ω_r, ω_s, ω_t)``.
    log_p_BxKx3: ``[B, K, 3]`` log-probabilities of ``p_r``, ``p_s``, ``p_t`` (last axis in that order).

  Returns:
    ``[B, K, 3]`` ``log D_i*`` per label and role (``-inf`` where ``ω_i p_i = 0``), or None for a kind that declares
    no closed form.

  References:
    SPEC.md §3, Lemma 4.1 (ADIB, NGAN) and Lemma 4.3 (ADIM).
  """
  optimal = discriminator_kind(kind).optimal
  return None if optimal is None else optimal(jnp.asarray(weights_3, log_p_BxKx3.dtype), log_p_BxKx3)


def optimality_gap(kind: str, weights_3: jax.Array, h: jax.Array, log_p_BxKx3: jax.Array) -> jax.Array | None:
  """``V(D*) − V(D)`` per example: how far the discriminator's scores ``h`` are from the best discriminator
  against the current generators, in the exact adversarial value (the distillation terms, the same at both,
  cancel).

  Summed label by label, each term ``ω_i p_i (log D_i* − log D_i)`` adds up to a weighted KL of ``D*`` from ``D``:
  at least 0, 0 exactly when ``D = D*`` (where ``ω_i p_i > 0``), and precise near 0.

  Args:
    kind: a key of ``DISCRIMINATOR_KINDS``.
    weights_3: ``[3]`` role weights ``(ω_r, ω_s, ω_t)``.
    h: discriminator scores, as ``role_log_probs`` takes them.
    log_p_BxKx3: ``[B, K, 3]`` log-probabilities of ``p_r``, ``p_s``, ``p_t`` (last axis in that order).

  Returns:
    ``[B]`` gap of each example (nats), or None for a kind without a closed form.

  References:
    SPEC.md §3, Lemma 4.1 (ADIB, NGAN) and Lemma 4.3 (ADIM).
  """
  optimal = optimal_table(kind, weights_3, log_p_BxKx3)
  if optimal is None:
    return None
  return table_value(weights_3, jnp.exp(log_p_BxKx3), optimal - label_table(kind, h))


def equilibrium_divergence(kind: str, weights_3: jax.Array, log_p_BxKx3: jax.Array) -> jax.Array | None:
  """The divergence the generators minimise at the best discriminator, per example.

  Binary (ADIB, NGAN): the weighted Jensen–Shannon divergence of ``p_r`` and the generators' mixture ``p_ω``, with
  weights ``ω_r`` and ``ω_s + ω_t`` (equal for both: ``JS(p_r || p_ω)``). Multiclass (ADIM): ``Σ_i ω_i KL(p_i ||
  p̄)``. It is 0 when ``p_s = p_t = p_r``.

  Args:
    kind: a key of ``DISCRIMINATOR_KINDS``.
    weights_3: ``[3]`` role weights ``(ω_r, ω_s, ω_t)``.
    log_p_BxKx3: ``[B, K, 3]`` log-probabilities of ``p_r``, ``p_s``, ``p_t``.

  Returns:
    ``[B]`` divergence (nats), or None for a kind that declares none.

  References:
    SPEC.md §3, Theorem 4.2 (``V* = 2 JS(p_r || p_ω) − log 4``) and Theorem 4.4
    (``V* = Σ ω_i log ω_i + Σ ω_i KL(p_i || p̄)``).
  """
  divergence = discriminator_kind(kind).divergence
  return None if divergence is None else divergence(jnp.asarray(weights_3, log_p_BxKx3.dtype), log_p_BxKx3)
