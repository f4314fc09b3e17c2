"""On-device augmentation: exact integer shifts, identity at zero, mass roughly kept, flips."""

from absl.testing import absltest
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from adjax import augment


class AugmentTest(absltest.TestCase):
  def test_zero_parameters_are_identity(self):
    x = jax.random.uniform(jax.random.key(0), (4, 12, 12, 1))
    np.testing.assert_allclose(augment.random_affine(jax.random.key(1), x, 0.0, 0.0, 0.0), x, atol=1e-6)

  def test_pure_shift_moves_pixels(self):
    x = jnp.zeros((1, 9, 9, 1)).at[0, 4, 4, 0].set(1.0)
    out = augment.random_affine(jax.random.key(3), x, 0.0, 2.0, 0.0)
    # A random sub-pixel shift: the unit mass moves, bilinear weights still sum to one.
    self.assertAlmostEqual(float(out.sum()), 1.0, places=5)
    centre_of_mass = np.array([(np.arange(9)[:, None] * out[0, ..., 0]).sum(), (np.arange(9) * out[0, ..., 0]).sum()])
    self.assertTrue(np.all(np.abs(centre_of_mass - 4) <= 2.0 + 1e-5))
    self.assertGreater(np.abs(centre_of_mass - 4).max(), 0.01)

  def test_exact_rotation_and_integer_shift(self):
    x = jax.random.uniform(jax.random.key(0), (1, 7, 7, 1))
    one = lambda a, s: augment.affine(x, jnp.array([a]), jnp.array([s], jnp.float32), jnp.array([1.0]))[0, ..., 0]
    image = np.asarray(x[0, ..., 0])
    rotated = one(np.pi / 2, (0.0, 0.0))
    self.assertTrue(
      np.allclose(rotated, np.rot90(image, 1), atol=1e-5) or np.allclose(rotated, np.rot90(image, -1), atol=1e-5)
    )
    shifted = np.zeros_like(image)
    shifted[2:, :] = image[:-2, :]  # two rows down, zeros come in
    np.testing.assert_allclose(one(0.0, (2.0, 0.0)), shifted, atol=1e-5)

  def test_random_affine_stays_in_range(self):
    x = jax.random.uniform(jax.random.key(0), (64, 28, 28, 1))
    out = augment.random_affine(jax.random.key(1), x, 15.0, 2.0, 0.1)
    self.assertEqual(out.shape, x.shape)
    self.assertTrue(np.all(np.isfinite(out)))
    self.assertFalse(np.allclose(out, x))
    self.assertLessEqual(float(out.max()), float(x.max()) + 1e-6)

  def test_flip_mirrors_about_half_and_keeps_the_rest(self):
    x = jax.random.uniform(jax.random.key(0), (256, 5, 6, 3))
    out = np.asarray(augment.random_flip(jax.random.key(1), x))
    flipped = np.array([np.array_equal(o, a[:, ::-1]) for o, a in zip(out, np.asarray(x))])
    kept = np.array([np.array_equal(o, a) for o, a in zip(out, np.asarray(x))])
    np.testing.assert_array_equal(flipped, ~kept)  # each image exactly one of the two
    self.assertBetween(flipped.mean(), 0.4, 0.6)  # Binomial(256, 1/2): 5.1 std either side

  def test_apply_composes_the_configured_maps(self):
    x = jax.random.uniform(jax.random.key(0), (8, 6, 6, 1))
    cfg = lambda **kw: ml_collections.ConfigDict({'rotation': 0.0, 'shift': 0.0, 'zoom': 0.0, 'flip': False, **kw})
    self.assertTrue(augment.is_identity(cfg()))
    self.assertFalse(augment.is_identity(cfg(flip=True)))
    key = jax.random.key(2)
    np.testing.assert_array_equal(augment.apply(key, x, cfg()), x)
    np.testing.assert_array_equal(
      augment.apply(key, x, cfg(flip=True)), augment.random_flip(jax.random.fold_in(key, 1), x)
    )
    np.testing.assert_array_equal(augment.apply(key, x, cfg(shift=1.0)), augment.random_affine(key, x, 0.0, 1.0, 0.0))


if __name__ == '__main__':
  absltest.main()
