"""What a researcher's own data, files and typos meet: a clear refusal before anything is written, or the run they
asked for, never a silent other one (issue 21's classes, each with a variant of its own)."""

import os
from unittest import mock

from absl.testing import absltest
import flax.linen as nn
import ml_collections
import numpy as np

import adjax
from adjax import augment
from adjax import config as config_lib
from adjax import data as data_lib
from adjax import fields
from adjax import models
from adjax import train
from adjax.errors import ConfigError
from experiments import cli
from experiments import sweep as sweep_lib
from tests.test_train import tiny_config


def _digits(n=120, k=3, seed=0):
  rng = np.random.default_rng(seed)
  return rng.normal(size=(n, 8, 8, 1)).astype(np.float32), np.arange(n) % k


class TypoTest(absltest.TestCase):
  def test_a_misspelt_field_from_python_is_refused_naming_the_closest(self):
    for where, field, closest in (('', 'n_trian', 'n_train'), ('student', 'learning_rat', 'student.learning_rate'),
                                  ('game', 'omega_ss', 'game.omega_s')):  # fmt: skip
      c = tiny_config('adim')
      (c[where] if where else c)[field] = 40
      name = f'{where}.{field}' if where else field
      with self.assertRaisesRegex(ConfigError, rf'^{name} is not a config field; did you mean {closest}\?'):
        config_lib.validate(c)
    c = tiny_config('adim')
    c.zzz = 1  # nothing close: still refused
    with self.assertRaisesRegex(ConfigError, r'^zzz is not a config field; declare a field of your own'):
      config_lib.validate(c)
    with self.assertRaisesRegex(ConfigError, 'config must be an ml_collections.ConfigDict .* got dict'):
      config_lib.validate(tiny_config('adim').to_dict())

  def test_a_registered_field_of_ones_own_is_accepted_and_trains_the_teacher_by_default(self):
    field = fields.Field('mine.scale', 0.5, 'a test field')
    fields.register_field(field)
    self.addCleanup(fields.REGISTERED.pop, 'mine.scale')
    self.assertEqual(fields.get_config().mine.scale, 0.5)
    c = tiny_config('adim')
    c.mine = ml_collections.ConfigDict({'scale': 2.0})
    config_lib.validate(c)  # accepted
    fields.register_field(field)  # again (a module imported twice): nothing to do
    with self.assertRaisesRegex(ValueError, "config field 'n_train' is adjax's own"):
      fields.register_field(fields.Field('n_train', 1, 'mine'))


class IntegerRangeTest(absltest.TestCase):
  def test_labels_and_token_ids_beyond_int32_are_refused_not_wrapped(self):
    x, y = _digits()
    big = y.astype(np.int64)
    big[5] = 2**32 + 2  # would wrap to 2, a real class
    with self.assertRaisesRegex(ConfigError, r'y_train must hold integer class labels 0..K-1, got label 4294967298'):
      data_lib.from_arrays(x, big)
    tokens = np.ones((120, 4), np.int64)
    for bad in (2**31, 2**32 + 3, data_lib.MAX_TOKEN_ID + 1):
      tokens[7, 1] = bad
      with self.assertRaisesRegex(ConfigError, rf'xp_train holds token id {bad}; ids are 0 \(padding\) to'):
        data_lib.from_arrays(x.reshape(120, -1), y, xp_train=tokens)

  def test_uint8_privileged_images_are_images_not_token_ids(self):
    x, y = _digits()
    source = data_lib.from_arrays(x.reshape(120, -1), y, xp_train=np.full((120, 8, 8, 1), 255, np.uint8))
    self.assertFalse(data_lib.is_text(source.xp))
    np.testing.assert_array_equal(source.xp, 1.0)  # scaled like x


