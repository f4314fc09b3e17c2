"""Label-conditioned discriminators in log space (SPEC §2).

A discriminator network maps ``x`` to scores ``h(x)`` of shape ``[B, K]``; a
label vector ``y`` (one-hot or a point of the simplex) is scored by
``<y, h(x)>``. Because the network never sees ``y``, one forward pass scores
the real label and both generators' samples of the same minibatch.
"""

import jax
import jax.numpy as jnp

# Index of each role along the last axis of a multi-class log-probability.
REAL, STUDENT, TEACHER = 0, 1, 2


def score(h_BxK: jax.Array, y_BxK: jax.Array) -> jax.Array:
  """Scores label vectors against discriminator scores: ``s(x, y) = <y, h(x)>``.

  The label enters only through this inner product, so ``y`` may be one-hot or a soft point of the simplex
  (e.g. a concrete sample), and one forward pass of the network serves every label vector.

  Args:
    h_BxK: ``[B, K]`` float discriminator scores ``h(x)``.
    y_BxK: ``[B, K]`` float label vectors, one-hot or on the simplex.

  Returns:
    ``[B]`` score ``s(x, y)`` of each example.

  References:
    SPEC.md §2, label-conditioned discriminators (the score ``s(x, y) = <y, h(x)>``).
  """
  return jnp.sum(h_BxK * y_BxK, axis=-1)


def binary_log_probs(h_BxK: jax.Array, y_BxK: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Log-probabilities ``(log D(x, y), log(1 - D(x, y)))`` of the binary discriminator ``D = σ(s)``.

  Both are computed as ``log_sigmoid(±s)``, never ``log(sigmoid(s))``, so values and gradients stay finite for
  scores of magnitude 1e4.

  Args:
    h_BxK: ``[B, K]`` float discriminator scores ``h(x)`` (a single head).
    y_BxK: ``[B, K]`` float label vectors, one-hot or on the simplex.

  Returns:
    A pair of ``[B]`` arrays: ``log D(x, y)`` (the probability that ``y`` is real) and ``log(1 - D(x, y))``.

  References:
    SPEC.md §2, the binary discriminator of NGAN and ADIB.
  """
  s_B = score(h_BxK, y_BxK)
  return jax.nn.log_sigmoid(s_B), jax.nn.log_sigmoid(-s_B)


def multiclass_log_probs(h_BxHxK: jax.Array, y_BxK: jax.Array) -> jax.Array:
  """Log-probabilities ``[log D_r, log D_s, log D_t]`` of the multi-class (ADIM) discriminator.

  Two heads (``H = 2``): the paper's construction from two binary
  discriminators, ``h1`` real vs fake and ``h2`` student vs teacher among fakes.
  Three heads (``H = 3``): ``D_i = softmax_i(<y, h_i(x)>)``.
  Either way the three probabilities sum to one exactly, and all is computed in log space.

  Args:
    h_BxHxK: ``[B, H, K]`` float scores of each head, ``H`` = 2 or 3; any other ``H`` raises ``ValueError``.
    y_BxK: ``[B, K]`` float label vectors, one-hot or on the simplex.

  Returns:
    ``[B, 3]`` log-probabilities of real, student and teacher, indexed by ``REAL``, ``STUDENT``, ``TEACHER``.

  References:
    SPEC.md §2, the multi-class discriminator of ADIM (two-head construction and the 3-head softmax option).
  """
  s_BxH = jnp.einsum('bhk,bk->bh', h_BxHxK, y_BxK)
  num_heads = s_BxH.shape[-1]
  if num_heads == 3:
    return jax.nn.log_softmax(s_BxH, axis=-1)
  if num_heads != 2:
    raise ValueError(f'multi-class discriminator needs 2 or 3 heads, got {num_heads}')
  a_B, b_B = s_BxH[:, 0], s_BxH[:, 1]
  fake_B = jax.nn.log_sigmoid(-a_B)
  return jnp.stack(
    [jax.nn.log_sigmoid(a_B), fake_B + jax.nn.log_sigmoid(b_B), fake_B + jax.nn.log_sigmoid(-b_B)],
    axis=-1,
  )


def multiclass_log_complements(h_BxHxK: jax.Array, y_BxK: jax.Array) -> jax.Array:
  """``[log(1 − D_r), log(1 − D_s), log(1 − D_t)]`` of the multi-class discriminator, without cancellation.

  Two heads: ``1 − D_r = σ(−a)``, ``1 − D_s = D_r + D_t``, ``1 − D_t = D_r + D_s`` (``a``, ``b``: the heads'
  scores), each a ``logaddexp`` of log-sigmoids. Three heads: the ``logsumexp`` of the other two
  log-probabilities, at most 0.

  Args:
    h_BxHxK: ``[B, H, K]`` float scores of each head, ``H`` = 2 or 3.
    y_BxK: ``[B, K]`` float label vectors.

  Returns:
    ``[B, 3]`` in the order real, student, teacher.
  """
  s_BxH = jnp.einsum('bhk,bk->bh', h_BxHxK, y_BxK)
  if s_BxH.shape[-1] == 2:
    a_B, b_B = s_BxH[:, 0], s_BxH[:, 1]
    real_B, fake_B = jax.nn.log_sigmoid(a_B), jax.nn.log_sigmoid(-a_B)
    return jnp.stack(
      [
        fake_B,
        jnp.logaddexp(real_B, fake_B + jax.nn.log_sigmoid(-b_B)),
        jnp.logaddexp(real_B, fake_B + jax.nn.log_sigmoid(b_B)),
      ],
      axis=-1,
    )
  log_d_Bx3 = multiclass_log_probs(h_BxHxK, y_BxK)
  others = ((1, 2), (0, 2), (0, 1))
  return jnp.minimum(jnp.stack([jax.nn.logsumexp(log_d_Bx3[:, j], axis=-1) for j in others], axis=-1), 0.0)
