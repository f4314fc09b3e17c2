"""Privileged inputs: the teacher and discriminator see them, the student never does."""

import os

from absl.testing import absltest
import flax.linen as nn
import jax
import numpy as np

import adjax
from adjax import config as config_lib
from adjax import data
from adjax import game as game_lib
from adjax import rounds
from adjax import train
from tests.test_train import tiny_config


def _lupi(method='adim', **overrides):
  return tiny_config(method, dataset='mnist5k_lupi', **overrides)


class PrivilegedTest(absltest.TestCase):
  def test_mnist5k_lupi_views(self):
    s = data.load(config_lib.validate(_lupi()))
    self.assertEqual((s.x_train.shape, s.xp_train.shape), ((50, 7, 7, 1), (50, 28, 28, 1)))
    np.testing.assert_allclose(s.x_train, data.downsample(s.xp_train, 4), rtol=1e-6)
    self.assertEqual((s.x_test.shape[0], s.xp_test.shape[0]), (4850, 4850))

  def test_student_only_ever_applies_to_the_unprivileged_view(self):
    c = config_lib.validate(_lupi())
    splits = data.load(c)
    game = game_lib.build(c, 10)
    seen = []
    original = nn.Module.apply

    def recording_apply(module, variables, *args, **kwargs):
      seen.append((type(module).__name__, module is game.nets['student'], args[0].shape[1:]))
      return original(module, variables, *args, **kwargs)

    nn.Module.apply = recording_apply
    try:
      state = game_lib.init_state(game, jax.random.key(0), splits.split('train'))
      train_data = game_lib.as_data(splits.split('train'), members=1)
      play = jax.vmap(lambda s, d: rounds.play_round(game, s, d), in_axes=(0, game_lib.DATA_AXES))
      jax.jit(play)(jax.tree.map(lambda a: a[None], state), train_data)
    finally:
      nn.Module.apply = original
    student_shapes = {shape for _, is_student, shape in seen if is_student}
    other_shapes = {shape for _, is_student, shape in seen if not is_student}
    self.assertEqual(student_shapes, {(7, 7, 1)})
    self.assertEqual(other_shapes, {(28, 28, 1)})
    self.assertEqual(state['student']['params']['params']['Dense_0']['kernel'].shape, (49, 800))
    self.assertEqual(state['teacher']['params']['params']['Dense_0']['kernel'].shape, (784, 800))

  def test_lupi_run_and_npz_privileged_keys(self):
    results = train.train_and_evaluate(_lupi('adib', rounds=1), self.create_tempdir().full_path)
    self.assertGreater(results['final']['teacher']['test_accuracy'], 0.3)
    path = os.path.join(self.create_tempdir().full_path, 'p.npz')
    x = np.random.default_rng(0).normal(size=(60, 5)).astype(np.float32)
    y = np.arange(60) % 3
    np.savez(path, x_train=x[:50], y_train=y[:50], x_test=x[50:], y_test=y[50:], xp_train=x[:50, :2])
    c = tiny_config('student', dataset='npz', data_file=path, n_train=9, n_val=9)
    with self.assertRaisesRegex(config_lib.ConfigError, 'xp_train but not its pair'):
      data.load(config_lib.validate(c))
    with self.assertRaisesRegex(config_lib.ConfigError, 'privileged inputs, which augment does not transform'):
      adjax.setup(_lupi(augment={'rotation': 5.0, 'shift': 0.0, 'zoom': 0.0, 'flip': False}))


if __name__ == '__main__':
  absltest.main()
