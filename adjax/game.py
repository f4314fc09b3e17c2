"""The three-player game's static description (``Game``) and its state.

The state is a plain dict keyed by role; each player present holds its own
``params`` and its own optax ``opt_state`` (generators also a reward moving
average for the baseline), plus the run's key and the swept hyperparameters
as arrays. Networks and optimizers are static and live in ``Game``, outside
the pytree. ``adjax.objectives`` has each player's loss, ``adjax.rounds`` the
round (Algorithm 1) and the compiled programs.
"""

import dataclasses
import functools
import json
from typing import Any

from absl import logging
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from adjax import augment
from adjax import data as data_lib
from adjax import estimators
from adjax import fields
from adjax import methods
from adjax import models
from adjax import values
from adjax.errors import ConfigError

State = dict[str, Any]
# A split: {'x': [N, ...], 'y': [N]} and, for privileged provisions, 'xp': [N, ...].
Split = dict[str, jax.Array]
# What the programs read, one member's split of the shared examples: 'pool' (a Split holding every example once,
# shared by all members), 'index' [n] (the member's examples of that split) and 'mean' (per input view, the mean
# example the member subtracts from its inputs; empty without subtract_pixel_mean).
Data = dict[str, Any]
# vmap's in_axes for Data with a leading member axis: the pool is shared.
DATA_AXES = {'pool': None, 'index': 0, 'mean': 0}


def as_data(split: Split, members: int | None = None) -> Data:
  """A split of arrays as program data: the split is the pool and every example is used (tests, benchmarks);
  ``members``: a leading axis of that many members on ``index``, as the compiled programs take."""
  index = jnp.arange(split['y'].shape[0])
  if members is not None:
    index = jnp.broadcast_to(index, (members, index.shape[0]))
  return {'pool': split, 'index': index, 'mean': {}}


def examples(data: Data, idx: jax.Array | None = None) -> Split:
  """The member's examples ``data['index'][idx]`` (all of them without ``idx``) as a split, means subtracted."""
  index = data['index'] if idx is None else data['index'][idx]
  out = {k: a[index] for k, a in data['pool'].items()}
  for k, m in data['mean'].items():
    out[k] = out[k] - m
  return out


