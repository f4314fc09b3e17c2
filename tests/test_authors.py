"""The authors' conditions (SPEC §8) and the non-saturating generator reward, each against a hand computation."""

import functools
import json
import os

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from adjax import config as config_lib
from adjax import estimators
from adjax import fields
from adjax import game as game_lib
from adjax import methods
from adjax import objectives
from adjax import rounds
from adjax import train
from adjax import values
from adjax.run import teacher as teacher_lib
from tests.test_train import tiny_config


def _sigmoid(z):
  return 1 / (1 + np.exp(-z))


def _game(method, **game_fields):
  c = tiny_config(method)
  for name, value in game_fields.items():
    c.game[name] = value
  c = config_lib.validate(c)
  return game_lib.build(c, 10), c


class AuthorsUpdateTest(absltest.TestCase):
  def test_gradient_is_sigmoid_of_the_sampled_logit_minus_the_discriminators_probability(self):
    logits = jax.random.normal(jax.random.key(0), (6, 4)) * 2
    key = jax.random.key(1)
    d = np.array([0.9, 0.1, 0.5, 0.7, 0.3, 0.05])  # what the discriminator says of each sample

    def reward_fn(y_BxK):  # a binary discriminator's log(1 − D), as NGAN's and ADIB's generators get it
      return jnp.log1p(-jnp.asarray(d))

    grad = jax.grad(lambda z: jnp.sum(estimators.surrogate('authors', key, z, reward_fn, 1.0)[0]))(logits)
    y = np.asarray(estimators.generator_sample('authors', key, logits, 1.0))
    self.assertTrue(np.all(y.sum(-1) == 1) and np.all((y == 0) | (y == 1)))  # one-hot, a categorical draw
    z_sampled = np.sum(np.asarray(logits) * y, -1)
    # d/dz of −D log σ(z) − (1 − D) log(1 − σ(z)) at the sampled label, zero elsewhere.
    np.testing.assert_allclose(np.asarray(grad), (_sigmoid(z_sampled) - d)[:, None] * y, rtol=1e-5, atol=1e-7)

  def test_target_is_the_probability_the_generator_wants_high(self):
    h = jax.random.normal(jax.random.key(2), (5, 2, 3))  # an ADIM discriminator, two heads
    y = jax.nn.one_hot(jnp.array([0, 1, 2, 1, 0]), 3)
    log_d = values.role_log_probs('multiclass', h, y)
    target = estimators.authors_target(log_d[:, methods.STUDENT])
    s = np.einsum('bhk,bk->bh', np.asarray(h, np.float64), np.asarray(y, np.float64))
    d_student = _sigmoid(-s[:, 0]) * _sigmoid(s[:, 1])  # fake (head 1), then student among fakes (head 2)
    np.testing.assert_allclose(target, 1 - d_student, rtol=1e-6)
    hb = jax.random.normal(jax.random.key(3), (5, 3))
    d_real = _sigmoid(np.sum(np.asarray(hb) * np.asarray(y), -1))
    log_fake = values.role_log_probs('binary', hb, y)[:, methods.STUDENT]
    np.testing.assert_allclose(estimators.authors_target(log_fake), d_real, rtol=1e-5)  # D, as the authors' reward


