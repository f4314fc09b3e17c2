"""The three-player game: state, losses of each player, and one jitted round (Algorithm 1).

The state is a plain dict keyed by role; each player present holds its own
``params`` and its own optax ``opt_state`` (generators also a reward moving
average for the baseline). Networks and optimizers are static and live in
``Game``, outside the pytree. A round runs ``k_d`` discriminator, ``k_t``
teacher and ``k_s`` student updates as ``lax.scan`` loops in one compiled
program; each update draws a fresh minibatch and fresh noise.
"""

from collections.abc import Callable
import dataclasses
import functools
import json
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from adjax import augment
from adjax import estimators
from adjax import losses
from adjax import methods
from adjax import models
from adjax import values
from adjax.config import ConfigError

State = dict[str, Any]
# {'x': [N, ...], 'y': [N]} and, for privileged provisions, 'xp': [N, ...].
Data = dict[str, jax.Array]


def view(player: str, data: Data) -> jax.Array:
  """What ``player`` sees of the inputs: the student only ``x``, never the privileged ``xp``."""
  if player != 'student' and 'xp' in data:
    return data['xp']
  return data['x']


def make_optimizer(learning_rate: float, weight_decay: float) -> optax.GradientTransformation:
  """Adam with coupled (L2) weight decay; both hyperparameters are arrays in the state."""

  def make(learning_rate, weight_decay):
    return optax.chain(optax.add_decayed_weights(weight_decay), optax.adam(learning_rate))

  return optax.inject_hyperparams(make)(learning_rate=learning_rate, weight_decay=weight_decay)


# Config fields that do not enter the compiled programs (the seed enters through
# the state's key): games that differ only in these share compiled code.
NOT_COMPILED = ('seed', 'num_seeds', 'rounds', 'data_file', 'teacher_cache')
# Hyperparameters that are arrays in the state, never Python constants in the
# program: the game's weight fields (``methods.WEIGHTS``) and τ0 in
# ``state['hparams']`` (``hyperparameters``), the players' learning rates and
# weight decays in their optax states (``inject_hyperparams``).
# Configurations that differ only in these compile once and can be vmapped
# together (a sweep). Derived from the registries, so a registered weight is
# sweepable too.
PLAYER_HYPERPARAMETERS = ('learning_rate', 'weight_decay')


def sweepable_fields() -> tuple[str, ...]:
  """Every config field that is an array in the state: ``game.<weight>``, ``tau.tau0``, players' lr and wd."""
  return (
    *(f'game.{w}' for w in methods.WEIGHTS),
    'tau.tau0',
    *(f'{p}.{h}' for p in methods.PLAYERS for h in PLAYER_HYPERPARAMETERS),
  )


def hyperparameters(method: methods.Method, config: ml_collections.ConfigDict) -> dict[str, jax.Array]:
  """The swept values of a validated config as arrays: the method's weights (``methods.hyperparameters``), τ0."""
  return {**methods.hyperparameters(method, config.game), 'tau0': jnp.asarray(config.tau.tau0, jnp.float32)}


