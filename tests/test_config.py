"""Bad configs fail fast, name the field and the valid values, and write nothing."""

import os
import subprocess
import sys

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np

from adjax import config as config_lib
from adjax import train
from experiments.configs import mnist

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _set(c, dotted, value):
  *path, last = dotted.split('.')
  for p in path:
    c = c[p]
  c[last] = value


BAD = [
  ('adib_weights', {'method': 'adib', 'game.omega_s': 0.7, 'game.omega_t': 0.7}, r'omega_s \+ game.omega_t = 1'),
  ('adim_weights', {'method': 'adim', 'game.omega_r': 0.5}, r'omega_r \+ game.omega_s \+ game.omega_t = 1'),
  ('tau0', {'tau.tau0': 0.0}, r'tau.tau0=0.0 must be > 0'),
  ('tau_min', {'tau.tau_min': -1.0}, r'tau.tau_min=-1.0 must be > 0'),
  ('tau_min_above_tau0', {'tau.tau_min': 20.0}, r'tau.tau_min=20.0 must be <= tau.tau0=10.0'),
  ('infinite_learning_rate', {'teacher.learning_rate': float('inf')}, r'teacher.learning_rate=inf must be finite'),
  ('nan_weight', {'game.nu': float('nan')}, r'game.nu=nan must be finite'),
  ('infinite_zoom', {'augment.zoom': float('-inf')}, r'augment.zoom=-inf must be finite'),
  (
    'method',
    {'method': 'adix'},
    r"method='adix' is not valid; choose one of: student, teacher, distn, mimic, noisy, codis, ngan, adib, adim, "
    r'adim_ngs',  # and any method another test registered
  ),
  (
    'dataset',
    {'dataset': 'mnist6k'},
    r"dataset='mnist6k' is not valid; choose one of: mnist5k, mnist5k_lupi, mnist5k_scenes, npz, tfds$",
  ),
  ('estimator', {'game.estimator': 'gumbel'}, r"game.estimator='gumbel' is not valid; choose one of: reinforce"),
  ('n_train', {'n_train': 5010}, r'n_train=5010 needs 501 examples of class \d, but only \d+ are left'),
  (
    'n_val',
    {'n_train': 4000, 'n_val': 1010},
    r'n_val=1010 needs 101 examples of class \d.*largest class-balanced n_val here is 1000',
  ),
  ('negative_weight', {'game.nu': -1.0}, r'game.nu=-1.0 is negative'),
  (
    'negative_omega',
    {'method': 'adim', 'game.omega_r': -0.5, 'game.omega_s': 1.0, 'game.omega_t': 0.5},
    'omega_r=-0.5',
  ),
  (
    'model',
    {'teacher.model': 'resnet'},
    r"teacher.model='resnet' is not valid; choose one of: mlp, lenet, text_mlp, cifar_student, densenet, "
    r'densenet_paper$',
  ),
  ('npz_without_file', {'dataset': 'npz'}, r'dataset=npz needs data_file'),
  ('no_test_left', {'n_train': 4000, 'n_val': 1000}, r'n_train=4000 \+ n_val=1000 leave no examples for test'),
]


class BadConfigTest(parameterized.TestCase):
  @parameterized.named_parameters(*BAD)
  def test_refused_with_message_and_workdir_untouched(self, overrides, message):
    c = mnist.get_config()
    for k, v in overrides.items():
      _set(c, k, v)
    workdir = self.create_tempdir()
    workdir.create_file('notes.txt', content='mine')
    with self.assertRaisesRegex(config_lib.ConfigError, message):
      train.train_and_evaluate(c, workdir.full_path)
    self.assertEqual(os.listdir(workdir.full_path), ['notes.txt'])
    fresh = os.path.join(self.create_tempdir().full_path, 'new')
    with self.assertRaises(config_lib.ConfigError):
      train.train_and_evaluate(c, fresh)
    self.assertFalse(os.path.exists(fresh))

  def test_npz_missing_key_and_bad_shape(self):
    path = os.path.join(self.create_tempdir().full_path, 'd.npz')
    np.savez(path, x_train=np.zeros((40, 10, 10)), y_train=np.arange(40) % 2, x_test=np.zeros((4, 10, 10)))
    c = mnist.get_config()
    c.dataset, c.data_file, c.n_train, c.n_val = 'npz', path, 10, 10
    with self.assertRaisesRegex(config_lib.ConfigError, 'lacks y_test'):
      train.train_and_evaluate(c, self.create_tempdir().full_path)
    np.savez(
      path,
      x_train=np.zeros((40, 10, 10)),
      y_train=np.arange(40) % 2,
      x_test=np.zeros((4, 10, 10)),
      y_test=np.arange(4) % 2,
    )
    with self.assertRaisesRegex(
      config_lib.ConfigError, r'lenet needs images .* H and W divisible by 4, got .*\(10, 10\)'
    ):
      train.train_and_evaluate(c, self.create_tempdir().full_path)

  def test_augmenting_flat_features_is_refused(self):
    path = os.path.join(self.create_tempdir().full_path, 'flat.npz')
    np.savez(
      path, x_train=np.zeros((40, 6)), y_train=np.arange(40) % 2, x_test=np.zeros((4, 6)), y_test=np.arange(4) % 2
    )
    c = mnist.get_config()
    c.dataset, c.data_file, c.n_train, c.n_val, c.augment.shift = 'npz', path, 10, 10, 2.0
    c.augment.user_data = True  # a user's data is augmented only when asked
    c.student.model = c.teacher.model = c.discriminator.model = 'mlp'
    with self.assertRaisesRegex(config_lib.ConfigError, r'augment needs image inputs .* got examples of shape \(6,\)'):
      train.train_and_evaluate(c, self.create_tempdir().full_path)

  def test_command_line_exits_nonzero_with_the_message(self):
    workdir = os.path.join(self.create_tempdir().full_path, 'run')
    proc = subprocess.run(
      [
        sys.executable,
        '-m',
        'experiments.main',
        '--config=experiments/configs/mnist.py',
        f'--workdir={workdir}',
        '--config.method=adib',
        '--config.game.omega_s=0.9',
      ],
      cwd=REPO,
      capture_output=True,
      text=True,
      timeout=120,
      check=False,
    )
    self.assertNotEqual(proc.returncode, 0)
    self.assertIn('omega_s + game.omega_t = 1', proc.stderr)
    self.assertFalse(os.path.exists(workdir))

  def test_entrypoint_flags_leave_config_fields_the_user_set(self):
    for entrypoint in ('experiments.compare', 'experiments.table1'):
      workdir = os.path.join(self.create_tempdir().full_path, 'run')
      proc = subprocess.run(
        [sys.executable, '-m', entrypoint, f'--workdir={workdir}', '--methods=student', '--config.n_train=5000'],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
      )  # fmt: skip
      # n_train=5000 (not the entrypoint's default 100) leaves nothing for validation: refused, nothing written.
      self.assertEqual(proc.returncode, 1, proc.stderr[-2000:])
      self.assertIn('n_val=1000 needs 100 examples of class 0, but only 0 are left', proc.stderr)
      self.assertFalse(os.path.exists(workdir))


if __name__ == '__main__':
  absltest.main()