class NonSaturatingTest(parameterized.TestCase):
  @parameterized.parameters(('binary', (7, 3)), ('multiclass', (7, 2, 3)), ('multiclass', (7, 3, 3)))
  def test_complements_are_one_minus_each_roles_probability(self, kind, shape):
    h = 3 * jax.random.normal(jax.random.key(4), shape)
    y = jax.nn.softmax(jax.random.normal(jax.random.key(5), (7, 3)))
    d = np.exp(np.asarray(values.role_log_probs(kind, h, y), np.float64))
    np.testing.assert_allclose(np.exp(values.role_log_complements(kind, h, y)), 1 - d, rtol=1e-5, atol=1e-7)

  def test_complements_where_the_discriminator_is_sure(self):
    y = jnp.array([[1.0, 0.0]])
    for a in (30.0, -30.0):  # D (real) = σ(a): 1 − D is σ(−a), never 1 − a rounded 1
      binary = values.role_log_complements('binary', jnp.array([[a, 0.0]]), y)[0]
      np.testing.assert_allclose(binary, [-np.logaddexp(0, a), -np.logaddexp(0, -a), -np.logaddexp(0, -a)], rtol=1e-6)
      heads = values.role_log_complements('multiclass', jnp.array([[[a, 0.0], [2.0, 0.0]]]), y)[0]
      log_d = np.array(
        [-np.logaddexp(0, -a), -np.logaddexp(0, a) - np.logaddexp(0, -2), -np.logaddexp(0, a) - np.logaddexp(0, 2)]
      )
      expected = [np.logaddexp(log_d[1], log_d[2]), np.logaddexp(log_d[0], log_d[2]), np.logaddexp(log_d[0], log_d[1])]
      np.testing.assert_allclose(heads, expected, rtol=1e-5, atol=1e-13)  # a log of 1 − 1e-13: float32's rounding

  def test_ngan_generator_descends_minus_log_d(self):
    h = jax.random.normal(jax.random.key(6), (4, 3))
    y = jax.nn.one_hot(jnp.array([2, 0, 1, 1]), 3)
    s = np.sum(np.asarray(h) * np.asarray(y), -1)
    rewards = values.GENERATOR_REWARDS['non_saturating']('binary', h, y)
    np.testing.assert_allclose(rewards[:, methods.STUDENT], np.log1p(np.exp(-s)), rtol=1e-5)  # −log σ(s)
    np.testing.assert_allclose(values.GENERATOR_REWARDS['minimax']('binary', h, y)[:, 1], -np.log1p(np.exp(s)), 1e-5)

  def test_finite_and_not_saturated_where_the_discriminator_rejects(self):
    y = jnp.array([[1.0, 0.0]])

    def reward(h, name, kind='binary'):
      return values.GENERATOR_REWARDS[name](kind, h, y)[0, methods.STUDENT]

    h = jnp.array([[-1e4, 0.0]])  # D = σ(−1e4): the sample is rejected
    self.assertAlmostEqual(float(jax.grad(reward)(h, 'minimax')[0, 0]), 0.0)  # log(1 − D) saturates
    self.assertAlmostEqual(float(jax.grad(reward)(h, 'non_saturating')[0, 0]), -1.0)  # −log D does not
    for h in (jnp.array([[1e4, 0.0]]), jnp.array([[-1e4, 0.0]])):
      self.assertTrue(np.isfinite(reward(h, 'non_saturating')))
      self.assertTrue(np.all(np.isfinite(jax.grad(reward)(h, 'non_saturating'))))
    h3 = jnp.array([[[1e4, 0.0], [-1e4, 0.0]]])
    self.assertTrue(np.all(np.isfinite(jax.grad(reward)(h3, 'non_saturating', 'multiclass'))))


