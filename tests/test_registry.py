"""Extension from outside the package: a registered method through the API, the CLI and a sweep; import hygiene;
registries refuse clashes."""

import os
import subprocess
import sys

from absl.testing import absltest
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import adjax
from adjax import config as config_lib
from adjax import fields
from adjax import game as game_lib
from adjax import methods
from adjax import models
from adjax import sweeps
from adjax import train
from adjax import values
from adjax.run import identity as identity_lib
from tests import plugin_method
from tests.test_train import tiny_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class OutsideMethodTest(absltest.TestCase):
  def test_python_api_trains_it_and_its_weight_is_an_array_in_the_state(self):
    c = plugin_method.get_config()
    results = adjax.train_and_evaluate(c, self.create_tempdir().full_path)
    self.assertEqual((results['method'], [h['round'] for h in results['history']]), ('kd_gan', [0, 1, 2]))
    self.assertBetween(results['final']['student']['test_accuracy'], 0.2, 1.0)
    self.assertIn('discriminator_loss', results['history'][1])
    game = game_lib.build(config_lib.validate(c), 10)
    state = game_lib.init_state(game, jax.random.key(0), {'x': np.zeros((1, 28, 28, 1), np.float32)})
    np.testing.assert_allclose(state['hparams']['weights'], [1.0, 0.5, 0.0])
    self.assertEqual(set(state), {'round', 'rng', 'hparams', 'student', 'teacher', 'discriminator'})

  def test_command_line_sets_its_weight(self):
    # The flag reaches the config a run trains with (--print_config prints it after the overrides); the Python API
    # test trains the method and the sweep test trains it at other weights.
    printed = subprocess.run(
      [sys.executable, '-m', 'experiments.main', '--config=tests/plugin_method.py', '--print_config',
       '--config.game.lambda_adv=0.25'],
      cwd=REPO, capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    self.assertIn("game.lambda_adv = 0.25  # λ: weight of the student's adversarial term (kd_gan)", printed)
    self.assertIn("method = 'kd_gan'", printed)

  def test_its_weight_sweeps_in_one_program_and_a_negative_one_is_refused(self):
    c = plugin_method.get_config()
    self.assertIn('game.lambda_adv', fields.sweepable())
    sweep = [{'game.lambda_adv': 0.0}, {'game.lambda_adv': 2.0}]
    results = train.train_and_evaluate(c, self.create_tempdir().full_path, sweep)
    zero, two = results['per_seed']
    self.assertEqual((zero['overrides'], two['overrides']), tuple(sweep))
    self.assertNotEqual(zero['history'][1]['student_loss'], two['history'][1]['student_loss'])
    games = [game_lib.build(sweeps.with_overrides(config_lib.validate(c), p), 10) for p in sweep]
    self.assertEqual(games[0], games[1])  # one compiled program for both
    c.game.lambda_adv = -1.0
    workdir = self.create_tempdir()
    with self.assertRaisesRegex(config_lib.ConfigError, r'game.lambda_adv=-1.0 is negative; weights must be >= 0'):
      train.train_and_evaluate(c, workdir.full_path)
    self.assertEqual(os.listdir(workdir.full_path), [])


class UserPartsTest(absltest.TestCase):
  def test_an_optimizer_is_identified_by_its_hyperparameters(self):
    d = identity_lib.describe_optimizer
    self.assertEqual(d(optax.sgd(0.05, momentum=0.9)), d(optax.sgd(0.05, momentum=0.9)))
    self.assertNotEqual(d(optax.sgd(0.05, momentum=0.9)), d(optax.sgd(5.0, momentum=0.9)))
    self.assertNotEqual(d(optax.sgd(0.05, momentum=0.9)), d(optax.sgd(0.05, momentum=0.5)))
    self.assertNotEqual(d(optax.inject_hyperparams(optax.adam)(learning_rate=0.1)),
                        d(optax.inject_hyperparams(optax.adam)(learning_rate=0.3)))  # fmt: skip
    c = tiny_config('student', rounds=1)
    workdir = self.create_tempdir().full_path
    train.train_and_evaluate(c, workdir, optimizers={'student': optax.sgd(0.05, momentum=0.9)})
    with self.assertRaisesRegex(
      config_lib.ConfigError, r'holds another run \(its checkpoints/1 differs in optimizers: optimizers.student'
    ):
      train.train_and_evaluate(c, workdir, optimizers={'student': optax.sgd(5.0, momentum=0.9)})

  def test_a_network_with_the_wrong_outputs_is_refused_before_anything_is_written(self):
    class Seven(nn.Module):
      @nn.compact
      def __call__(self, x):
        return nn.Dense(7)(x.reshape(x.shape[0], -1))

    workdir = os.path.join(self.create_tempdir().full_path, 'run')
    with self.assertRaisesRegex(
      config_lib.ConfigError, r"nets\['student'\] gives outputs of shape \(2, 7\) .* \[B, 10\]"
    ):
      train.train_and_evaluate(tiny_config('adim'), workdir, nets={'student': Seven()})
    self.assertFalse(os.path.exists(workdir))
    with self.assertRaisesRegex(config_lib.ConfigError, r"nets\['studnet'\] is not a player; players:"):
      train.train_and_evaluate(tiny_config('adim'), workdir, nets={'studnet': Seven()})


class RegistryTest(absltest.TestCase):
  def test_clashes_and_unknown_parts_are_refused(self):
    with self.assertRaisesRegex(ValueError, "method 'adim' is already registered as something else"):
      adjax.register_method('adim', adjax.Method(players=('student',), supervised=True))
    adjax.register_method('adim', methods.METHODS['adim'])  # the same entry again: a no-op
    with self.assertRaisesRegex(ValueError, 'reads game.gamma_x: register it first'):
      adjax.register_method('m_x', adjax.Method(players=('student',), adversarial=(0.0, 'gamma_x', 0.0)))
    with self.assertRaisesRegex(ValueError, "distill='nope' is not one of kd, hinton"):
      adjax.register_method('m_y', adjax.Method(players=('student',), distill='nope'))
    with self.assertRaisesRegex(ValueError, "discriminator='multi' is not None or one of"):
      adjax.register_method('m_z', adjax.Method(players=methods.PLAYERS, discriminator='multi'))
    with self.assertRaisesRegex(ValueError, 'a discriminator kind goes with a trained discriminator player'):
      adjax.register_method('m_w', adjax.Method(players=('student',), discriminator='binary'))
    with self.assertRaisesRegex(ValueError, "model name 'mlp' must be a new identifier"):
      adjax.register_model('mlp', object)

  def test_import_adjax_pulls_in_no_experiments_torch_tensorboard_or_plotting(self):
    code = (
      'import sys, adjax, adjax.train, adjax.game\n'
      "print(','.join(m for m in ('experiments', 'torch', 'tensorboardX', 'matplotlib', 'tensorflow') "
      'if m in sys.modules))'
    )
    out = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True, text=True, check=True)
    self.assertEqual(out.stdout.strip(), '')


