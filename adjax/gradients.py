"""Gradient statistics of a generator's loss terms at fixed parameters (the paper's Figs. 5, 7 and 10).

One draw is one fresh minibatch and fresh noise: the gradient w.r.t. a
generator's parameters of each unweighted term of its loss (``adversarial``,
the estimator's surrogate; ``distillation``, its L_KD). ``moments`` takes M
draws, ``draws_per_chunk`` at a time under ``vmap``, chunks under ``lax.scan``,
and merges per-parameter means and squared deviations (Chan et al.'s pairwise
update), so memory is a chunk's gradients and the whole measurement is one
compiled program with no host round trip.
"""

import jax
import jax.numpy as jnp

from adjax import game as game_lib
from adjax import objectives
from adjax import rounds

Moments = tuple[jax.Array, dict, dict]  # (count, mean per term, summed squared deviations per term)


def term_gradients(game: game_lib.Game, state: game_lib.State, role: str, data: game_lib.Data, key: jax.Array) -> dict:
  """One draw: ``{term: gradient pytree}`` of each unweighted term of ``role``'s loss on a fresh minibatch."""
  if game.config.mesh.batch > 1:
    raise ValueError(f'gradient statistics run a member on one device; set mesh.batch=1, not {game.config.mesh.batch}')
  batches, k_noise = rounds.phase_batches(game, state, role, data, key, 1, 'game')  # one minibatch, as in training
  batch = jax.tree.map(lambda a: a[0], batches)
  tau = rounds.round_tau(game, state, state['round'])
  ctx = objectives.Context(game, role, k_noise, tau, state[role]['reward_average'], state['hparams'])

  def terms(params):
    return objectives.generator_terms(params, batch, ctx)[0]

  return jax.jacrev(terms)(state[role]['params'])


def merge(a: Moments, b: Moments) -> Moments:
  """Pairwise merge of two groups' counts, means and summed squared deviations (Chan, Golub & LeVeque)."""
  n_a, mean_a, m2_a = a
  n_b, mean_b, m2_b = b
  n = n_a + n_b
  delta = jax.tree.map(jnp.subtract, mean_b, mean_a)
  mean = jax.tree.map(lambda m, d: m + d * (n_b / n), mean_a, delta)
  m2 = jax.tree.map(lambda x, y, d: x + y + d * d * (n_a * n_b / n), m2_a, m2_b, delta)
  return n, mean, m2


def chunk_moments(grads_M: dict) -> Moments:
  """Count, mean and summed squared deviations of draws stacked on a leading axis."""
  n = jnp.asarray(jax.tree.leaves(grads_M)[0].shape[0], jnp.float32)
  mean = jax.tree.map(lambda g: jnp.mean(g, 0), grads_M)
  m2 = jax.tree.map(lambda g, m: jnp.sum(jnp.square(g - m), 0), grads_M, mean)
  return n, mean, m2


def moments(draw_fn, key: jax.Array, num_chunks: int, draws_per_chunk: int) -> Moments:
  """Moments of ``draw_fn(key) -> pytree`` over ``num_chunks · draws_per_chunk`` independent keys."""

  def chunk(k):
    return chunk_moments(jax.vmap(draw_fn)(jax.random.split(k, draws_per_chunk)))

  keys = jax.random.split(key, num_chunks)
  first = chunk(keys[0])
  out, _ = jax.lax.scan(lambda acc, k: (merge(acc, chunk(k)), None), first, keys[1:])
  return out


def mean_variance(m: Moments) -> jax.Array:
  """The per-parameter variance over draws (unbiased), averaged over all parameters of the pytree."""
  n, _, m2 = m
  leaves = jax.tree.leaves(m2)
  size = sum(leaf.size for leaf in leaves)
  return sum(jnp.sum(leaf) for leaf in leaves) / (size * (n - 1))


def cosine(a, b) -> jax.Array:
  """Cosine similarity of two pytrees as flat vectors."""
  dot = sum(jnp.vdot(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))
  norm = lambda t: jnp.sqrt(sum(jnp.vdot(x, x) for x in jax.tree.leaves(t)))
  return dot / (norm(a) * norm(b))


def statistics(game: game_lib.Game, state, role: str, data, key, num_chunks: int, draws_per_chunk: int) -> dict:
  """``log10`` mean variance of each term's gradient, and the cosine of their expected gradients."""
  n, mean, m2 = moments(lambda k: term_gradients(game, state, role, data, k), key, num_chunks, draws_per_chunk)
  out = {f'{t}_log10_variance': jnp.log10(mean_variance((n, mean[t], m2[t]))) for t in mean}
  if len(mean) == 2:
    out['cosine'] = cosine(mean['adversarial'], mean['distillation'])
  return out