class DistillationTermsTest(absltest.TestCase):
  def setUp(self):
    super().setUp()
    k1, k2 = jax.random.split(jax.random.key(7))
    self.z_t = 3 * jax.random.normal(k1, (5, 10))
    self.z_s = 3 * jax.random.normal(k2, (5, 10))
    self.y = jnp.array([0, 3, 9, 2, 2])

  def test_distn_mse(self):
    game, c = _game('distn', distill_terms={**tiny_config().game.distill_terms, 'hinton': 'hinton_mse'})
    self.assertEqual(game.method.distill, 'hinton_mse')
    t, a = c.game.kd_temperature, c.game.distn_alpha
    zt, zs = np.asarray(self.z_t, np.float64), np.asarray(self.z_s, np.float64)
    log_p = zs - np.log(np.exp(zs).sum(-1, keepdims=True))
    expected = a * t * t * np.mean((zt / t - zs / t) ** 2, -1) - (1 - a) * log_p[np.arange(5), self.y]
    got = objectives.distillation_term(game, self.z_t, self.z_s, self.y, jax.random.key(0), {})
    np.testing.assert_allclose(got, expected, rtol=1e-5)

  def test_noisy_multiplicative(self):
    terms = {**tiny_config().game.distill_terms, 'noisy': 'noisy_multiplicative'}
    game, c = _game('noisy', noisy_keep=0.8, distill_terms=terms)
    key = jax.random.key(11)
    k_mask, k_noise = jax.random.split(key)
    mask = np.asarray(jax.random.bernoulli(k_mask, 0.8, (5, 10))) / 0.8
    noise = c.game.noisy_sigma * np.asarray(jax.random.normal(k_noise, (5, 10)))
    target = np.asarray(self.z_t) * (mask + noise)
    expected = 0.5 * np.sum((target - np.asarray(self.z_s)) ** 2, -1)
    got = objectives.distillation_term(game, self.z_t, self.z_s, self.y, key, {})
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # Unbiased: the mean perturbed target is the teacher's logits (8,000 draws: 4 std errors ≈ 0.05 |z|).
    term = methods.DISTILLATION['noisy_multiplicative'].bind(c.game)
    # At z_s = 0 the gradient of ½‖target − z_s‖² is −target.
    target_draw = lambda k: -jax.grad(lambda s: term(self.z_t, s, self.y, k, {}).sum())(0 * self.z_s)
    draws = jax.vmap(target_draw)(jax.random.split(key, 8000))
    np.testing.assert_allclose(draws.mean(0), self.z_t, atol=0.06 * float(jnp.abs(self.z_t).max()))

  def test_replacement_must_be_a_term_reading_the_same_weights(self):
    c = tiny_config('distn')
    c.game.distill_terms.hinton = 'hintn_mse'
    with self.assertRaisesRegex(config_lib.ConfigError, "distill_terms.hinton='hintn_mse' is not valid.*hinton_mse"):
      config_lib.validate(c)
    c.game.distill_terms.hinton = 'kd'
    with self.assertRaisesRegex(
      config_lib.ConfigError,
      'distill_terms.hinton=.kd. reads other weight fields than .hinton.; valid replacements: hinton, mimic',
    ):
      config_lib.validate(c)

  def test_a_term_that_is_not_registered_is_refused(self):
    c = tiny_config('distn')
    c.game.distill_terms = {**c.game.distill_terms, 'hintn': 'hinton_mse'}
    with self.assertRaisesRegex(config_lib.ConfigError, "the term 'hintn'=.hintn. is not valid; choose one of: kd"):
      config_lib.validate(c)

  def test_other_options_refused_with_their_valid_values(self):
    for field, value, message in (
      ('generator_reward', 'nonsaturating', 'game.generator_reward=.nonsaturating. is not valid.*non_saturating'),
      ('noisy_keep', 0.0, r'game.noisy_keep=0.0 must be in \(0, 1\]'),
    ):
      c = tiny_config('ngan')
      c.game[field] = value
      with self.assertRaisesRegex(config_lib.ConfigError, message):
        config_lib.validate(c)
    c = tiny_config('ngan')
    c.game.estimator, c.game.generator_reward = 'authors', 'non_saturating'
    with self.assertRaisesRegex(config_lib.ConfigError, 'does not go with game.estimator=authors'):
      config_lib.validate(c)
    for method in ('adim_ngs', 'student'):  # forces REINFORCE; reads neither: nothing to refuse
      c.method = method
      self.assertIn("game.estimator='authors'", config_lib.unused_options(config_lib.validate(c)))