class LabelsTest(absltest.TestCase):
  def test_one_hot_labels_are_class_labels_and_multi_label_is_asked_for(self):
    x, y = _digits()
    one_hot = np.eye(3, dtype=np.int32)[y]
    as_classes = data_lib.labelled(data_lib.from_arrays(x, one_hot), multi_label=False)
    self.assertEqual(as_classes.fingerprint, data_lib.from_arrays(x, y).fingerprint)  # the same data exactly
    splits = data_lib.load(config_lib.validate(tiny_config('student', n_train=30, n_val=30)), as_classes)
    self.assertEqual((splits.num_classes, splits.pool['y'].ndim), (3, 1))  # accuracy, not P@k
    multi_hot = one_hot.copy()
    multi_hot[[4, 5], 0] = 1
    with self.assertRaisesRegex(ConfigError, r'y is \[N, K\] multi-hot tags \(2 examples have several\); set multi_'):
      data_lib.labelled(data_lib.from_arrays(x, multi_hot), multi_label=False)
    self.assertIs(data_lib.labelled(source := data_lib.from_arrays(x, multi_hot), multi_label=True), source)
    with self.assertRaisesRegex(ConfigError, r'multi_label=True needs \[N, K\] multi-hot tags, got labels of shape'):
      data_lib.labelled(data_lib.from_arrays(x, y), multi_label=True)

  def test_train_and_test_must_be_alike(self):
    x, y = _digits()
    flat = x.reshape(120, -1)
    tokens = np.ones((120, 5), np.int32)
    tags = np.eye(4, dtype=np.int32)[np.arange(120) % 4]
    cases = (
      (dict(xp_train=flat[:90, :7], xp_test=flat[90:, :8]), r'xp_train examples \(7,\) .* xp_test examples \(8,\)'),
      (dict(xp_train=tokens[:90], xp_test=flat[90:, :5]), r'xp_train examples \(5,\) \(int32\) .* \(float32\) differ'),
      (
        dict(y_train=tags[:90], y_test=np.eye(3, dtype=np.int32)[np.arange(30) % 3]),
        r'y_train examples \(4,\) \(int32\) and y_test examples \(3,\) \(int32\) differ',
      ),
    )
    for arrays, message in cases:
      given = {'x_train': flat[:90], 'y_train': y[:90], 'x_test': flat[90:], 'y_test': y[90:], **arrays}
      with self.assertRaisesRegex(ConfigError, message):
        data_lib.from_arrays(**given)


class AugmentationTest(absltest.TestCase):
  def test_a_users_images_are_not_augmented_unless_asked(self):
    x, y = _digits(300, 3)
    c = tiny_config('student', n_train=30, n_val=30)
    c.augment.rotation, c.augment.shift, c.augment.zoom = 10.0, 2.0, 0.1  # mnist's, as adjax.get_config() has
    with self.assertLogs(level='INFO') as logs:
      own = adjax.setup(c, data=data_lib.from_arrays(x, y))
    self.assertTrue(augment.is_identity(own.config.augment))
    self.assertTrue(all(augment.is_identity(m.augment) for m in own.configs))
    self.assertTrue(any('arrays is not augmented' in line for line in logs.output), logs.output)
    c.augment.user_data = True
    self.assertFalse(augment.is_identity(adjax.setup(c, data=data_lib.from_arrays(x, y)).config.augment))
    c.augment.user_data = False
    self.assertFalse(augment.is_identity(adjax.setup(c).config.augment))  # mnist5k, built in: augmented
    flat = data_lib.from_arrays(x.reshape(300, -1), y)  # flat features with the default augmentation: no refusal
    self.assertTrue(augment.is_identity(adjax.setup(c, data=flat).config.augment))


