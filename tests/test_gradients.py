"""Gradient statistics: merged moments equal numpy's, a known variance is recovered, cosine, and the terms' draws."""

from absl.testing import absltest
import jax
import jax.numpy as jnp
import numpy as np

from adjax import config as config_lib
from adjax import data
from adjax import game as game_lib
from adjax import gradients
from adjax import objectives
from adjax import rounds
from tests.test_train import tiny_config

SIGMA = np.array([0.1, 0.5, 2.0, 3.0], np.float32)


def _noisy(key):
  """A synthetic gradient: mean (1, -2) and (3,), each coordinate with its own known noise std."""
  k1, k2 = jax.random.split(key)
  return {
    'w': jnp.array([1.0, -2.0]) + SIGMA[:2] * jax.random.normal(k1, (2,)),
    'b': 3.0 + SIGMA[2:] * jax.random.normal(k2, (2,)),
  }


class GradientStatisticsTest(absltest.TestCase):
  def test_merged_chunks_equal_numpy_on_the_same_draws(self):
    key = jax.random.key(0)
    n, mean, m2 = gradients.moments(_noisy, key, num_chunks=5, draws_per_chunk=7)
    draws = [jax.vmap(_noisy)(jax.random.split(k, 7)) for k in jax.random.split(key, 5)]
    stacked = jax.tree.map(lambda *a: np.concatenate(a), *draws)
    self.assertEqual(float(n), 35)
    for name in ('w', 'b'):
      np.testing.assert_allclose(mean[name], stacked[name].mean(0), rtol=1e-5, atol=1e-6)
      np.testing.assert_allclose(m2[name] / 34, stacked[name].var(0, ddof=1), rtol=1e-4)
    all_draws = np.concatenate([stacked['b'], stacked['w']], axis=1)  # leaves in pytree order: b, w
    self.assertAlmostEqual(float(gradients.mean_variance((n, mean, m2))), all_draws.var(0, ddof=1).mean(), places=4)

  def test_recovers_a_known_variance(self):
    m = gradients.moments(_noisy, jax.random.key(1), num_chunks=20, draws_per_chunk=500)
    # 10,000 draws: each coordinate's sample variance is within a few % of σ²; their mean is (0.01+0.25+4+9)/4.
    self.assertAlmostEqual(float(gradients.mean_variance(m)), float(np.mean(SIGMA**2)), delta=0.05 * np.mean(SIGMA**2))
    np.testing.assert_allclose(m[1]['w'], [1.0, -2.0], atol=0.05)

  def test_cosine(self):
    a = {'w': jnp.array([1.0, 2.0]), 'b': jnp.array([[3.0]])}
    self.assertAlmostEqual(float(gradients.cosine(a, a)), 1.0, places=6)
    self.assertAlmostEqual(float(gradients.cosine(a, jax.tree.map(lambda x: -2 * x, a))), -1.0, places=6)
    self.assertAlmostEqual(float(gradients.cosine(a, {'w': jnp.array([2.0, -1.0]), 'b': jnp.array([[0.0]])})), 0.0)

  def test_weighted_term_gradients_are_the_training_gradient(self):
    """ω·∇adversarial + ν·∇distillation of one draw equals ∇ of the loss the student descends, on that draw."""
    c = config_lib.validate(tiny_config('adim'))
    splits = data.load(c)
    game = game_lib.build(c, splits.num_classes)
    train = game_lib.as_data(jax.tree.map(jnp.asarray, splits.split('train')))
    state = game_lib.init_state(game, jax.random.key(0), splits.split('train'))
    state['hparams']['nu'] = jnp.float32(0.6)
    key = jax.random.key(5)
    terms = gradients.term_gradients(game, state, 'student', train, key)
    self.assertEqual(set(terms), {'adversarial', 'distillation'})

    k_batch, k_noise = jax.random.split(key)  # the same draw, assembled by hand
    phase = rounds.draw_batches(game, train, k_batch, 1)
    others = jax.tree.map(lambda a: a[0], rounds.fixed_outputs(game, state, ('discriminator', 'teacher'), train, phase))
    tau = rounds.round_tau(game, state, state['round'])

    def loss(params):
      batch = objectives.Batch(phase['x'][0], phase['y'][0], others)
      ctx = objectives.Context(game, 'student', k_noise, tau, state['student']['reward_average'], state['hparams'])
      return objectives.generator_loss(params, batch, ctx)[0]

    expected = jax.grad(loss)(state['student']['params'])
    w_s = state['hparams']['weights'][1]
    combined = jax.tree.map(lambda a, d: w_s * a + 0.6 * d, terms['adversarial'], terms['distillation'])
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-7), combined, expected)
    stats = jax.jit(lambda s, k: gradients.statistics(game, s, 'student', train, k, 2, 4))(state, key)
    self.assertEqual(set(stats), {'adversarial_log10_variance', 'distillation_log10_variance', 'cosine'})
    self.assertTrue(all(np.isfinite(float(v)) for v in stats.values()))
    self.assertBetween(float(stats['cosine']), -1.0, 1.0)


if __name__ == '__main__':
  absltest.main()
