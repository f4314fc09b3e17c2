"""Closed-form facts of SPEC §3 on random distributions, and the discriminators' numerics."""

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from adjax import discriminators
from adjax import losses
from adjax import values


class X64TestCase(parameterized.TestCase):
  """Closed forms are checked to 1e-10, in float64."""

  def setUp(self):
    super().setUp()
    self.enter_context(jax.enable_x64(True))


def _random_log_probs(key, b, k, concentration=1.0):
  return jnp.log(jax.random.dirichlet(key, jnp.full((k,), concentration), (b,)))


def _kl(p, q):
  return jnp.sum(p * (jnp.log(p) - jnp.log(q)), -1)


def _js(p, q):
  m = 0.5 * (p + q)
  return 0.5 * _kl(p, m) + 0.5 * _kl(q, m)


class BinaryGameTest(X64TestCase):
  """Lemma 4.1 and Theorem 4.2 (ADIB)."""

  def setUp(self):
    super().setUp()
    k = jax.random.split(jax.random.key(0), 3)
    self.lr, self.ls, self.lt = (_random_log_probs(ki, 4, 5) for ki in k)
    self.ws, self.wt = 0.3, 0.7
    self.weights = (1.0, self.ws, self.wt)

  def _optimal_h(self):
    p_omega = self.ws * jnp.exp(self.ls) + self.wt * jnp.exp(self.lt)
    return self.lr - jnp.log(p_omega)  # logit of D* = p_r / (p_r + p_ω)

  def test_lemma_4_1_optimal_discriminator_is_stationary_and_maximal(self):
    h = self._optimal_h()
    v = lambda h: jnp.sum(values.value_exact('binary', self.weights, h, self.lr, self.ls, self.lt))
    np.testing.assert_allclose(jax.grad(v)(h), 0.0, atol=1e-10)
    for i in range(5):
      noise = 0.3 * jax.random.normal(jax.random.key(i), h.shape)
      self.assertLess(float(v(h + noise)), float(v(h)))

  def test_theorem_4_2_value_at_optimum_is_2js_minus_log4_plus_kd(self):
    nu, mu, upsilon = 0.4, 1.7, 0.6
    v = values.value_exact('binary', self.weights, self._optimal_h(), self.lr, self.ls, self.lt, nu, mu, upsilon)
    pr, ps, pt = (jnp.exp(x) for x in (self.lr, self.ls, self.lt))
    p_omega = self.ws * ps + self.wt * pt
    kd = nu * (_kl(pt, ps) + upsilon * _kl(pr, ps)) + mu * (_kl(ps, pt) + upsilon * _kl(pr, pt))
    np.testing.assert_allclose(v, 2 * _js(pr, p_omega) - np.log(4) + kd, rtol=1e-10)

  def test_theorem_4_2_minimum_at_equal_distributions(self):
    h = jnp.zeros_like(self.lr)  # D* = p_r / (2 p_r) = 1/2
    v = values.value_exact('binary', self.weights, h, self.lr, self.lr, self.lr, 1.0, 1.0, 1.0)
    np.testing.assert_allclose(v, -np.log(4), rtol=1e-12)