class RefusedBeforeWritingTest(absltest.TestCase):
  """Each bad input is one ConfigError, and the workdir is not created."""

  def _refused(self, config, message, workdir=None, **kwargs):
    workdir = os.path.join(self.create_tempdir().full_path, 'run') if workdir is None else workdir
    existed = set(os.listdir(workdir)) if os.path.isdir(workdir) else None
    with self.assertRaisesRegex(ConfigError, message):
      train.train_and_evaluate(config, workdir, **kwargs)
    self.assertEqual(set(os.listdir(workdir)) if os.path.isdir(workdir) else None, existed)

  def test_config_values(self):
    self._refused(tiny_config('student', eval_chunk=0), r'eval_chunk=0 must be a positive integer')
    self._refused(tiny_config('student', seed=-1), r'seed=-1 must be an integer >= 0')
    self._refused(tiny_config('student'), r'^sweep must be a list of \{field: value\} points', sweep=[0.1])

  def test_data_and_players_of_the_wrong_kind(self):
    x, y = _digits()
    self._refused(tiny_config('student'), r'data must be an adjax.data.Source .* got dict', data={'x': x, 'y': y})
    self._refused(tiny_config('student'), r'data must be an adjax.data.Source .* got tuple', data=(x, y))
    self._refused(tiny_config('student'), r'nets must be a dict \{player: ...\} .* got Dense', nets=nn.Dense(3))

  def test_workdirs_that_cannot_be_written(self):
    self._refused(tiny_config('student'), r'^workdir is empty', workdir='')
    for part in ('checkpoints', 'tensorboard'):
      workdir = self.create_tempdir()
      workdir.create_file(part, content='mine')
      self._refused(tiny_config('student'), rf"holds a file '{part}' where adjax writes a directory", workdir.full_path)
    parent = self.create_tempdir().full_path
    real = os.access
    with mock.patch.object(os, 'access', lambda p, mode: False if p == parent else real(p, mode)):
      self._refused(tiny_config('student'), rf"'{parent}', where it would be made, is not writable",
                    os.path.join(parent, 'a', 'run'))  # fmt: skip
    cache = self.create_tempdir().create_file('cache', content='a file').full_path
    self._refused(tiny_config('distn', teacher_cache=cache), r'teacher_cache=.* is a file, not a directory')

  def test_text_embeddings_that_cannot_be_used(self):
    x, y = _digits()
    source = data_lib.from_arrays(x.reshape(120, -1), y, xp_train=np.arange(120 * 4).reshape(120, 4) % 20)
    c = tiny_config('distn', n_train=30, n_val=30)
    c.teacher.model = 'text_mlp'
    root = self.create_tempdir()
    wrong = root.create_file('wrong.npy').full_path
    np.save(wrong, np.zeros((5, 3), np.float32))
    not_npy = root.create_file('vectors.txt', content='1 2 3').full_path
    shape = r'holds \(5, 3\); the text needs \[vocab_size, text.embed_dim\] = \[20, 64\]'
    missing = os.path.join(root.full_path, 'missing.npy')
    for path, message in ((missing, 'cannot be read as a .npy'), (not_npy, 'cannot be read as a .npy'), (wrong, shape)):
      c.text.embeddings = path
      self._refused(c, message, data=source)
    tokens = np.ones((120, 4), np.int32)
    tokens[3, 0] = data_lib.MAX_TOKEN_ID
    c.text.embeddings = ''
    huge = data_lib.from_arrays(x.reshape(120, -1), y, xp_train=tokens)
    self._refused(c, r'token ids up to 16777215 make an embedding table .*; number the vocabulary 1..V', data=huge)

  def test_a_model_made_otherwise_than_documented_is_refused_at_registration(self):
    with self.assertRaisesRegex(ValueError, r"model 'by_n': make must take make\(num_outputs=...\)"):
      models.register_model('by_n', lambda n: nn.Dense(n))  # noqa: PLW0108
    with self.assertRaisesRegex(ValueError, r'make must take make\(num_outputs=..., vocab_size=..., embed_dim=...'):
      models.register_model('no_text', lambda num_outputs: nn.Dense(num_outputs), reads_text=True)  # noqa: PLW0108
    self.assertNotIn('by_n', models.MODELS)


