"""Distillation losses against hand computations on a tiny batch."""

from absl.testing import absltest
import jax
import jax.numpy as jnp
import numpy as np

from adjax import losses

TARGET = jnp.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
LEARNER = jnp.array([[0.0, 1.0, 0.0], [1.0, -2.0, 0.0]])
LABELS = jnp.array([0, 2])


def _softmax(z):
  e = np.exp(z - z.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


class DistillationTest(absltest.TestCase):
  def test_kl_plus_label_term(self):
    pa, pb = _softmax(np.asarray(TARGET)), _softmax(np.asarray(LEARNER))
    kl = (pa * np.log(pa / pb)).sum(-1)
    ce = -np.log(pb[[0, 1], [0, 2]])
    np.testing.assert_allclose(losses.distillation(TARGET, LEARNER, LABELS, upsilon=0.3), kl + 0.3 * ce, rtol=1e-5)

  def test_hinton_temperature(self):
    t = 4.0
    pa, pb = _softmax(np.asarray(TARGET) / t), _softmax(np.asarray(LEARNER) / t)
    expected = t * t * (pa * np.log(pa / pb)).sum(-1)
    np.testing.assert_allclose(losses.distillation(TARGET, LEARNER, LABELS, temperature=t), expected, rtol=1e-5)

  def test_l2_on_logits(self):
    expected = 0.5 * ((np.asarray(TARGET) - np.asarray(LEARNER)) ** 2).sum(-1)
    np.testing.assert_allclose(losses.distillation(TARGET, LEARNER, LABELS, form='l2'), expected, rtol=1e-6)

  def test_target_is_held_constant(self):
    grad = jax.grad(lambda t: losses.distillation(t, LEARNER, LABELS, 1.0).sum())(TARGET)
    np.testing.assert_array_equal(grad, 0.0)

  def test_zero_only_at_match(self):
    np.testing.assert_allclose(losses.distillation(TARGET, TARGET, LABELS), 0.0, atol=1e-6)
    self.assertTrue(np.all(losses.distillation(TARGET, LEARNER, LABELS) > 0))

  def test_kl_ignores_zero_probability_terms(self):
    log_p = jnp.log(jnp.array([[1.0, 0.0]]))
    np.testing.assert_allclose(losses.kl_divergence(log_p, jnp.log(jnp.array([[0.5, 0.5]]))), np.log(2), rtol=1e-6)


if __name__ == '__main__':
  absltest.main()
