"""KVOTE, the tag task's simplest baseline (SPEC §6, Table 4): k-nearest-neighbour tag voting on image features.

A query's score of each tag is the number of its ``k`` nearest training
examples (Euclidean distance on the image features ``x``; no text) that
carry the tag, plus a vanishing share of the tag's frequency in training
(so that ties break towards common tags). ``k`` is chosen on validation by
the selection figure (P@3 by default), and test is scored once.
"""

import jax
import jax.numpy as jnp

from adjax import figures
from adjax import ranking

KS = (1, 3, 5, 10, 20, 50, 100)


def scores(x_train_NxD: jax.Array, tags_NxK: jax.Array, x_query_QxD: jax.Array, k: int) -> jax.Array:
  """Each query's votes ``[Q, K]``: how many of its ``k`` nearest training examples carry each tag."""
  x_train_NxD, x_query_QxD = (
    x_train_NxD.reshape(x_train_NxD.shape[0], -1),
    x_query_QxD.reshape(x_query_QxD.shape[0], -1),
  )
  distance_QxN = (
    jnp.sum(x_query_QxD**2, -1, keepdims=True) - 2 * x_query_QxD @ x_train_NxD.T + jnp.sum(x_train_NxD**2, -1)
  )
  _, nearest_QxK = jax.lax.top_k(-distance_QxN, k)
  tags = tags_NxK.astype(jnp.float32)
  votes_QxK = jnp.sum(tags[nearest_QxK], axis=1)
  return votes_QxK + 1e-3 * jnp.mean(tags, axis=0) / k


def run(splits, metric: str | None = None, rank_k: int = 3, ks=KS) -> dict:
  """KVOTE on one member's splits: ``k`` picked on validation ``metric`` (default P@rank_k); the test figures of that
  ``k``."""
  metric = metric or f'p@{rank_k}'
  train, val, test = (splits.split(name) for name in ('train', 'val', 'test'))
  candidates = [k for k in ks if k <= train['y'].shape[0]]
  on_val = {k: ranking.metrics(scores(train['x'], train['y'], val['x'], k), val['y'], rank_k) for k in candidates}
  best = max(candidates, key=lambda k: float(on_val[k][metric]))
  on_test = ranking.metrics(scores(train['x'], train['y'], test['x'], best), test['y'], rank_k)
  return {
    'k': best,
    'validation': {str(k): {m: float(v) for m, v in figures.items()} for k, figures in on_val.items()},
    'test': {m: float(v) for m, v in on_test.items()},
    figures.val(metric): float(on_val[best][metric]),
  }
