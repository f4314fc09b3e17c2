"""Every config field, declared once: its default, its doc and its roles.

A field's roles say what the host side does with it, so no list elsewhere
repeats them:

- ``compiled``: it enters the compiled programs (``Game``'s cache key). The
  seed enters through the state's key, rounds and seeds are host loops, paths
  are read on the host.
- ``sweepable``: an array in the state (weights, τ0, players' learning rate
  and weight decay); configs that differ only in these share one program and
  can be members of one sweep. Declared sweepable, a field is not compiled.
- ``place``: where things are kept or run, not what is computed; a resume
  and ``adjax.finished`` ignore it.
- ``resumable``: a resumed run may change it (more rounds continue the same
  trajectory).
- ``added``: newer than some workdirs; one whose config lacks it ran its
  default.
- ``teacher``: it trains the two-phase baselines' frozen teacher, so it is
  part of that teacher's cache key. A field not declared (a user's or an
  experiment's own) counts as compiled and as training the teacher: a field
  unknown here makes another program or a cache miss, never a stale one.
- ``normalize``: how its value is compared (``game.distill_terms``: only the
  replacements count, so a term registered later is not another run).
- ``read``: when a run reads it, a predicate of the validated config (None:
  always). A field set away from its default that the run does not read is
  named by ``adjax.config.unused_options`` (``data_file`` without
  ``dataset=npz``, a teacher's learning rate for STUDENT, …).

A config holds only declared fields: a misspelt one is refused, naming the
closest. A user's own field is declared with ``register_field``.

Weight fields come from the method registry (``adjax.methods.WEIGHTS``), so
a weight registered before the config is built is declared like the others.
"""

from collections.abc import Callable, Iterator
import dataclasses
from typing import Any

import ml_collections
from ml_collections import config_dict

from adjax import methods
from adjax import models
from adjax import values


@dataclasses.dataclass(frozen=True)
class Field:
  """One config field (``name`` dotted: ``'game.nu'``) and its roles (the module docstring says each)."""

  name: str
  default: Any
  doc: str
  compiled: bool = True
  sweepable: bool = False
  place: bool = False
  resumable: bool = False
  added: bool = False
  teacher: bool = True
  normalize: Callable[[Any], Any] | None = None
  read: Callable[[ml_collections.ConfigDict], bool] | None = None


@dataclasses.dataclass(frozen=True)
class Group:
  """A group of fields (``config.game``) and its doc."""

  name: str
  doc: str


# Users' own fields (``register_field``), declared after the built-in ones.
REGISTERED: dict[str, Field] = {}


def register_field(field: Field) -> None:
  """Declares a field of one's own (``Field('my.option', 0.5, 'what it does', teacher=False)``); its groups are
  made as needed. Declare it before building the config (``adjax.get_config``)."""
  if field.name in {d.name for d in declarations()} - set(REGISTERED):
    raise ValueError(f"config field {field.name!r} is adjax's own; choose another name")
  if not all(part.isidentifier() for part in field.name.split('.')):
    raise ValueError(f'config field {field.name!r}: each dotted part must be an identifier')
  if field.name in REGISTERED and REGISTERED[field.name] != field:
    raise ValueError(f'config field {field.name!r} is already registered as something else')
  REGISTERED[field.name] = field


def _method(c) -> methods.Method:
  return methods.resolved(methods.METHODS[c.method], c.game)


def _trains(player: str):
  return lambda c: player in _method(c).players


def _has(player: str):
  return lambda c: player in _method(c).present


def _discriminated(c) -> bool:
  return _method(c).discriminator is not None


def _term_option(name: str):
  def read(c) -> bool:
    term = _method(c).distill
    return term is not None and name in methods.DISTILLATION[term].options

  return read


def _reads_text(c) -> bool:
  return any(c[p].model in models.MODELS and models.MODELS[c[p].model].reads_text for p in _method(c).present)


def _dataset(name: str):
  return lambda c: c.dataset == name


def _replacements(terms):
  return {k: v for k, v in terms.items() if k != v} if isinstance(terms, dict) else terms


