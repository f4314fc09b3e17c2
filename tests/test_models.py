"""Parameter counts (SPEC §6) and the scan-friendly convolution's gradients."""

from absl.testing import absltest
from absl.testing import parameterized
import flax.linen as nn
import jax
from jax import lax
import jax.numpy as jnp
import numpy as np

from adjax import conv
from adjax import models


class ParameterCountTest(parameterized.TestCase):
  @parameterized.named_parameters(
    ('mlp_student', models.MLP(), 1_276_810),
    ('lenet', models.LeNet(), 3_274_634),
    ('adim_discriminator', models.Heads('lenet', 2, 10), 2 * 3_274_634),
  )
  def test_count(self, model, expected):
    params = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 28, 28, 1)))
    self.assertEqual(models.parameter_count(params), expected)

  @parameterized.named_parameters(
    ('cifar_student', models.CifarStudent(), 1_039_386),
    ('densenet_bc_250_24_paper_teacher', models.DenseNet(depth=250, growth=24), 15_324_406),
    ('densenet_bc_100_12', models.DenseNet(depth=100, growth=12), 769_162),
    ('densenet_bc_40_12_small', models.DenseNet(), 176_122),
  )
  def test_cifar_count(self, model, expected):
    params = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
    self.assertEqual(models.parameter_count(params), expected)

  def test_small_densenet_runs_and_differentiates(self):
    model = models.DenseNet(depth=10, growth=4)
    x = jax.random.normal(jax.random.key(0), (2, 32, 32, 3))
    params = jax.jit(model.init)(jax.random.key(1), x)  # jitted: op by op, this small net takes several times longer
    out, grads = jax.jit(lambda p: (model.apply(p, x), jax.grad(lambda p: jnp.sum(model.apply(p, x) ** 2))(p)))(params)
    self.assertEqual(out.shape, (2, 10))
    self.assertTrue(all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads)))


class DenseTest(absltest.TestCase):
  def test_same_parameters_values_and_gradients_as_flax_dense(self):
    x = jax.random.normal(jax.random.key(0), (6, 13))
    ours, theirs = models.Dense(7), nn.Dense(7)
    params = ours.init(jax.random.key(1), x)
    flax_params = theirs.init(jax.random.key(1), x)
    jax.tree.map(np.testing.assert_array_equal, params, flax_params)  # names, shapes and initial values
    params = jax.tree.map(lambda a: a + jax.random.normal(jax.random.key(2), a.shape), params)  # a nonzero bias
    loss = lambda net, p, x: jnp.sum(jnp.sin(net.apply(p, x)))
    np.testing.assert_allclose(ours.apply(params, x), theirs.apply(params, x), rtol=1e-6)
    for a, b in zip(jax.grad(loss, (1, 2))(ours, params, x), jax.grad(loss, (1, 2))(theirs, params, x)):
      jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), a, b)
    # The kernel's gradient by hand: x^T g with g = cos(x W + b).
    g = jnp.cos(x @ params['params']['kernel'] + params['params']['bias'])
    dw = jax.grad(loss, 1)(ours, params, x)['params']['kernel']
    np.testing.assert_allclose(dw, np.asarray(x).T @ np.asarray(g), rtol=1e-5, atol=1e-5)


class ConvTest(parameterized.TestCase):
  @parameterized.parameters(((4, 28, 28, 1), 5, 32), ((3, 14, 14, 32), 5, 64), ((2, 9, 7, 3), 3, 4))
  def test_value_and_gradients_equal_jax(self, x_shape, k, out):
    kx, kw, kg = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(kx, x_shape)
    w = jax.random.normal(kw, (k, k, x_shape[-1], out)) / k
    g = jax.random.normal(kg, (*x_shape[:3], out))
    ref = lambda x, w: lax.conv_general_dilated(x, w, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    ours_y, ours_vjp = jax.vjp(conv.conv_same, x, w)
    ref_y, ref_vjp = jax.vjp(ref, x, w)
    np.testing.assert_allclose(ours_y, ref_y, rtol=1e-5, atol=1e-5)
    for a, b in zip(ours_vjp(g), ref_vjp(g)):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3 * float(jnp.abs(b).max()))

  def test_gradients_inside_scan_equal_outside(self):
    x = jax.random.normal(jax.random.key(1), (3, 2, 8, 8, 2))
    w = jax.random.normal(jax.random.key(2), (5, 5, 2, 3))
    loss = lambda w, x: jnp.sum(jnp.tanh(conv.conv_same(x, w)))
    scanned = lax.scan(lambda c, xi: (c, jax.grad(loss)(w, xi)), 0, x)[1]
    np.testing.assert_allclose(scanned, jnp.stack([jax.grad(loss)(w, xi) for xi in x]), rtol=1e-5, atol=1e-5)

  def test_vmap_over_kernels_and_inputs_equals_separate_calls(self):
    x = jax.random.normal(jax.random.key(1), (3, 2, 8, 8, 2))
    w = jax.random.normal(jax.random.key(2), (3, 5, 5, 2, 4))
    loss = lambda w, x: jnp.sum(jnp.tanh(conv.conv_same(x, w)))
    batched = jax.jit(jax.vmap(jax.value_and_grad(loss, argnums=(0, 1))))(w, x)
    shared_w = jax.jit(jax.vmap(jax.grad(loss), in_axes=(None, 0)))(w[0], x)
    alone = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    for i in range(3):
      value, (dw, dx) = alone(w[i], x[i])
      np.testing.assert_array_equal(batched[0][i], value)
      np.testing.assert_array_equal(batched[1][0][i], dw)
      np.testing.assert_array_equal(batched[1][1][i], dx)
      np.testing.assert_array_equal(shared_w[i], jax.jit(jax.grad(loss))(w[0], x[i]))

  def test_even_kernel_refused(self):
    with self.assertRaisesRegex(ValueError, 'odd kernel'):
      conv.conv_same(jnp.zeros((1, 4, 4, 1)), jnp.zeros((2, 2, 1, 1)))

  def test_max_pool_equals_flax(self):
    x = jax.random.normal(jax.random.key(0), (2, 8, 6, 3))
    np.testing.assert_array_equal(conv.max_pool_2x2(x), nn.max_pool(x, (2, 2), (2, 2)))


if __name__ == '__main__':
  absltest.main()