if __name__ == '__main__':
  absltest.main()


class DeclaredEntriesTest(absltest.TestCase):
  def test_a_registered_discriminator_kind_is_what_a_method_names(self):
    # A "binary" discriminator whose real and fake columns are swapped: D scores fakes. Its terms are binary's,
    # permuted, so the exact value at the same scores is binary's value with the roles' log-probabilities swapped.
    binary = values.DISCRIMINATOR_KINDS['binary']
    swap = lambda f: lambda h, y: f(h, y)[:, np.array([1, 0, 0])]
    adjax.register_discriminator_kind(
      'fake_detector', adjax.DiscriminatorKind(swap(binary.log_probs), swap(binary.log_complements))
    )
    h = jax.random.normal(jax.random.key(0), (4, 5))
    y = jax.nn.one_hot(jnp.arange(4), 5)
    np.testing.assert_allclose(
      values.role_log_probs('fake_detector', h, y)[:, 0], values.role_log_probs('binary', h, y)[:, 1]
    )
    self.addCleanup(methods.METHODS.pop, 'ngan_fake', None)
    adjax.register_method('ngan_fake', adjax.Method(players=('discriminator', 'student'), discriminator='fake_detector',
                                                    adversarial=(1.0, 1.0, 0.0)))  # fmt: skip
    with self.assertRaisesRegex(ValueError, "discriminator='no_such_kind' is not None or one of .*fake_detector"):
      adjax.register_method('bad', adjax.Method(players=('discriminator', 'student'), discriminator='no_such_kind'))
    game = game_lib.build(config_lib.validate(tiny_config('ngan_fake')), 10)
    self.assertIsInstance(game.nets['discriminator'], nn.Module)  # no heads: the network itself

  def test_a_registered_model_is_made_with_num_outputs_alone_also_as_adim_heads(self):
    class Tiny(nn.Module):
      num_outputs: int

      @nn.compact
      def __call__(self, x):
        return nn.Dense(self.num_outputs)(x.reshape(x.shape[0], -1))

    def make(num_outputs):  # the documented contract: no other argument (ADIM's heads once passed name=)
      return Tiny(num_outputs)

    def accepts(shape):
      return None if shape[:2] == (28, 28) else f'needs 28x28, got {shape}'

    adjax.register_model('tiny_square', make, accepts=accepts)
    self.addCleanup(models.MODELS.pop, 'tiny_square')  # other tests list the registered models
    c = tiny_config('adim')
    c.discriminator.model = 'tiny_square'
    game = game_lib.build(config_lib.validate(c), 10)
    state = game_lib.init_state(game, jax.random.key(0), {'x': np.zeros((1, 28, 28, 1), np.float32)})
    self.assertEqual(set(state['discriminator']['params']['params']), {'h1', 'h2'})  # game.heads copies
    x, y = np.zeros((40, 8, 8), np.float32), np.arange(40) % 4
    with self.assertRaisesRegex(config_lib.ConfigError, r'discriminator.model=tiny_square needs 28x28, got \(8, 8\)'):
      adjax.setup(c, data=adjax.from_arrays(x, y, x[:8], y[:8]))


class DistillationOptionsTest(absltest.TestCase):
  def test_an_option_that_is_a_weight_or_not_a_field_is_refused(self):
    loss = lambda target, logits, y, *, nu: nu * jnp.sum((target - logits) ** 2, -1)
    with self.assertRaisesRegex(ValueError, 'option game.nu is a weight .* name it in reads'):
      adjax.register_distillation('swept_option', adjax.Distillation(loss, options=('nu',)))
    self.assertNotIn('swept_option', methods.DISTILLATION)
    unknown = lambda target, logits, y, *, sharpness: sharpness * jnp.sum((target - logits) ** 2, -1)
    adjax.register_distillation('sharp', adjax.Distillation(unknown, options=('sharpness',)))
    self.addCleanup(methods.DISTILLATION.pop, 'sharp')
    adjax.register_method('sharp_codis', adjax.Method(players=('teacher', 'student'), distill='sharp'))
    self.addCleanup(methods.METHODS.pop, 'sharp_codis')
    with self.assertRaisesRegex(config_lib.ConfigError, "term 'sharp', whose option game.sharpness this config lacks"):
      config_lib.validate(tiny_config('sharp_codis'))