def declarations() -> tuple[Field | Group, ...]:
  """Every group and field of the default config, in its order (ADIM on mnist5k)."""
  out: list[Field | Group] = []

  def setter(prefix: str):
    def field(name: str, default, doc: str, **roles) -> None:
      if roles.get('sweepable'):  # an array in the state, not part of the program
        roles.setdefault('compiled', False)
      out.append(Field(prefix + name, default, doc, **roles))

    return field

  def group(name: str, doc: str):
    """A group and the setter of its fields."""
    out.append(Group(name, doc))
    return setter(f'{name}.')

  field = setter('')

  untaught = dict(teacher=False)  # fields that leave the frozen teacher as it is
  field('method', 'adim', 'a method of adjax.methods.METHODS: ' + ' | '.join(methods.METHODS), **untaught)
  field('dataset', 'mnist5k', 'mnist5k (embedded) | mnist5k_lupi | mnist5k_scenes (tags) | npz (data_file) | tfds '
        '(tfds.name)')  # fmt: skip
  field('data_file', '', '.npz with x_train, y_train, x_test, y_test [, xp_train, xp_test] (dataset=npz)',
        compiled=False, read=_dataset('npz'))  # fmt: skip
  field('multi_label', False, 'the labels are [N, K] multi-hot tags (a tag task: mnist5k_scenes, a YFCC .npz); '
        'otherwise [N, K] labels must be one-hot and are read as class labels', added=True)  # fmt: skip
  tfds = group('tfds', 'a prepared TensorFlow Datasets image dataset (dataset=tfds), read without TensorFlow')
  on_tfds = dict(read=_dataset('tfds'))
  tfds('name', 'mnist', 'tfds dataset name, e.g. mnist or cifar10', **on_tfds)
  tfds('data_dir', '', "tfds data directory ('' = tfds's default)", **on_tfds)
  tfds('download', False, 'let tfds download and prepare it (needs the internet, often TensorFlow)', **on_tfds)
  tfds('train_split', 'train', 'the split train and validation are drawn from', **on_tfds)
  tfds('test_split', 'test', 'the test split', **on_tfds)
  field('n_train', 100, 'class-balanced training subsample, drawn with the seed')
  field('n_val', 1000, 'class-balanced validation split held out of the rest (model selection)')
  field('seed', 0, 'first seed; seeds seed, seed+1, … draw data, initialise and sample', compiled=False, **untaught)
  field('num_seeds', 1, 'seeds trained together as one compiled program (each device runs its seeds as '
        'mesh.members says)', compiled=False, **untaught)  # fmt: skip
  field('rounds', 40, 'rounds of Algorithm 1 after pretraining', compiled=False, resumable=True, **untaught)
  field('batch_size', 10, 'examples per update')
  field('k_d', 20, 'discriminator updates per round (the authors count passes over the data instead)',
        read=_trains('discriminator'), **untaught)  # fmt: skip
  field('k_t', 10, 'teacher updates per round', read=_trains('teacher'), **untaught)
  field('k_s', 10, 'student updates per round', read=_trains('student'), **untaught)
  field('teacher_cache', '', "where two-phase baselines keep trained teachers for reuse ('' = no cache)",
        compiled=False, place=True, **untaught)  # fmt: skip
  pretrain = group('pretrain', 'supervised pretraining steps before round 1')
  pretrain('student', 400, 'student cross-entropy steps', read=_trains('student'), **untaught)
  pretrain('teacher', 400, 'teacher cross-entropy steps', read=_trains('teacher'), **untaught)
  pretrain('discriminator', 100, 'discriminator steps against the pretrained generators',
           read=_trains('discriminator'), **untaught)  # fmt: skip
  pretrain('frozen_teacher', 2000, "the two-phase baselines' teacher: all the training it has",
           read=lambda c: bool(_method(c).frozen))  # fmt: skip
  augment = group('augment', 'on-device augmentation of every training minibatch (images only); all 0 = off')
  augment('rotation', 10.0, 'rotation by U(±rotation) degrees')
  augment('shift', 2.0, 'shift by U(±shift) pixels')
  augment('zoom', 0.1, 'zoom by U(1 ± zoom)')
  augment('flip', False, 'mirror half the images left-right (CIFAR-10, not digits)')
  augment('user_data', False, "augment a user's data too (from_arrays, data_file, a registered dataset); the built-in "
          'datasets (mnist5k, mnist5k_lupi, tfds) always are', added=True)  # fmt: skip
  field('subtract_pixel_mean', False, "subtract the training subsample's per-pixel mean from every split (CIFAR-10)")
  for player, model, lr in (('student', 'mlp', 5e-4), ('teacher', 'lenet', 5e-4), ('discriminator', 'lenet', 1e-3)):
    roles = dict(teacher=player == 'teacher', read=_has(player))
    g = group(player, f'the {player}')
    g('model', model, 'a network of adjax.models.MODELS (or nets= from Python)', **roles)
    g('learning_rate', lr, 'Adam learning rate (an array in the state: sweepable)', sweepable=True, **roles)
    g('weight_decay', 4e-5, 'coupled L2 weight decay (sweepable)', sweepable=True, **roles)
  game = group('game', 'the game: weights, distillation, estimator')
  for name, weight in methods.WEIGHTS.items():
    value = config_dict.placeholder(float) if weight.default is None else weight.default
    defaults = ', '.join(f'{m} {d.defaults[name]:.4g}' for m, d in methods.METHODS.items() if name in d.defaults)
    doc = weight.doc + (f'; unset: the method default ({defaults})' if defaults else '')
    game(name, value, doc, sweepable=True, read=lambda c, name=name: name in _method(c).weight_fields(), **untaught)
  game('distillation', 'kl', 'the form of L_KD: kl | l2 (on logits) | mse (of the tempered logits: T cancels)',
        read=_term_option('distillation'), **untaught)  # fmt: skip
  game('kd_temperature', 4.0, 'Hinton T of the KL term (None: T = 1); 4 picked on validation',
       read=_term_option('kd_temperature'), **untaught)  # fmt: skip
  game('distn_alpha', 0.5, 'DISTN: (1 − α) CE + α T² KL, T = kd_temperature', read=_term_option('distn_alpha'),
       **untaught)  # fmt: skip
  game('noisy_sigma', 1.0, "NOISY: std of the Gaussian noise on the teacher's logits",
       read=_term_option('noisy_sigma'), **untaught)  # fmt: skip
  game(
    'estimator',
    'concrete_reinforce',
    "reinforce | concrete_reinforce | pathwise | straight_through | authors (the authors' code, SPEC §8: a sigmoid "
    "cross-entropy pulling the logit at a sampled label towards D's probability of the generator's wanted outcome)",
    read=lambda c: _discriminated(c) and _method(c).estimator is None,
    **untaught,
  )
  game(
    'generator_reward',
    'minimax',
    "what a generator descends at its samples: minimax (the value's log D_i: log(1 − D) for NGAN / ADIB) | "
    'non_saturating (−log(1 − D_i): NGAN maximises log D; not with estimator=authors)',
    added=True,
    read=_discriminated,
    **untaught,
  )
  game(
    'divide_by_batch',
    False,
    "divide cross-entropy (pretraining, STUDENT, TEACHER, the frozen teacher) and DISTN / MIMIC / NOISY's terms by "
    "batch_size once more, as the authors' code does (SPEC §8); under Adam, whose steps ignore a constant loss scale, "
    'its effect is a batch_size times stronger coupled weight decay against those terms',
    added=True,
  )
  game('noisy_keep', 1.0, 'keep probability of the dropout mask of distill_terms noisy_multiplicative (1 = none)',
        added=True, read=_term_option('noisy_keep'), **untaught)  # fmt: skip
  game(
    'distill_terms',
    {name: name for name in methods.DISTILLATION},
    "the distillation term used where a method names another: e.g. hinton=hinton_mse (DISTN as the authors' MSE), "
    'noisy=noisy_multiplicative (their multiplicative noise); terms of adjax.methods.DISTILLATION',
    added=True,
    normalize=_replacements,
    **untaught,
  )
  game('baseline', 'batch_mean', 'none | batch_mean | moving_average', read=_discriminated, **untaught)
  game('baseline_decay', 0.9, 'decay of the moving-average baseline', read=_discriminated, **untaught)
  game(
    'heads',
    2,
    "ADIM discriminator: 2 = the paper's two binary networks, 3 = a softmax head",
    read=lambda c: _discriminated(c) and values.DISCRIMINATOR_KINDS[_method(c).discriminator].heads,
    **untaught,
  )
  tau = group('tau', 'concrete temperature τ(r) = max(tau_min, tau0 · decay^⌊r / every⌋)')
  tau('tau0', 10.0, 'initial temperature (sweepable)', sweepable=True, **untaught)
  tau('tau_min', 0.1, 'lowest temperature (<= tau0)', **untaught)
  tau('decay', 0.88, 'decay factor in (0, 1]', **untaught)
  tau('every', 1, 'rounds between decays', **untaught)
  field('precision', 'float32', "the players' compute dtype: float32 | bfloat16 (networks compute in it; parameters, "
        'optimizer states, losses, values and estimators stay float32)', added=True)  # fmt: skip
  field('eval_chunk', 500, 'examples per evaluation batch')
  field('select_metric', '', "validation figure that selects each player's parameters ('' = accuracy; p@3 for tags)",
        added=True)  # fmt: skip
  field('rank_k', 3, 'k of the ranking metrics of multi-label data (P@k, R@k, F@k, NDCG@k)', added=True)
  field(
    'diagnostics',
    250,
    'examples of validation, and of the training examples, on which every round measures how near the game is to '
    "the theory's equilibrium (adjax.diagnostics: the discriminator's optimality gap, the generators' divergences, "
    '…), spread evenly over each split (0 = off; more than a split holds = all of it): history, TensorBoard, '
    'results.json, diagnostics.png',
    compiled=False,
    resumable=True,
    added=True,
    **untaught,
  )
  text = group('text', 'the text encoder of the models that read privileged text (text_mlp: the tag task)')
  text('embed_dim', 64, 'word embedding size', added=True, read=_reads_text)
  text('hidden', 64, "the LSTM's hidden size", added=True, read=_reads_text)
  text(
    'width',
    256,
    'the image and text projections and the hidden layer of the MLP on their product',
    added=True,
    read=_reads_text,
  )
  text(
    'embeddings',
    '',
    "a .npy [vocab_size, embed_dim] of pretrained word vectors ('' = learned)",
    added=True,
    read=_reads_text,
  )
  mesh = group('mesh', "devices: members split over them (each device runs its share, mesh.members), JAX's sharding")
  mesh_roles = dict(added=True, **untaught)
  mesh('devices', 0, "devices used of each process's (0 = all); members are padded to a multiple of the total",
        place=True, **mesh_roles)  # fmt: skip
  mesh('batch', 1, 'data-parallel ways inside a member: each minibatch split over this many devices (divides '
        'batch_size)', **mesh_roles)  # fmt: skip
  mesh(
    'members',
    'auto',
    "how a device runs its members: 'vmap' (together: fast on accelerators; a vmapped dense layer is a batched "
    "matmul, so a member differs from its run alone in float rounding), 'loop' (one after another: one member's "
    "temporaries in memory, each member exactly its run alone; as fast on a CPU), 'auto' ('loop' on a CPU, else "
    "'vmap')",
    place=True,
    **mesh_roles,
  )
  return (*out, *REGISTERED.values())