@dataclasses.dataclass(frozen=True, eq=False)
class Game:
  """Static description of one run's game: method, networks, optimizers, game config.

  The values of ``sweepable_fields()`` in ``config`` only initialise a state
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
  def _key(self) -> tuple:
    """Everything that enters the compiled programs: ``compile_fns`` is cached on it.

    Networks compare by their fields (Linen modules are dataclasses: a changed
    activation is another network); optimizers by identity (``build`` shares
    one, whose hyperparameters are arrays in the state).
    """
    compiled = {k: v for k, v in self.config.to_dict().items() if k not in NOT_COMPILED}
    for field in sweepable_fields():
      group, name = field.split('.')
      compiled[group] = {k: v for k, v in compiled[group].items() if k != name}
    nets = tuple((p, _hashable(net)) for p, net in sorted(self.nets.items()))
    optimizers = tuple((p, _hashable(opt)) for p, opt in sorted(self.optimizers.items()))
    return (self.method, json.dumps(compiled, sort_keys=True, default=str), self.num_classes, nets, optimizers)

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
      if player not in present:
        raise ConfigError(f'{kind}[{player!r}]: method={config.method} has players {", ".join(present)}')
      if not isinstance(obj, cls):
        raise ConfigError(f'{kind}[{player!r}] must be a {cls.__module__}.{cls.__qualname__}, got {type(obj)}')


def build(
  config: ml_collections.ConfigDict, num_classes: int, nets: dict | None = None, optimizers: dict | None = None
) -> Game:
  """The ``Game`` of a validated config; ``nets`` / ``optimizers`` replace players' built-in ones.

  A network given for an ADIM discriminator is one head: ``models.Heads``
  stacks ``game.heads`` copies of it.
  """
  method = methods.METHODS[config.method]
  nets, optimizers = dict(nets or {}), dict(optimizers or {})
  for player in method.present:
    pc = config[player]
    net = nets.get(player, pc.model)
    if player == 'discriminator' and method.discriminator == 'multiclass':
      nets[player] = models.Heads(net, config.game.heads, num_classes)
    elif isinstance(net, str):
      nets[player] = models.MODELS[net](num_outputs=num_classes)
    optimizers.setdefault(player, default_optimizer())
  return Game(method, nets, optimizers, ml_collections.FrozenConfigDict(config), num_classes)


def init_state(game: Game, key: jax.Array, data: Data, config: ml_collections.ConfigDict | None = None) -> State:
  """Fresh parameters and optimizer states for each player (shaped by its view of ``data``), and the run's key.

  ``config`` (default ``game.config``; it may differ from it in ``sweepable_fields()``
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
    example = view(player, data)[:1]
    params = game.nets[player].init(jax.random.fold_in(key, 1000 + methods.PLAYERS.index(player)), example)
    opt_state = game.optimizers[player].init(params)
    if game.optimizers[player] is default_optimizer():  # a user's optimizer keeps its own hyperparameters
      for name in PLAYER_HYPERPARAMETERS:
        opt_state.hyperparams[name] = jnp.asarray(config[player][name], opt_state.hyperparams[name].dtype)
    state[player] = {'params': params, 'opt_state': opt_state}
    if player != 'discriminator':
      state[player]['reward_average'] = jnp.zeros((), jnp.float32)
  return state


def apply_chunked(net: nn.Module, params, x: jax.Array, chunk: int) -> jax.Array:
  """``net.apply(params, x)`` over ``[N, ...]`` in equal chunks of at most ``chunk`` examples."""
  n = x.shape[0]
  num_chunks = -(-n // chunk)
  if num_chunks <= 1:
    return net.apply(params, x)
  size = -(-n // num_chunks)
  pad = num_chunks * size - n
  x_chunks = jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1)).reshape(num_chunks, size, *x.shape[1:])
  out = jax.lax.map(lambda xc: net.apply(params, xc), x_chunks)
  return out.reshape(-1, *out.shape[2:])[:n]


def fixed_players(game: Game, state: State, player: str, objective: str) -> tuple[str, ...]:
  """The players whose outputs ``player``'s loss reads (they are held fixed during its updates)."""
  if player == 'discriminator':
    return tuple(p for p in ('student', 'teacher') if p in state)
  if objective == 'supervised' or game.method.supervised:
    return ()
  other = 'teacher' if player == 'student' else 'student'
  needed = ['discriminator'] if game.method.discriminator is not None else []
  if game.method.distill is not None and other in state:
    needed.append(other)
  return tuple(needed)


def fixed_outputs(game: Game, state: State, players, data: Data, batches: dict) -> dict[str, jax.Array]:
  """Outputs ``[U, B, ...]`` of the fixed ``players`` on every minibatch of a phase, in one batched pass.

  The held-fixed players do not change during a phase, so their forward
  passes leave the sequential loop. Without augmentation, when the training
  set is smaller than the phase's ``U·B`` draws, each example is evaluated
  once and gathered.
  """
  chunk = game.config.eval_chunk
  idx_UxB = batches['idx']
  out = {}
  for p in players:
    net, params = game.nets[p], state[p]['params']
    x_N, x_UxB = view(p, data), view(p, batches)
    if not batches['augmented'] and x_N.shape[0] <= idx_UxB.size:
      out[p] = apply_chunked(net, params, x_N, chunk)[idx_UxB]
    else:
      flat = apply_chunked(net, params, x_UxB.reshape(-1, *x_UxB.shape[2:]), chunk)
      out[p] = flat.reshape(*idx_UxB.shape, *flat.shape[1:])
  return jax.lax.stop_gradient(out)


def draw_batches(game: Game, data: Data, key: jax.Array, num_updates: int) -> dict:
  """A phase's minibatches, drawn up front: indices ``[U, B]``, inputs (augmented if configured), labels."""
  k_idx, k_aug = jax.random.split(key)
  idx_UxB = jax.random.randint(k_idx, (num_updates, game.config.batch_size), 0, data['y'].shape[0])
  x_UxB, aug = data['x'][idx_UxB], game.config.augment
  augmented = not augment.is_identity(aug)
  if augmented:
    x_UxB = augment.apply(k_aug, x_UxB.reshape(-1, *x_UxB.shape[2:]), aug).reshape(x_UxB.shape)
  batches = {'idx': idx_UxB, 'x': x_UxB, 'y': data['y'][idx_UxB], 'augmented': augmented}
  if 'xp' in data:  # refused together with augmentation (adjax.data)
    batches['xp'] = data['xp'][idx_UxB]
  return batches


def generator_terms(
  params, game: Game, role: str, x: jax.Array, y_B: jax.Array, others: dict, key: jax.Array, tau, reward_average, hp
):
  """The unweighted terms of a generator's loss (each a batch mean), and its per-example reward.

  ``others`` holds the fixed players' outputs on ``x``. No others:
  ``{'supervised': CE}`` (pretraining, STUDENT, TEACHER). Otherwise
  ``'adversarial'`` (the estimator's surrogate of the role's adversarial
  term) when a discriminator plays, and ``'distillation'`` (the method's term
  towards the other generator) when it is present.
  """
  logits_BxK = game.nets[role].apply(params, x)
  method = game.method
  reward_B = jnp.zeros(y_B.shape, jnp.float32)
  if not others:
    return {'supervised': jnp.mean(losses.cross_entropy(logits_BxK, y_B))}, reward_B
  terms = {}
  if 'discriminator' in others:
    h, index = others['discriminator'], methods.ROLE[role]

    def reward_fn(y_BxK):
      return values.role_log_probs(method.discriminator, h, y_BxK)[:, index]

    surrogate_B, reward_B = estimators.surrogate(
      game.estimator, key, logits_BxK, reward_fn, tau, game.config.game.baseline, reward_average
    )
    terms['adversarial'] = jnp.mean(surrogate_B)
  other = 'teacher' if role == 'student' else 'student'
  if other in others:
    terms['distillation'] = jnp.mean(
      distillation_term(game, role, others[other], logits_BxK, y_B, jax.random.fold_in(key, 1), hp)
    )
  return terms, reward_B


def term_weights(game: Game, role: str, hp) -> dict[str, jax.Array]:
  """Each term's weight in a generator's loss: ω of its role, and the distillation term's weight field (ν / µ)."""
  distill = methods.DISTILLATION[game.method.distill] if game.method.distill else None
  field = distill.weights.get(role) if distill else None
  return {
    'supervised': 1.0,
    'adversarial': hp['weights'][methods.ROLE[role]],
    'distillation': hp[field] if field else 1.0,
  }


def generator_loss(params, game: Game, role: str, x, y_B, others: dict, key: jax.Array, tau, reward_average, hp):
  """The loss a generator (``role`` = student or teacher) descends, ``ω·adversarial + weight·distillation``, and
  its reward."""
  terms, reward_B = generator_terms(params, game, role, x, y_B, others, key, tau, reward_average, hp)
  weights = term_weights(game, role, hp)
  return sum(weights[name] * value for name, value in terms.items()), reward_B


def distillation_term(game: Game, role: str, target_BxK, logits_BxK, y_B, key, hp) -> jax.Array:
  """The generator's per-example term towards the other generator's logits (``Method.distill``), unweighted."""
  del role
  return methods.DISTILLATION[game.method.distill].loss(target_BxK, logits_BxK, y_B, key, hp, game.config.game)


def discriminator_loss(params, game: Game, x: jax.Array, y_B: jax.Array, others: dict, key: jax.Array, tau, hp):
  """Minus the sampled adversarial value: real labels vs the generators' samples (``others``: their logits)."""
  k_student, k_teacher = jax.random.split(key)
  y_real_BxK = jax.nn.one_hot(y_B, game.num_classes)
  samples = []
  for role, k in (('student', k_student), ('teacher', k_teacher)):
    # A role that does not play has weight 0; any label vector stands in.
    samples.append(estimators.generator_sample(game.estimator, k, others[role], tau) if role in others else y_real_BxK)
  h = game.nets['discriminator'].apply(params, x)
  value_B = values.adversarial_sampled(game.method.discriminator, hp['weights'], h, y_real_BxK, *samples)
  return -jnp.mean(value_B), jnp.zeros(y_B.shape, jnp.float32)


def _updates(game: Game, state: State, player: str, data: Data, key: jax.Array, num_updates: int, tau, objective: str):
  """``num_updates`` updates of one player as a ``lax.scan``; the others are held fixed.

  Each update has its own minibatch (all drawn up front, so the fixed players'
  outputs on them are computed in one batched pass) and its own noise key.
  """
  optimizer = game.optimizers[player]
  k_batches, k_noise = jax.random.split(key)
  batches = draw_batches(game, data, k_batches, num_updates)
  others_all = fixed_outputs(game, state, fixed_players(game, state, player, objective), data, batches)

  hp = state['hparams']

  def loss_fn(params, x, y, others, k, reward_average):
    if player == 'discriminator':
      return discriminator_loss(params, game, x, y, others, k, tau, hp)
    return generator_loss(params, game, player, x, y, others, k, tau, reward_average, hp)

  def step(player_state, inputs):
    i, x, y, others = inputs
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    (loss, reward_B), grads = grad_fn(
      player_state['params'], x, y, others, jax.random.fold_in(k_noise, i), player_state.get('reward_average')
    )
    updates, opt_state = optimizer.update(grads, player_state['opt_state'], player_state['params'])
    new = dict(player_state, params=optax.apply_updates(player_state['params'], updates), opt_state=opt_state)
    if 'reward_average' in new:
      new['reward_average'] = estimators.update_moving_average(
        player_state['reward_average'], reward_B, game.config.game.baseline_decay
      )
    return new, {'loss': loss, 'reward': jnp.mean(reward_B), 'grad_norm': optax.global_norm(grads)}

  new_player_state, metrics = jax.lax.scan(
    step, state[player], (jnp.arange(num_updates), view(player, batches), batches['y'], others_all)
  )
  return new_player_state, jax.tree.map(jnp.mean, metrics)


def round_tau(game: Game, state: State, round_: jax.Array) -> jax.Array:
  t = game.config.tau
  return estimators.temperature(round_, state['hparams']['tau0'], t.tau_min, t.decay, t.every)


def play_round(game: Game, state: State, data: Data) -> tuple[State, dict]:
  """One round of Algorithm 1: k_d discriminator, k_t teacher, k_s student updates."""
  round_ = state['round']
  key = jax.random.fold_in(jax.random.wrap_key_data(state['rng']), round_ + 1)
  tau = round_tau(game, state, round_)
  counts = {'discriminator': game.config.k_d, 'teacher': game.config.k_t, 'student': game.config.k_s}
  state = dict(state)
  metrics = {'tau': tau}
  for i, player in enumerate(methods.PLAYERS):
    if player in game.method.players and counts[player] > 0:
      state[player], metrics[player] = _updates(
        game, state, player, data, jax.random.fold_in(key, i), counts[player], tau, 'game'
      )
  state['round'] = round_ + 1
  return state, metrics


def all_finite(tree) -> jax.Array:
  """One boolean: every element of every leaf of ``tree`` is finite."""
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in jax.tree.leaves(tree)]))