def spread(data: Data, count: int) -> Data:
  """``data`` (with a leading member axis) holding ``count`` of each member's examples (all when it has fewer),
  spread evenly over its split: a random subset of a drawn split."""
  n = data['index'].shape[-1]
  return {**data, 'index': data['index'][..., (np.arange(count) * n) // count]} if n > count else data


# A round's key has one stream per player (``fold_in(key, i)``, Algorithm 1's order); the diagnostics measured after
# the round sample their labels from the next one, which no update reads.
DIAGNOSTICS_STREAM = len(methods.PLAYERS)


def round_key(state: State, round_) -> jax.Array:
  """The key of round ``round_`` of the state's run (0: pretraining), from the state's ``rng``."""
  return jax.random.fold_in(jax.random.wrap_key_data(state['rng']), round_)


def round_tau(game: 'Game', state: State, round_) -> jax.Array:
  """The concrete temperature of the round after ``round_`` rounds (``estimators.temperature``, τ0 from the
  state)."""
  t = game.config.tau
  return estimators.temperature(round_, state['hparams']['tau0'], t.tau_min, t.decay, t.every)


def view(player: str, data: Split):
  """What ``player`` sees of the inputs: the student only ``x``, never the privileged ``xp``; the others ``xp``
  instead of ``x`` (privileged features: another view of the example), or, when ``xp`` holds integer token ids
  (privileged text), the pair ``(x, xp)``."""
  if player == 'student' or 'xp' not in data:
    return data['x']
  if jnp.issubdtype(data['xp'].dtype, jnp.integer):
    return (data['x'], data['xp'])
  return data['xp']


def apply_chunked(net: nn.Module, params, x, chunk: int) -> jax.Array:
  """``net.apply(params, x)`` over ``[N, ...]`` (an array, or a tuple of them: image and text) in equal chunks of
  at most ``chunk`` examples."""
  n = jax.tree.leaves(x)[0].shape[0]
  num_chunks = -(-n // chunk)
  if num_chunks <= 1:
    return net.apply(params, x)
  size = -(-n // num_chunks)
  pad = num_chunks * size - n

  def chunked(a):
    return jnp.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1)).reshape(num_chunks, size, *a.shape[1:])

  out = jax.lax.map(lambda xc: net.apply(params, xc), jax.tree.map(chunked, x))
  return out.reshape(-1, *out.shape[2:])[:n]


def make_optimizer(learning_rate: float, weight_decay: float) -> optax.GradientTransformation:
  """Adam with coupled (L2) weight decay; both hyperparameters are arrays in the state."""

  def make(learning_rate, weight_decay):
    return optax.chain(optax.add_decayed_weights(weight_decay), optax.adam(learning_rate))

  return optax.inject_hyperparams(make)(learning_rate=learning_rate, weight_decay=weight_decay)


def hyperparameters(method: methods.Method, config: ml_collections.ConfigDict) -> dict[str, jax.Array]:
  """The swept values of a validated config as arrays: the method's weights (``methods.hyperparameters``), τ0."""
  return {**methods.hyperparameters(method, config.game), 'tau0': jnp.asarray(config.tau.tau0, jnp.float32)}


@dataclasses.dataclass(frozen=True, eq=False)
class Game:
  """Static description of one run's game: method, networks, optimizers, game config.

  The values of ``fields.sweepable()`` in ``config`` only initialise a state
  (``init_state``); the programs read them from the state.
  """

  method: methods.Method
  nets: dict[str, nn.Module]
  optimizers: dict[str, optax.GradientTransformation]
  config: ml_collections.ConfigDict  # the run config (frozen)
  num_classes: int

  @property
  def estimator(self) -> str:
    return self.method.estimator or self.config.game.estimator

  @functools.cached_property
  def distillation(self):
    """The method's distillation term with the config's options bound: ``(target, logits, y, key, hp) -> [B]``."""
    return methods.DISTILLATION[self.method.distill].bind(self.config.game)

  @functools.cached_property
  def _key(self) -> tuple:
    """Everything that enters the compiled programs: ``compile_fns`` is cached on it.

    Networks compare by their fields (Linen modules are dataclasses: a changed
    activation is another network); optimizers by identity (``build`` shares
    one, whose hyperparameters are arrays in the state).
    """
    compiled = fields.computed(self.config, compiled=False)
    nets = tuple((p, _hashable(net)) for p, net in sorted(self.nets.items()))
    optimizers = tuple((p, _hashable(opt)) for p, opt in sorted(self.optimizers.items()))
    return (self.method, json.dumps(compiled, sort_keys=True, default=str), self.num_classes, nets, optimizers)

  def apply(self, player: str, params, x, chunk: int | None = None) -> jax.Array:
    """``player``'s scores on ``x`` (in equal chunks of at most ``chunk`` examples if given).

    The network computes in ``config.precision`` (``models.compute_in``: its
    float32 parameters and inputs cast); its scores come back in float32 at
    least, where every loss, value and estimator computes (SPEC §2–4's log-space
    math keeps its guarantees under bfloat16 networks).
    """
    net = self.nets[player]
    if self.config.precision != 'float32':
      params, x = models.compute_in(self.config.precision, (params, x))
    out = net.apply(params, x) if chunk is None else apply_chunked(net, params, x, chunk)
    return out if out.dtype == jnp.promote_types(out.dtype, jnp.float32) else out.astype(jnp.float32)

  def __eq__(self, other):
    return isinstance(other, Game) and self._key == other._key

  def __hash__(self):
    return hash(self._key)


def _hashable(obj):
  try:
    hash(obj)
  except TypeError:  # compared by identity: never shares a program it should not
    return ('id', id(obj))
  return obj


@functools.cache
def default_optimizer() -> optax.GradientTransformation:
  """The built-in players' optimizer, one instance: its hyperparameters are set per member by ``init_state``."""
  return make_optimizer(1.0, 0.0)


def check_players(config: ml_collections.ConfigDict, nets: dict, optimizers: dict) -> None:
  """Refuses networks or optimizers given for players the method does not have, or of the wrong kind."""
  present = methods.METHODS[config.method].present
  for kind, given, cls in (('nets', nets, nn.Module), ('optimizers', optimizers, optax.GradientTransformation)):
    for player, obj in given.items():
      if player not in methods.PLAYERS:
        raise ConfigError(f'{kind}[{player!r}] is not a player; players: {", ".join(methods.PLAYERS)}')
      if player not in present:  # a loop over methods may give every player's: not used, said once
        logging.info('%s[%r] not used: method=%s has players %s', kind, player, config.method, ', '.join(present))
        continue
      if not isinstance(obj, cls):
        raise ConfigError(f'{kind}[{player!r}] must be a {cls.__module__}.{cls.__qualname__}, got {type(obj)}')


def check_inputs(config: ml_collections.ConfigDict, source: data_lib.Source, own_nets=()) -> None:
  """Refuses data the config's players or augmentation cannot take: a model that reads privileged text without
  text (or as the student), inputs a built-in model does not accept (``models.Model.accepts``), augmentation of
  anything but images or of data with privileged inputs (it would not transform both views alike). ``own_nets``:
  players whose network the user gave (checked on its outputs instead)."""
  x_all, xp_all, name = source.x, source.xp, source.name
  players = [p for p in methods.METHODS[config.method].present if p not in own_nets]
  reading = [p for p in players if models.MODELS[config[p].model].reads_text]
  if 'student' in reading:
    raise ConfigError(f'student.model={config.student.model} reads privileged text, but the student never sees text')
  if reading and not data_lib.is_text(xp_all):
    fields = ', '.join(f'{p}.model={config[p].model}' for p in reading)
    raise ConfigError(f'{fields} read privileged text, but {name} has none; use mlp or a dataset with text')
  if reading:
    _check_vocabulary(config, source)
  unreading = [p for p in players if p != 'student' and p not in reading]
  if data_lib.is_text(xp_all) and unreading:
    fields = ', '.join(f'{p}.model={config[p].model}' for p in unreading)
    raise ConfigError(
      f'{name} has integer privileged inputs (xp, {source.xp.dtype}: token ids), which {fields} cannot read; use a '
      'model that reads text (text_mlp), or give privileged features as floats (uint8 images are scaled)'
    )
  for player in players:
    seen = xp_all if (xp_all is not None and player != 'student' and not data_lib.is_text(xp_all)) else x_all
    accepts = models.MODELS[config[player].model].accepts
    reason = accepts(seen.shape[1:]) if accepts else None
    if reason:
      raise ConfigError(f'{player}.model={config[player].model} {reason}; use model=mlp for flat features')
  augmented = not augment.is_identity(config.augment)
  if augmented and x_all.ndim not in (3, 4):
    raise ConfigError(f'augment needs image inputs [H, W] or [H, W, C], got examples of shape {x_all.shape[1:]}')
  if augmented and xp_all is not None:
    raise ConfigError(
      f'{name} has privileged inputs, which augment does not transform alike; '
      'set augment.rotation=0 augment.shift=0 augment.zoom=0 augment.flip=False'
    )


def _check_vocabulary(config: ml_collections.ConfigDict, source: data_lib.Source) -> None:
  """The text's embedding table fits (``text.embed_dim`` floats per token id up to the largest), and pretrained
  vectors (``text.embeddings``) are a readable ``.npy`` of its shape."""
  vocab, dim = int(source.pool['xp'].max()) + 1, config.text.embed_dim
  if vocab * dim > 2**28:  # 1 GiB of float32 in the table alone (Adam and the best copy hold 3 more)
    raise ConfigError(
      f'{source.name}: token ids up to {vocab - 1} make an embedding table of {vocab} x {dim} = {vocab * dim:.3g} '
      'parameters; number the vocabulary 1..V (0 = padding)'
    )
  path = config.text.embeddings
  if not path:
    return
  try:
    table = np.load(path, mmap_mode='r', allow_pickle=False)
  except (OSError, ValueError) as e:
    raise ConfigError(
      f'text.embeddings={path!r} cannot be read as a .npy ({type(e).__name__}: {str(e).splitlines()[0][:120]}); '
      'write it with numpy.save'
    ) from None
  if table.shape != (vocab, dim):
    raise ConfigError(
      f'text.embeddings={path!r} holds {table.shape}; the text needs [vocab_size, text.embed_dim] = [{vocab}, {dim}]'
    )


def build(
  config: ml_collections.ConfigDict,
  num_classes: int,
  nets: dict | None = None,
  optimizers: dict | None = None,
  vocab_size: int = 0,
) -> Game:
  """The ``Game`` of a validated config; ``nets`` / ``optimizers`` replace players' built-in ones.

  A network given for a discriminator whose kind has ``heads`` (ADIM's) is
  one head: ``models.Heads`` stacks ``game.heads`` copies of it. ``vocab_size``: the text's (its
  largest token id + 1), for the models that read text (``models.Model.reads_text``, made with the config's
  ``text`` group).
  """
  method = methods.resolved(methods.METHODS[config.method], config.game)
  nets, optimizers = dict(nets or {}), dict(optimizers or {})
  for player in method.present:
    pc = config[player]
    net = nets.get(player, pc.model)
    if isinstance(net, str) and models.MODELS[net].reads_text:
      net = models.make(net, num_classes, vocab_size, config.text)
    if player == 'discriminator' and values.discriminator_kind(method.discriminator).heads:
      nets[player] = models.Heads(net, config.game.heads, num_classes)
    elif isinstance(net, str):
      nets[player] = models.make(net, num_classes)
    else:
      nets[player] = net
    optimizers.setdefault(player, default_optimizer())
  return Game(method, nets, optimizers, ml_collections.FrozenConfigDict(config), num_classes)


def init_state(game: Game, key: jax.Array, data: Split, config: ml_collections.ConfigDict | None = None) -> State:
  """Fresh parameters and optimizer states for each player (shaped by its view of ``data``), and the run's key.

  ``config`` (default ``game.config``; it may differ from it in ``fields.sweepable()``
  fields) gives the hyperparameters: ``state['hparams']`` and each optimizer's
  learning rate and weight decay.
  """
  config = game.config if config is None else config
  state: State = {
    'round': jnp.zeros((), jnp.int32),
    'rng': jax.random.key_data(key),
    'hparams': hyperparameters(game.method, config),
  }
  for player in game.method.present:
    example = jax.tree.map(lambda a: a[:1], view(player, data))
    params = game.nets[player].init(jax.random.fold_in(key, 1000 + methods.PLAYERS.index(player)), example)
    opt_state = game.optimizers[player].init(params)
    if game.optimizers[player] is default_optimizer():  # a user's optimizer keeps its own hyperparameters
      for name in fields.player_hyperparameters():
        opt_state.hyperparams[name] = jnp.asarray(config[player][name], opt_state.hyperparams[name].dtype)
    state[player] = {'params': params, 'opt_state': opt_state}
    if player != 'discriminator':
      state[player]['reward_average'] = jnp.zeros((), jnp.float32)
  return state
