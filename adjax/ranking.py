"""Ranking metrics of tag recommendation (SPEC §6): every tag ranked by score, against an example's set of true tags.

For one example with scores ``s`` over the ``K`` tags and true set ``T``
(``|T| >= 1``), let ``rel_r`` be 1 when the tag at rank ``r`` (1 = highest
score; ties broken by the lower tag index) is in ``T``, and
``hits@k = sum_{r <= k} rel_r``:

- ``P@k = hits@k / k``
- ``R@k = hits@k / |T|``
- ``F@k = 2 P@k R@k / (P@k + R@k)`` (0 when ``hits@k = 0``), per example
  and then averaged, as the paper does (so it is below the F of the mean P
  and R)
- ``NDCG@k = DCG@k / IDCG@k`` with ``DCG@k = sum_{r <= k} rel_r / log2(r + 1)``
  and ``IDCG@k = sum_{r <= min(k, |T|)} 1 / log2(r + 1)``
- ``AP = (1 / |T|) sum_r rel_r hits@r / r``; ``MAP`` is its mean
- ``RR = 1 / (rank of the first true tag)``; ``MRR`` is its mean

Each metric is the mean over examples. Pure ``jax.numpy``: it runs inside
the compiled evaluation, vmapped over members.
"""

import jax
import jax.numpy as jnp

METRICS = ('p', 'r', 'f', 'ndcg', 'map', 'mrr')


def names(k: int) -> tuple[str, ...]:
  """The metrics' names as results and TensorBoard show them: ``p@3``, ``r@3``, ``f@3``, ``ndcg@3``, ``map``,
  ``mrr``."""
  return tuple(f'{m}@{k}' if m in ('p', 'r', 'f', 'ndcg') else m for m in METRICS)


def per_example(scores_NxK: jax.Array, true_NxK: jax.Array, k: int) -> dict[str, jax.Array]:
  """Each metric of each example ``[N]`` (``true_NxK``: multi-hot, every row with at least one tag)."""
  num_tags = scores_NxK.shape[-1]
  order_NxK = jnp.argsort(-scores_NxK, axis=-1, stable=True)
  rel_NxK = jnp.take_along_axis(true_NxK.astype(jnp.float32), order_NxK, axis=-1)
  rank_K = jnp.arange(1, num_tags + 1, dtype=jnp.float32)
  num_true_N = jnp.sum(rel_NxK, axis=-1)
  hits_NxK = jnp.cumsum(rel_NxK, axis=-1)
  hits_k_N = hits_NxK[:, k - 1]
  precision_N, recall_N = hits_k_N / k, hits_k_N / num_true_N
  f_N = jnp.where(hits_k_N > 0, 2 * precision_N * recall_N / jnp.maximum(precision_N + recall_N, 1e-30), 0.0)
  discount_K = 1.0 / jnp.log2(rank_K + 1)
  dcg_N = jnp.sum(rel_NxK[:, :k] * discount_K[:k], axis=-1)
  ideal_N = jnp.sum(jnp.where(rank_K[:k] <= num_true_N[:, None], discount_K[:k], 0.0), axis=-1)
  ap_N = jnp.sum(rel_NxK * hits_NxK / rank_K, axis=-1) / num_true_N
  rr_N = jnp.max(rel_NxK / rank_K, axis=-1)
  return dict(zip(names(k), (precision_N, recall_N, f_N, dcg_N / ideal_N, ap_N, rr_N), strict=True))


def metrics(scores_NxK: jax.Array, true_NxK: jax.Array, k: int = 3) -> dict[str, jax.Array]:
  """Each metric's mean over the examples (scalars)."""
  return jax.tree.map(jnp.mean, per_example(scores_NxK, true_NxK, k))