class DivideByBatchTest(parameterized.TestCase):
  @parameterized.parameters(('distn', 'student', True), ('adim', 'student', False), ('codis', 'teacher', False))
  def test_weights(self, method, role, distillation_divided):
    game, c = _game(method, divide_by_batch=True)
    plain, _ = _game(method)
    hp = game_lib.hyperparameters(game.method, c)
    divided, undivided = objectives.term_weights(game, role, hp), objectives.term_weights(plain, role, hp)
    b = c.batch_size
    self.assertAlmostEqual(float(divided['supervised']), 1 / b)
    self.assertAlmostEqual(float(undivided['supervised']), 1.0)
    self.assertAlmostEqual(float(divided['adversarial']), float(undivided['adversarial']))
    scale = 1 / b if distillation_divided else 1.0
    self.assertAlmostEqual(float(divided['distillation']), float(undivided['distillation']) * scale, places=6)

  def test_a_students_cross_entropy_loss_is_divided(self):
    x = jax.random.normal(jax.random.key(8), (10, 28, 28, 1))
    y = jnp.arange(10)
    losses = []
    for divide in (False, True):
      game, c = _game('student', divide_by_batch=divide)
      state = game_lib.init_state(game, jax.random.key(0), {'x': x, 'y': y})
      ctx = objectives.Context(game, 'student', jax.random.key(1), 1.0, 0.0, game_lib.hyperparameters(game.method, c))
      batch = objectives.Batch(x, y, {})
      losses.append(float(objectives.generator_loss(state['student']['params'], batch, ctx)[0]))
    self.assertAlmostEqual(losses[1], losses[0] / 10, places=6)

  def test_frozen_teacher_cache_key(self):
    c = config_lib.validate(tiny_config('distn', teacher_cache='/cache'))
    identity = {'data': {'fingerprint': 'f'}, 'nets': {}, 'optimizers': {}}
    path = lambda c: teacher_lib.cache_path(c, 0, identity)
    other_term = c.copy_and_resolve_references()
    other_term.game.distill_terms.hinton = 'hinton_mse'
    divided = c.copy_and_resolve_references()
    divided.game.divide_by_batch = True
    self.assertEqual(path(other_term), path(c))  # the same teacher serves another distillation term
    self.assertNotEqual(path(divided), path(c))  # a teacher trained on divided cross-entropy is another teacher
    self.assertEqual(os.path.basename(path(c)), 'teacher_506208a2d713fd3a')  # pinned: a change of key is deliberate
    older = ml_collections.ConfigDict(c.to_dict())  # a config from before the text group and divide_by_batch
    del older['text'], older.game['divide_by_batch']
    self.assertEqual(path(older), path(c))  # the teachers it cached stay valid
    other_k = c.copy_and_resolve_references()
    other_k.rank_k = 5
    self.assertNotEqual(path(other_k), path(c))  # an added field set away from its default is another teacher


# Another value of every field of the game group that is not a swept weight (those are arrays in the state).
OTHER_VALUES = {
  'distillation': 'l2', 'kd_temperature': 2.0, 'distn_alpha': 0.3, 'noisy_sigma': 2.0, 'estimator': 'reinforce',
  'generator_reward': 'non_saturating', 'divide_by_batch': True, 'noisy_keep': 0.5, 'baseline': 'none',
  'baseline_decay': 0.5, 'heads': 3, 'distill_terms': {'hinton': 'hinton_mse'},
}  # fmt: skip