def fields() -> dict[str, Field]:
  """The declared fields by dotted name."""
  return {d.name: d for d in declarations() if isinstance(d, Field)}


def names(**roles) -> tuple[str, ...]:
  """The dotted names of the fields whose roles are as given: ``names(sweepable=True)``, ``names(place=True)``."""
  return tuple(f.name for f in fields().values() if all(getattr(f, r) == v for r, v in roles.items()))


def sweepable() -> tuple[str, ...]:
  """Every field that is an array in the state: ``game.<weight>``, ``tau.tau0``, the players' lr and wd (in
  Algorithm 1's order of players)."""
  order = ['game', 'tau', *methods.PLAYERS]
  return tuple(sorted(names(sweepable=True), key=lambda n: order.index(n.partition('.')[0])))


def player_hyperparameters() -> tuple[str, ...]:
  """A player's fields that are its optimizer's hyperparameters (arrays in its optax state)."""
  return tuple(dict.fromkeys(n.partition('.')[2] for n in sweepable() if n.partition('.')[0] in methods.PLAYERS))


def get_config() -> ml_collections.ConfigDict:
  """The config the declarations make: every group and field at its default."""
  c = ml_collections.ConfigDict()
  for d in declarations():
    *groups, leaf = d.name.split('.')
    node = c
    for g in groups:
      if g not in node:  # a registered field's group
        node[g] = ml_collections.ConfigDict()
      node = node[g]
    default = d.default if isinstance(d, Field) else {}
    node[leaf] = ml_collections.ConfigDict(default) if isinstance(default, dict) else default
  return c


def leaves(config: ml_collections.ConfigDict | dict, prefix: str = '') -> Iterator[tuple[str, Any]]:
  """``(dotted name, value)`` of a config's fields: a declared field is one leaf even when its value is a dict."""
  declared = fields()

  def walk(tree: dict, prefix: str):
    for key, value in tree.items():
      name = f'{prefix}{key}'
      if isinstance(value, dict) and name not in declared:
        yield from walk(value, f'{name}.')
      else:
        yield name, value

  yield from walk(config if isinstance(config, dict) else config.to_dict(), prefix)


def computed(config: ml_collections.ConfigDict | dict, **roles) -> dict[str, Any]:
  """``{dotted name: value}`` of a config's fields that are not of the given roles (``computed(c, place=True)``:
  all but the place fields); a field not declared is kept. Values are compared as their ``normalize`` says."""
  declared, out = fields(), {}
  for name, value in leaves(config):
    f = declared.get(name)
    if f is None or not any(getattr(f, r) == v for r, v in roles.items()):
      out[name] = f.normalize(value) if f is not None and f.normalize else value
  return out
