"""The tag task's engine: multi-label targets (p_r uniform over an example's tags), single-label runs unchanged."""

import json
import os

from absl.testing import absltest
import jax
import jax.numpy as jnp
import numpy as np

from adjax import losses
from adjax import train
from tests.test_train import tiny_config

STORED = os.path.join(os.path.dirname(__file__), 'data', 'single_label_results.json')


class MultiLabelTest(absltest.TestCase):
  def test_cross_entropy_is_the_mean_over_an_examples_tags(self):
    logits = jax.random.normal(jax.random.key(0), (3, 5))
    tags = jnp.array([[1, 0, 1, 0, 0], [0, 0, 0, 0, 1], [1, 1, 1, 1, 0]])
    log_p = np.asarray(jax.nn.log_softmax(logits))
    expected = [-(log_p[0, 0] + log_p[0, 2]) / 2, -log_p[1, 4], -np.mean(log_p[2, :4])]
    np.testing.assert_allclose(losses.cross_entropy(logits, tags), expected, rtol=1e-6)
    # One tag per example is the integer-label cross-entropy.
    np.testing.assert_allclose(
      losses.cross_entropy(logits, jax.nn.one_hot(jnp.array([0, 4, 2]), 5)),
      losses.cross_entropy(logits, jnp.array([0, 4, 2])),
      rtol=1e-6,
    )

  def test_real_label_is_drawn_uniformly_from_the_tags(self):
    tags = jnp.array([[1, 0, 1, 0, 1, 0]] * 6000)
    draws = losses.real_sample(jax.random.key(3), tags, 6)
    self.assertTrue(np.all(np.asarray(draws).sum(-1) == 1))
    counts = np.asarray(draws).sum(0)
    self.assertEqual(counts[[1, 3, 5]].tolist(), [0, 0, 0])  # never a tag the example lacks
    np.testing.assert_allclose(counts[[0, 2, 4]] / 6000, 1 / 3, atol=0.02)  # 3 sigma is 0.018
    integer = losses.real_sample(jax.random.key(3), jnp.array([2, 0]), 3)
    np.testing.assert_array_equal(integer, [[0, 0, 1], [1, 0, 0]])


class SingleLabelUnchangedTest(absltest.TestCase):
  def test_runs_equal_those_stored_before_multi_label_targets(self):
    """ADIM and DISTN, 2 seeds: every history value and final figure as adjax computed them before (stored)."""
    with open(STORED) as f:
      stored = json.load(f)
    for method, before in stored.items():
      now = train.train_and_evaluate(tiny_config(method, num_seeds=2), self.create_tempdir().full_path)
      for member_now, member_before in zip(now['per_seed'], before['per_seed'], strict=True):
        self.assertEqual(member_now['final'], member_before['final'], method)
        self.assertEqual(member_now['history'], member_before['history'], method)


if __name__ == '__main__':
  absltest.main()