def guarded_round(game: Game, state: State, data: Data, active: jax.Array | None = None) -> tuple[State, dict]:
  """``play_round``, but a member that is not ``active`` or whose round went non-finite keeps its state.

  ``metrics['finite']`` says whether this round's metrics and trained
  parameters were finite. Only ``round`` advances for a kept member, so a
  diverged sweep member stops changing while the others go on (the host marks
  it and stops passing it as active).
  """
  new, metrics = play_round(game, state, data)
  finite = all_finite(metrics) & all_finite({p: new[p]['params'] for p in game.method.players})
  keep_new = finite if active is None else finite & active
  out = jax.tree.map(lambda n, o: jnp.where(keep_new, n, o), new, state)
  out['round'] = new['round']
  return out, {**metrics, 'finite': finite}


# The frozen teacher of a two-phase baseline trains in this many equal segments
# of ``pretrain.frozen_teacher`` steps; the host keeps its best on validation.
FROZEN_SEGMENTS = 10


def pretrain(game: Game, state: State, data: Data, frozen: bool = False, segment=0) -> tuple[State, dict]:
  """Supervised pretraining of the generators, then of the discriminator against them.

  ``frozen=True`` trains only the frozen players, one ``segment`` (of
  ``FROZEN_SEGMENTS``, each with its own minibatches) of their
  ``pretrain.frozen_teacher`` steps; a run may instead load them from a
  teacher cache. ``False`` trains all the others.
  """
  key = jax.random.fold_in(jax.random.wrap_key_data(state['rng']), 0)
  tau = round_tau(game, state, jnp.zeros((), jnp.int32))
  state = dict(state)
  metrics = {}
  for i, player in enumerate(('student', 'teacher', 'discriminator')):
    if player not in state or (player in game.method.frozen) != frozen:
      continue
    if frozen:
      steps = -(-game.config.pretrain.frozen_teacher // FROZEN_SEGMENTS)
      player_key = jax.random.fold_in(jax.random.fold_in(key, i), segment)
    else:
      steps, player_key = game.config.pretrain[player], jax.random.fold_in(key, i)
    if steps > 0:
      state[player], metrics[player] = _updates(game, state, player, data, player_key, steps, tau, 'supervised')
  return state, metrics


def accuracy(game: Game, player: str, params, x: jax.Array, y: jax.Array) -> jax.Array:
  """Top-1 accuracy of a generator on a split."""
  logits = apply_chunked(game.nets[player], params, x, game.config.eval_chunk)
  return jnp.mean(jnp.argmax(logits, -1) == y)


class Programs(NamedTuple):
  """A game's jitted programs (see ``compile_fns``)."""

  pretrain: Callable
  play_round: Callable
  accuracy: Callable


@functools.cache
def compile_fns(game: Game) -> Programs:
  """The run's jitted programs, vmapped over a leading seed axis of state and data.

  ``pretrain(state, data, frozen, segment)`` (``frozen`` static),
  ``play_round(state, data, active=None)`` (state donated; ``guarded_round``:
  ``active [S]`` bool freezes members, ``metrics['finite'] [S]``) and
  ``accuracy(player, params, x, y)``; cached per game (``Game._key``: the
  networks, optimizers and compiled config), so runs that differ only in
  ``NOT_COMPILED`` or ``sweepable_fields()`` share compiled code.
  """
  return Programs(
    jax.jit(
      lambda state, data, frozen, segment=0: jax.vmap(
        lambda s, d: pretrain(game, s, d, frozen=frozen, segment=segment)
      )(state, data),
      static_argnums=(2,),
      donate_argnums=(0,),
    ),
    jax.jit(
      lambda state, data, active=None: jax.vmap(functools.partial(guarded_round, game))(state, data, active),
      donate_argnums=(0,),
    ),
    jax.jit(
      lambda player, params, x, y: jax.vmap(functools.partial(accuracy, game, player))(params, x, y),
      static_argnums=(0,),
    ),
  )
