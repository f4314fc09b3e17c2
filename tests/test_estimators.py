"""Estimators against the gradient of the exact expectation (SPEC §4), and the ExpConcrete density."""

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from adjax import estimators

K = 3
LOGITS = jnp.array([0.3, -0.8, 1.1])
H = jnp.array([1.5, -2.0, 0.5])
N = 200_000


def reward_fn(y_BxK):
  # A discriminator-like reward: log σ(<y, h>), nonlinear in y.
  return jax.nn.log_sigmoid(y_BxK @ H)


def categorical_objective(logits):
  return jnp.sum(jax.nn.softmax(logits) * reward_fn(jnp.eye(K)))


def relaxed_objective(logits, tau, m=160):
  """E_g[R(softmax((log p + g)/τ))] by a midpoint rule over the Gumbel quantiles of each coordinate."""
  u = (jnp.arange(m) + 0.5) / m
  g = -jnp.log(-jnp.log(u))
  g_MxMxMxK = jnp.stack(jnp.meshgrid(g, g, g, indexing='ij'), -1)
  y = jax.nn.softmax((jax.nn.log_softmax(logits) + g_MxMxMxK) / tau, axis=-1)
  return jnp.mean(reward_fn(y.reshape(-1, K)))


def per_draw_gradients(estimator, tau, baseline='none', moving_average=0.0, offset=0.0, seed=0):
  logits_NxK = jnp.broadcast_to(LOGITS, (N, K))
  rfn = lambda y: reward_fn(y) + offset

  def total(logits_NxK):
    surrogate_N, _ = estimators.surrogate(
      estimator, jax.random.key(seed), logits_NxK, rfn, tau, baseline, moving_average
    )
    return jnp.sum(surrogate_N)

  return jax.grad(total)(logits_NxK)  # row i: the estimate from draw i


class EstimatorTest(parameterized.TestCase):
  def assert_unbiased(self, draws_NxK, expected_K):
    mean = draws_NxK.mean(0)
    stderr = draws_NxK.std(0) / np.sqrt(N)
    np.testing.assert_array_less(np.abs(mean - expected_K), 5 * stderr + 1e-4)

  @parameterized.parameters('none', 'batch_mean', 'moving_average')
  def test_reinforce_matches_categorical_gradient(self, baseline):
    draws = per_draw_gradients('reinforce', 1.0, baseline, moving_average=-0.7)
    self.assert_unbiased(draws, jax.grad(categorical_objective)(LOGITS))

  @parameterized.parameters(0.5, 2.0)
  def test_concrete_reinforce_matches_relaxed_gradient(self, tau):
    draws = per_draw_gradients('concrete_reinforce', tau, 'batch_mean')
    self.assert_unbiased(draws, jax.grad(relaxed_objective)(LOGITS, tau))

  @parameterized.parameters(0.5, 2.0)
  def test_pathwise_matches_relaxed_gradient(self, tau):
    draws = per_draw_gradients('pathwise', tau)
    self.assert_unbiased(draws, jax.grad(relaxed_objective)(LOGITS, tau))

  def test_relaxed_objective_is_its_own_check(self):
    # The quadrature that the two tests above trust: at tiny τ it becomes the categorical objective.
    np.testing.assert_allclose(relaxed_objective(LOGITS, 0.01), categorical_objective(LOGITS), atol=2e-3)

  def test_straight_through_forward_is_categorical_and_backward_pathwise(self):
    logits_NxK = jnp.broadcast_to(LOGITS, (N, K))
    value_N, _ = estimators.surrogate('straight_through', jax.random.key(0), logits_NxK, reward_fn, 0.5)
    stderr = value_N.std() / np.sqrt(N)
    self.assertLess(abs(float(value_N.mean() - categorical_objective(LOGITS))), 5 * stderr)
    linear = lambda y: y @ H  # ∂R/∂y is constant, so ST and pathwise gradients coincide per draw
    grads = [
      jax.grad(lambda z, e=e: jnp.sum(estimators.surrogate(e, jax.random.key(1), z, linear, 0.5)[0]))(logits_NxK[:64])
      for e in ('straight_through', 'pathwise')
    ]
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-5, atol=1e-7)

  def test_batch_mean_baseline_reduces_variance(self):
    plain = per_draw_gradients('reinforce', 1.0, 'none', offset=10.0)
    centred = per_draw_gradients('reinforce', 1.0, 'batch_mean', offset=10.0)
    self.assertLess(float(centred.var(0).sum()), 0.1 * float(plain.var(0).sum()))

  def test_generator_sample_matches_the_surrogates_draw(self):
    key = jax.random.key(3)
    logits = jax.random.normal(key, (5, K))
    for estimator in estimators.ESTIMATORS:
      seen = []
      estimators.surrogate(estimator, key, logits, lambda y: seen.append(y) or jnp.zeros(5), 0.7)
      np.testing.assert_allclose(estimators.generator_sample(estimator, key, logits, 0.7), seen[0], rtol=1e-6)


class ExpConcreteDensityTest(parameterized.TestCase):
  @parameterized.parameters((0.3, 0.4), (1.0, -1.2), (4.0, 2.0))
  def test_two_classes_equal_logistic_change_of_variables(self, tau, logit_diff):
    # K = 2: d = l1 - l2 = (log p1 - log p2 + L)/τ with L ~ Logistic(0, 1), and l1 = log σ(d),
    # so the density of l1 is logistic(d; (log p1 - log p2)/τ, 1/τ) / σ(-d).
    log_p = jax.nn.log_softmax(jnp.array([logit_diff, 0.0]))
    d = jnp.linspace(-6, 6, 25)
    log_y = jnp.stack([jax.nn.log_sigmoid(d), jax.nn.log_sigmoid(-d)], -1)
    z = (d - logit_diff / tau) * tau  # standardised logistic variable
    log_logistic = jnp.log(tau) - z - 2 * jax.nn.softplus(-z)
    expected = log_logistic - jax.nn.log_sigmoid(-d)
    ours = estimators.exp_concrete_log_density(log_y, jnp.broadcast_to(log_p, log_y.shape), tau) - log_y[:, 1]
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)

  def test_two_classes_integrates_to_one(self):
    l1 = jnp.linspace(-40.0, -1e-7, 400_001)  # l1 = log ŷ1 < 0
    log_y = jnp.stack([l1, jnp.log(-jnp.expm1(l1))], -1)
    log_p = jnp.broadcast_to(jax.nn.log_softmax(jnp.array([0.7, -0.2])), log_y.shape)
    density = jnp.exp(estimators.exp_concrete_log_density(log_y, log_p, 0.8) - log_y[:, 1])
    np.testing.assert_allclose(jnp.trapezoid(density, l1), 1.0, atol=2e-3)

  def test_samples_are_log_simplex_points(self):
    log_y = estimators.concrete_log_sample(jax.random.key(0), jax.nn.log_softmax(jnp.zeros((100, 5))), 0.1)
    np.testing.assert_allclose(jax.nn.logsumexp(log_y, -1), 0.0, atol=1e-5)


class TemperatureTest(absltest.TestCase):
  def test_exponential_decay_clamped(self):
    taus = [float(estimators.temperature(r, 10.0, 0.1, 0.88, 2)) for r in (0, 1, 2, 3, 100)]
    np.testing.assert_allclose(taus, [10.0, 10.0, 8.8, 8.8, 0.1], rtol=1e-6)


if __name__ == '__main__':
  absltest.main()