class UnusedOptionsTest(absltest.TestCase):
  def _unused(self, method, **game_fields):
    c = tiny_config(method)
    for field, value in game_fields.items():
      c.game[field] = value
    return [u for u in config_lib.unused_options(c) if u.startswith('game.')]

  def test_each_option_is_named_exactly_for_the_methods_that_never_read_it(self):
    self.assertEqual(self._unused('adim'), [])  # the defaults
    self.assertEqual(self._unused('student', estimator='authors'), ["game.estimator='authors'"])
    self.assertEqual(self._unused('adim_ngs', estimator='authors'), ["game.estimator='authors'"])  # forces its own
    self.assertEqual(self._unused('adib', estimator='authors'), [])
    self.assertEqual(
      self._unused('distn', generator_reward='non_saturating'), ["game.generator_reward='non_saturating'"]
    )
    self.assertEqual(self._unused('ngan', generator_reward='non_saturating'), [])
    replaced = {**tiny_config().game.distill_terms, 'hinton': 'hinton_mse'}
    self.assertEqual(self._unused('adim', distill_terms=replaced), ["game.distill_terms.hinton='hinton_mse'"])
    self.assertEqual(self._unused('distn', distill_terms=replaced), [])
    self.assertEqual(self._unused('noisy', noisy_keep=0.5), ['game.noisy_keep=0.5'])
    multiplicative = {**tiny_config().game.distill_terms, 'noisy': 'noisy_multiplicative'}
    self.assertEqual(self._unused('noisy', noisy_keep=0.5, distill_terms=multiplicative), [])

  def test_a_run_warns_of_them(self):
    c = tiny_config('student', rounds=0)
    c.game.estimator = 'authors'
    with self.assertLogs(level='WARNING') as logs:
      train.train_and_evaluate(c, self.create_tempdir().full_path)
    self.assertRegex('\n'.join(logs.output), r"not read by a run of method=student .*: .*game.estimator='authors'")

  def test_every_declared_field_is_named_where_the_run_does_not_read_it(self):
    c = fields.get_config()
    c.method, c.data_file, c.tfds.name, c.text.width = 'student', 'mine.npz', 'cifar10', 32
    c.teacher.learning_rate, c.game.nu, c.k_d, c.pretrain.frozen_teacher = 0.1, 0.3, 5, 7
    self.assertCountEqual(
      config_lib.unused_options(config_lib.validate(c)),
      ["data_file='mine.npz'", "tfds.name='cifar10'", 'k_d=5', 'pretrain.frozen_teacher=7',
       'teacher.learning_rate=0.1', 'game.nu=0.3', 'text.width=32'],
    )  # fmt: skip
    c.method, c.dataset = 'distn', 'npz'  # now data_file, the teacher and pretrain.frozen_teacher are read
    self.assertCountEqual(
      config_lib.unused_options(config_lib.validate(c)),
      ["tfds.name='cifar10'", 'k_d=5', 'game.nu=0.3', 'text.width=32'],
    )


class TeacherFieldsTest(absltest.TestCase):
  def test_the_game_fields_that_train_the_frozen_teacher_are_those_declared(self):
    c = tiny_config('distn')
    self.assertEqual(set(c.game) - set(methods.WEIGHTS), set(OTHER_VALUES))  # a new field must be classified here
    split = {'x': jnp.zeros((10, 28, 28, 1)), 'y': jnp.arange(10)}

    def frozen_program(config):
      game = game_lib.build(config_lib.validate(config), 10)
      state = game_lib.init_state(game, jax.random.key(0), split)
      closed = jax.make_jaxpr(functools.partial(rounds.pretrain, game, frozen=True))(state, game_lib.as_data(split))
      return str(closed), [
        np.asarray(a).tolist() for a in closed.consts if not jnp.issubdtype(a.dtype, jax.dtypes.prng_key)
      ]

    default = frozen_program(c)
    changed = set()
    for name, value in OTHER_VALUES.items():
      other = tiny_config('distn')
      other.game[name] = {**other.game.distill_terms, **value} if name == 'distill_terms' else value
      if frozen_program(other) != default:
        changed.add(name)
    # baseline_decay enters only the moving average of a reward the frozen phase does not have (the cache keeps params).
    self.assertEqual(
      changed, {*(n.partition('.')[2] for n in fields.names(teacher=True) if n.startswith('game.')), 'baseline_decay'}
    )


class OlderWorkdirTest(absltest.TestCase):
  def test_a_config_written_before_these_fields_is_the_same_run(self):
    c = config_lib.validate(tiny_config('ngan', rounds=1))
    workdir = self.create_tempdir().full_path
    train.train_and_evaluate(c, workdir)
    path = os.path.join(workdir, 'config.json')
    with open(path) as f:
      saved = json.load(f)
    for name in ('generator_reward', 'divide_by_batch', 'noisy_keep', 'distill_terms'):
      del saved['game'][name]
    with open(path, 'w') as f:
      json.dump(saved, f)
    self.assertIsNotNone(train.finished(workdir, c))
    saved['game']['distill_terms'] = {'kd': 'kd', 'hinton': 'hinton'}  # a run from before the other terms existed
    with open(path, 'w') as f:
      json.dump(saved, f)
    self.assertIsNotNone(train.finished(workdir, c))  # only replacements count
    c.game.generator_reward = 'non_saturating'
    self.assertIsNone(train.finished(workdir, c))


if __name__ == '__main__':
  absltest.main()
