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
  """``s(x, y) = <y, h(x)>``, shape ``[B]``."""
  return jnp.sum(h_BxK * y_BxK, axis=-1)


def binary_log_probs(h_BxK: jax.Array, y_BxK: jax.Array) -> tuple[jax.Array, jax.Array]:
  """``(log D(x, y), log(1 - D(x, y)))`` of the binary discriminator ``D = σ(s)``."""
  s_B = score(h_BxK, y_BxK)
  return jax.nn.log_sigmoid(s_B), jax.nn.log_sigmoid(-s_B)


def multiclass_log_probs(h_BxHxK: jax.Array, y_BxK: jax.Array) -> jax.Array:
  """``[log D_r, log D_s, log D_t]`` of shape ``[B, 3]``, summing to one in prob space.

  Two heads (``H = 2``): the paper's construction from two binary
  discriminators, ``h1`` real vs fake and ``h2`` student vs teacher among fakes.
  Three heads (``H = 3``): ``D_i = softmax_i(<y, h_i(x)>)``.

  Args:
    h_BxHxK: scores of each head.
    y_BxK: label vectors, one-hot or on the simplex.

  Returns:
    log-probabilities of real, student and teacher, ``[B, 3]``.
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
