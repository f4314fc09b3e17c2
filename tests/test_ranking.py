"""Ranking metrics of the tag task: hand-computed cases, and scikit-learn where its definitions coincide."""

from absl.testing import absltest
import jax.numpy as jnp
import numpy as np
from sklearn import metrics as sk_metrics

from adjax import ranking


class RankingTest(absltest.TestCase):
  def test_hand_computed(self):
    scores = jnp.array([[0.9, 0.1, 0.8, 0.3, 0.5], [0.2, 0.4, 0.6, 0.8, 1.0]])
    true = jnp.array([[0, 0, 1, 1, 0], [0, 0, 0, 0, 1]])
    # Example 0 ranks tags 0, 2, 4, 3, 1: true tags at ranks 2 and 4. Example 1: its one tag first.
    expected = {
      'p@3': [1 / 3, 1 / 3],
      'r@3': [1 / 2, 1.0],
      'f@3': [2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2), 2 * (1 / 3) / (1 / 3 + 1)],
      'ndcg@3': [(1 / np.log2(3)) / (1 + 1 / np.log2(3)), 1.0],
      'map': [(1 / 2 + 2 / 4) / 2, 1.0],
      'mrr': [1 / 2, 1.0],
    }
    got = ranking.per_example(scores, true, 3)
    self.assertEqual(set(got), set(expected))
    for name, values in expected.items():
      np.testing.assert_allclose(got[name], values, rtol=1e-6, err_msg=name)
    means = ranking.metrics(scores, true, 3)
    np.testing.assert_allclose(means['f@3'], np.mean(expected['f@3']), rtol=1e-6)
    # Per-example F, then the mean: below the F of the mean P and R.
    p, r = np.mean(expected['p@3']), np.mean(expected['r@3'])
    self.assertLess(float(means['f@3']), 2 * p * r / (p + r))

  def test_matches_scikit_learn(self):
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(300, 20))
    true = rng.random((300, 20)) < 0.15
    true[np.arange(300), rng.integers(0, 20, 300)] = True  # every example has a tag
    got = ranking.metrics(jnp.asarray(scores), jnp.asarray(true), 3)
    np.testing.assert_allclose(got['map'], sk_metrics.label_ranking_average_precision_score(true, scores), rtol=1e-5)
    np.testing.assert_allclose(got['ndcg@3'], sk_metrics.ndcg_score(true, scores, k=3), rtol=1e-5)
    top3 = np.argsort(-scores, axis=1)[:, :3]
    hits = np.take_along_axis(true, top3, axis=1).sum(axis=1)
    np.testing.assert_allclose(got['p@3'], np.mean(hits / 3), rtol=1e-6)
    np.testing.assert_allclose(got['r@3'], np.mean(hits / true.sum(axis=1)), rtol=1e-6)
    first = np.argmax(np.take_along_axis(true, np.argsort(-scores, axis=1), axis=1), axis=1) + 1
    np.testing.assert_allclose(got['mrr'], np.mean(1 / first), rtol=1e-6)

  def test_perfect_and_worst_rankings(self):
    true = jnp.array([[1, 1, 0, 0, 0, 0]])
    perfect = ranking.metrics(jnp.array([[6.0, 5, 4, 3, 2, 1]]), true, 3)
    worst = ranking.metrics(jnp.array([[1.0, 2, 3, 4, 5, 6]]), true, 3)
    for name in ('r@3', 'ndcg@3', 'map', 'mrr'):
      self.assertAlmostEqual(float(perfect[name]), 1.0, places=6)
    self.assertAlmostEqual(float(perfect['p@3']), 2 / 3, places=6)
    self.assertEqual(float(worst['p@3']), 0.0)
    self.assertEqual(float(worst['f@3']), 0.0)
    self.assertAlmostEqual(float(worst['mrr']), 1 / 5, places=6)


if __name__ == '__main__':
  absltest.main()
