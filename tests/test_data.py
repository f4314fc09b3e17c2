"""Splits: class-balanced, disjoint, seeded; the tfds path under mock_data; an unprepared tfds dataset fails fast."""

import os
import subprocess
import sys

from absl.testing import absltest
import numpy as np
import tensorflow_datasets as tfds

from adjax import config as config_lib
from adjax import data
from adjax import train
from experiments.configs import cifar10
from experiments.configs import mnist

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _rows(x):
  return {row.tobytes() for row in x.reshape(x.shape[0], -1)}


class Mnist5kTest(absltest.TestCase):
  def test_balanced_disjoint_seeded_splits(self):
    c = config_lib.validate(mnist.get_config())
    c.n_train, c.n_val = 100, 1000
    s = data.load(c)
    self.assertEqual(
      (s.x_train.shape, s.x_val.shape, s.x_test.shape), ((100, 28, 28, 1), (1000, 28, 28, 1), (3900, 28, 28, 1))
    )
    np.testing.assert_array_equal(np.bincount(s.y_train, minlength=10), 10)
    np.testing.assert_array_equal(np.bincount(s.y_val, minlength=10), 100)
    train_rows, val_rows, test_rows = _rows(s.x_train), _rows(s.x_val), _rows(s.x_test)
    self.assertEqual(len(train_rows & val_rows) + len(train_rows & test_rows) + len(val_rows & test_rows), 0)
    self.assertEqual(len(train_rows) + len(val_rows) + len(test_rows), 5000)
    self.assertTrue(0.0 <= s.x_train.min() and s.x_train.max() <= 1.0 and s.x_train.max() > 0.9)
    again = data.load(c)
    np.testing.assert_array_equal(again.x_train, s.x_train)
    c.seed = 1
    self.assertNotEqual(_rows(data.load(c).x_train), train_rows)


class TfdsTest(absltest.TestCase):
  def test_mock_mnist_trains_end_to_end(self):
    c = mnist.get_config()
    c.dataset, c.method, c.n_train, c.n_val, c.rounds = 'tfds', 'student', 40, 40, 1
    c.pretrain.student = 5
    with tfds.testing.mock_data(num_examples=300):
      splits = data.load(config_lib.validate(c))
      self.assertEqual((splits.x_train.shape, splits.x_test.shape), ((40, 28, 28, 1), (300, 28, 28, 1)))
      self.assertEqual(splits.num_classes, 10)
      np.testing.assert_array_equal(np.bincount(splits.y_train, minlength=10), 4)
      results = train.train_and_evaluate(c, self.create_tempdir().full_path)
    self.assertEqual(results['n_test'], 300)
    self.assertBetween(results['final']['student']['test_accuracy'], 0.0, 1.0)

  def test_mock_cifar10_config_mean_subtracted_and_flipped(self):
    c = cifar10.get_config()
    c.method, c.n_train, c.n_val, c.rounds, c.batch_size, c.pretrain.student = 'student', 40, 40, 1, 10, 5
    with tfds.testing.mock_data(num_examples=200):
      splits = data.load(config_lib.validate(c))
      c.subtract_pixel_mean = False
      raw = data.load(config_lib.validate(c))
      c.subtract_pixel_mean = True
      results = train.train_and_evaluate(c, self.create_tempdir().full_path)
    self.assertEqual(splits.x_train.shape[1:], (32, 32, 3))
    np.testing.assert_allclose(splits.x_train.mean(axis=0), 0.0, atol=1e-5)  # per pixel and channel
    mean = raw.x_train.mean(axis=0)
    for split in ('val', 'test'):
      np.testing.assert_allclose(getattr(splits, f'x_{split}'), getattr(raw, f'x_{split}') - mean, atol=1e-6)
    self.assertEqual(results['n_test'], 200)
    self.assertBetween(results['final']['student']['test_accuracy'], 0.0, 1.0)

  def test_unprepared_dataset_fails_fast_with_advice(self):
    root = self.create_tempdir().full_path
    workdir = os.path.join(root, 'run')
    proc = subprocess.run(
      [sys.executable, '-m', 'experiments.main', '--config=experiments/configs/mnist.py', f'--workdir={workdir}',
       '--config.dataset=tfds', '--config.tfds.name=mnist', f'--config.tfds.data_dir={root}/empty'],
      cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    self.assertNotEqual(proc.returncode, 0)
    self.assertIn("tfds.name='mnist' could not be opened", proc.stderr)
    self.assertIn('tfds build mnist --file_format=array_record', proc.stderr)
    self.assertIn('dataset=mnist5k', proc.stderr)
    self.assertFalse(os.path.exists(workdir))


if __name__ == '__main__':
  absltest.main()
