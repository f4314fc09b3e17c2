"""Splits: class-balanced, disjoint, seeded; the tfds path under mock_data; an unprepared tfds dataset fails fast."""

import os
import subprocess
import sys

from absl.testing import absltest
from absl.testing import parameterized
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


def _digits(n=1200):
  """Real digits as an .npz's arrays: 1,000 to draw from, the rest as test."""
  x, y = data.load_mnist5k()
  order = np.random.default_rng(0).permutation(y.size)[:n]  # the file is sorted by class
  x, y = x[order].copy(), y[order].copy()
  return {'x_train': x[:1000], 'y_train': y[:1000], 'x_test': x[1000:], 'y_test': y[1000:]}


class BadDataTest(parameterized.TestCase):
  """Bad data is refused at load with one line naming the file and what is wrong; nothing is written."""

  def _refused(self, arrays_or_bytes, message):
    path = os.path.join(self.create_tempdir().full_path, 'd.npz')
    if isinstance(arrays_or_bytes, bytes):
      with open(path, 'wb') as f:
        f.write(arrays_or_bytes)
    else:
      np.savez(path, **arrays_or_bytes)
    c = mnist.get_config()
    c.dataset, c.data_file, c.n_train, c.n_val = 'npz', path, 50, 100
    workdir = os.path.join(self.create_tempdir().full_path, 'run')
    with self.assertRaisesRegex(config_lib.ConfigError, message) as raised:
      train.train_and_evaluate(c, workdir)
    self.assertNotIn('\n', str(raised.exception))
    self.assertFalse(os.path.exists(workdir))
    return path

  @parameterized.named_parameters(
    ('test_inputs', 'x_test', r"data_file='.*d.npz': x_test holds non-finite values \(NaN or inf\) in 50 of 200"),
    ('train_inputs', 'x_train', r'x_train holds non-finite values \(NaN or inf\) in 50 of 1000'),
  )
  def test_non_finite_inputs(self, key, message):
    arrays = _digits()
    arrays[key][:50, 3, 3, 0] = np.nan
    arrays[key][7, 0, 0, 0] = np.inf
    self._refused(arrays, message)

  def test_one_class_out_of_range_label_and_class_missing_from_training(self):
    arrays = _digits()
    self._refused({**arrays, 'y_train': np.zeros(1000, np.int64), 'y_test': np.zeros(200, np.int64)},
                  'every label is 0; classification needs at least 2 classes')  # fmt: skip
    y = arrays['y_train'].copy()
    y[5] = 10
    self._refused({**arrays, 'y_train': y}, r'label 10 has 1 training examples .* a label out of range')
    y = arrays['y_train'].copy()
    y[y == 3] = 4
    self._refused({**arrays, 'y_train': y}, r'classes \[3\] of labels 0..9 appear in y_test but not in the training')

  def test_damaged_files(self):
    good = self._refused({**_digits(), 'y_test': np.full(200, 'a')}, r'y_test must hold integer class labels')
    with open(good, 'rb') as f:
      content = f.read()
    self._refused(b'', r"data_file='.*d.npz' is empty")
    self._refused(b'x,y\n1,2\n', r"data_file='.*d.npz' is not an .npz \(not a zip archive\)")
    self._refused(content[: len(content) // 2], r"data_file='.*d.npz' is damaged \(BadZipFile")
    crc = bytearray(content)
    crc[len(crc) // 3] ^= 0xFF  # inside x_train's stored bytes: the zip's CRC no longer matches
    self._refused(bytes(crc), r"data_file='.*d.npz' is damaged \(BadZipFile: Bad CRC-32")
    objects = {**_digits(), 'x_test': np.array([np.zeros(3), 'a'], dtype=object)}
    self._refused(objects, r"data_file='.*d.npz' holds object arrays")
    self._refused({**_digits(), 'x_test': np.zeros((0, 28, 28, 1)), 'y_test': np.zeros(0, int)},
                  r'x_test holds no examples')  # fmt: skip

  def test_uint8_images_are_scaled_to_unit_range(self):
    arrays = _digits()
    as_bytes = {**arrays, 'x_train': np.round(arrays['x_train'] * 255).astype(np.uint8),
                'x_test': np.round(arrays['x_test'] * 255).astype(np.uint8)}  # fmt: skip
    path = os.path.join(self.create_tempdir().full_path, 'd.npz')
    np.savez(path, **as_bytes)
    c = mnist.get_config()
    c.dataset, c.data_file, c.n_train, c.n_val = 'npz', path, 50, 100
    c.student.model = c.teacher.model = c.discriminator.model = 'mlp'
    splits = data.load(config_lib.validate(c))
    self.assertEqual(splits.x_train.dtype, np.float32)
    self.assertBetween(float(splits.x_test.max()), 0.99, 1.0)
    np.testing.assert_allclose(splits.x_test, arrays['x_test'], atol=0.5 / 255)


if __name__ == '__main__':
  absltest.main()