class MulticlassGameTest(X64TestCase):
  """Lemma 4.3, Theorem 4.4 and Lemmas 4.6/4.7 (ADIM)."""

  def _optimal_h(self, w, lr, ls, lt):
    wr, ws, wt = w
    log_r, log_s, log_t = jnp.log(wr) + lr, jnp.log(ws) + ls, jnp.log(wt) + lt
    a = log_r - jnp.logaddexp(log_s, log_t)  # σ(a) = D_r*
    b = log_s - log_t  # σ(b) = D_s* / (D_s* + D_t*)
    return jnp.stack([a, b], axis=1)

  @parameterized.parameters(((0.2, 0.5, 0.3),), ((1 / 3, 1 / 3, 1 / 3),), ((0.6, 0.1, 0.3),))
  def test_lemma_4_3_optimal_discriminator(self, w):
    k = jax.random.split(jax.random.key(1), 3)
    lr, ls, lt = (_random_log_probs(ki, 3, 4) for ki in k)
    h = self._optimal_h(w, lr, ls, lt)
    log_d = jax.vmap(lambda y: discriminators.multiclass_log_probs(h, jnp.broadcast_to(y, (3, 4))))(jnp.eye(4))
    weighted = jnp.stack([w[0] * jnp.exp(lr), w[1] * jnp.exp(ls), w[2] * jnp.exp(lt)], -1)  # [B, K, 3]
    expected = weighted / weighted.sum(-1, keepdims=True)
    np.testing.assert_allclose(jnp.exp(log_d).transpose(1, 0, 2), expected, rtol=1e-10)
    v = lambda h: jnp.sum(values.value_exact('multiclass', w, h, lr, ls, lt))
    np.testing.assert_allclose(jax.grad(v)(h), 0.0, atol=1e-10)
    self.assertLess(float(v(h + 0.2 * jax.random.normal(jax.random.key(9), h.shape))), float(v(h)))

  @parameterized.parameters(((0.2, 0.5, 0.3),), ((0.6, 0.1, 0.3),))
  def test_theorem_4_4_value_at_optimum(self, w):
    k = jax.random.split(jax.random.key(2), 3)
    lr, ls, lt = (_random_log_probs(ki, 3, 6) for ki in k)
    nu, mu, upsilon = 0.5, 0.25, 2.0
    v = values.value_exact('multiclass', w, self._optimal_h(w, lr, ls, lt), lr, ls, lt, nu, mu, upsilon)
    ps = [jnp.exp(x) for x in (lr, ls, lt)]
    p_bar = sum(wi * pi for wi, pi in zip(w, ps))
    kd = nu * (_kl(ps[2], ps[1]) + upsilon * _kl(ps[0], ps[1])) + mu * (_kl(ps[1], ps[2]) + upsilon * _kl(ps[0], ps[2]))
    expected = sum(wi * np.log(wi) for wi in w) + sum(wi * _kl(pi, p_bar) for wi, pi in zip(w, ps)) + kd
    np.testing.assert_allclose(v, expected, rtol=1e-10)
    same = values.value_exact('multiclass', w, self._optimal_h(w, lr, lr, lr), lr, lr, lr)
    np.testing.assert_allclose(same, sum(wi * np.log(wi) for wi in w), rtol=1e-10)

  @parameterized.named_parameters(('student', 'student'), ('teacher', 'teacher'))
  def test_lemmas_4_6_4_7_limit(self, role):
    k = jax.random.split(jax.random.key(3), 3)
    lr, ls, lt = (_random_log_probs(ki, 2, 4) for ki in k)
    pr, ps, pt = (jnp.exp(x) for x in (lr, ls, lt))
    upsilon = 0.7
    errors = []
    for eps in (1e-3, 1e-4, 1e-5):
      small = eps / (1 + upsilon)  # ω_r = υ · ω_small so that υ = ω_r / ω_small
      if role == 'student':  # ω_s → 1
        w = (upsilon * small, 1 - eps, small)
        limit = _kl(pt, ps) + upsilon * _kl(pr, ps)
      else:  # ω_t → 1
        w = (upsilon * small, small, 1 - eps)
        limit = _kl(ps, pt) + upsilon * _kl(pr, pt)
      v = values.value_exact('multiclass', w, self._optimal_h(w, lr, ls, lt), lr, ls, lt)
      scaled = (v - sum(wi * np.log(wi) for wi in w)) / small
      errors.append(float(jnp.max(jnp.abs(scaled - limit))))
    self.assertLess(errors[-1], 1e-3)
    self.assertLess(errors[-1], errors[0])  # converges as ε → 0


class DiscriminatorNumericsTest(X64TestCase):
  @parameterized.parameters(2, 3)
  def test_probabilities_sum_to_one(self, heads):
    h = 5 * jax.random.normal(jax.random.key(0), (7, heads, 4))
    y = jax.nn.softmax(jax.random.normal(jax.random.key(1), (7, 4)))
    total = jnp.exp(discriminators.multiclass_log_probs(h, y)).sum(-1)
    np.testing.assert_allclose(total, 1.0, rtol=1e-12)

  def test_binary_complement(self):
    h = 5 * jax.random.normal(jax.random.key(0), (7, 4))
    y = jax.nn.one_hot(jnp.arange(7) % 4, 4)
    log_d, log_not_d = discriminators.binary_log_probs(h, y)
    np.testing.assert_allclose(jnp.exp(log_d) + jnp.exp(log_not_d), 1.0, rtol=1e-12)


class LargeLogitsTest(parameterized.TestCase):
  @parameterized.parameters('binary', 'multiclass')
  def test_finite_at_logits_1e4(self, kind):
    with jax.enable_x64(False):
      shape = (6, 4) if kind == 'binary' else (6, 2, 4)
      h = 1e4 * jnp.sign(jax.random.normal(jax.random.key(0), shape, jnp.float32))
      y = jax.nn.one_hot(jnp.arange(6) % 4, 4, dtype=jnp.float32)
      logits = 1e4 * jax.random.normal(jax.random.key(1), (6, 4), jnp.float32)

      def objective(h, logits):
        log_p = jax.nn.log_softmax(logits)
        v = values.adversarial_sampled(kind, (0.3, 0.3, 0.4), h, y, jnp.exp(log_p), y)
        kd = losses.distillation(logits[::-1], logits, jnp.arange(6) % 4, upsilon=1.0)
        return jnp.sum(v) + jnp.sum(kd)

      value, grads = jax.value_and_grad(objective, argnums=(0, 1))(h, logits)
      self.assertTrue(np.isfinite(value))
      for g in grads:
        self.assertTrue(np.all(np.isfinite(g)))
      self.assertTrue(np.all(np.isfinite(values.label_table(kind, h))))


if __name__ == '__main__':
  absltest.main()