class SecondCampaignTest(absltest.TestCase):
  """What a second new-user trial of these classes found."""

  def test_networks_that_cannot_train_as_adjax_applies_them(self):
    class IntScores(nn.Module):
      @nn.compact
      def __call__(self, x):
        return nn.Dense(3)(x.reshape(x.shape[0], -1)).astype(np.int32)

    class WithBatchNorm(nn.Module):
      @nn.compact
      def __call__(self, x):
        return nn.Dense(3)(nn.BatchNorm(use_running_average=False)(x.reshape(x.shape[0], -1)))

    class WithDropout(nn.Module):
      @nn.compact
      def __call__(self, x):
        return nn.Dense(3)(nn.Dropout(0.5, deterministic=False)(x.reshape(x.shape[0], -1)))

    x, y = _digits()
    data = data_lib.from_arrays(x, y)
    c = tiny_config('student', n_train=30, n_val=30)
    for net, message in ((IntScores(), r"nets\['student'\] gives int32 outputs; scores must be floats"),
                         (WithBatchNorm(), r'cannot be applied as apply\(params, x\) \(ModifyScopeVariableError'),
                         (WithDropout(), r'cannot be applied as apply\(params, x\) \(InvalidRngError')):  # fmt: skip
      with self.assertRaisesRegex(ConfigError, message):
        adjax.setup(c, data=data, nets={'student': net})

  def test_configs_and_data_that_ran_or_traced(self):
    c = tiny_config('student')
    c.student = ml_collections.ConfigDict({'model': 'mlp'})  # a group replaced
    with self.assertRaisesRegex(ConfigError, r'the config lacks student.learning_rate, student.weight_decay: build'):
      config_lib.validate(c)
    with self.assertRaisesRegex(ConfigError, r'rounds=True must be an integer'):
      config_lib.validate(tiny_config('student', rounds=True))
    with self.assertRaisesRegex(ConfigError, r'diagnostics=-1 must be >= 0'):
      config_lib.validate(tiny_config('student', diagnostics=-1))
    with self.assertRaisesRegex(ConfigError, r'workdir=5 must be a path'):
      train.train_and_evaluate(tiny_config('student'), 5)
    x, y = _digits()
    huge = y.copy()
    huge[0] = 2**30  # inside int32, but 2**30 classes
    with self.assertRaisesRegex(ConfigError, r'label 1073741824 implies 1073741825 classes for 120 training examples'):
      data_lib.load(config_lib.validate(tiny_config('student', n_train=30, n_val=30)), data_lib.from_arrays(x, huge))
    with self.assertRaisesRegex(ConfigError, r'x_train examples hold no values \(shape \(120, 0\)\)'):
      data_lib.from_arrays(x.reshape(120, -1)[:, :0], y)
    with self.assertRaisesRegex(ConfigError, r'y_train has shape \(120, 1\): give class labels as a vector'):
      data_lib.from_arrays(x, y[:, None])
    images = data_lib.from_arrays(x.reshape(120, -1), y, xp_train=(abs(x) * 100).astype(np.int16))  # integer: token ids
    c = tiny_config('distn', n_train=30, n_val=30)
    with self.assertRaisesRegex(ConfigError, r'integer privileged inputs .* which teacher.model=mlp cannot read'):
      adjax.setup(c, data=images)

  def test_an_unread_distillation_form_is_named(self):
    c = tiny_config('distn')
    c.game.distillation = 'l2'  # the kd term's option: DISTN's hinton term has its own form
    self.assertIn("game.distillation='l2'", config_lib.unused_options(config_lib.validate(c)))
    c.method = 'codis'
    self.assertNotIn("game.distillation='l2'", config_lib.unused_options(config_lib.validate(c)))


class CommandLineTest(absltest.TestCase):
  def test_failed_writes_and_ctrl_c_are_one_line_with_their_exit_status(self):
    for error, status, message in (
      (OSError(28, 'No space left on device', '/some/checkpoints/3'), 1,
       r"^adjax: could not write '/some/checkpoints/3' \(OSError: No space left on device\); free .* if any"),
      (KeyboardInterrupt(), 130, None),
    ):  # fmt: skip
      with self.assertRaises(SystemExit) as exit_, mock.patch('sys.stderr') as stderr:
        with cli.reported():
          raise error
      code = exit_.exception.code
      if message:
        self.assertRegex(code, message)
      else:
        self.assertEqual(code, status)
        written = ''.join(c.args[0] for c in stderr.write.call_args_list)
        self.assertIn('interrupted (Ctrl-C); run the same command again', written)

  def test_sweep_sizes_and_a_summary_that_is_empty(self):
    with self.assertRaisesRegex(ConfigError, r'--n_train=abc must be positive integers'):
      sweep_lib.parse_sizes(['abc'])
    self.assertEqual(sweep_lib.parse_sizes(['100', '1000']), [100, 1000])
    workdir = self.create_tempdir()
    workdir.create_file('results.json', content='{}')  # a chunk's results emptied by hand
    self.assertIsNone(train.finished(workdir.full_path, tiny_config('student')))


if __name__ == '__main__':
  absltest.main()
