"""The three-player game: state, losses of each player, and one jitted round (Algorithm 1).

The state is a plain dict keyed by role; each player present holds its own
``params`` and its own optax ``opt_state`` (generators also a reward moving
average for the baseline). Networks and optimizers are static and live in
``Game``, outside the pytree. A round runs ``k_d`` discriminator, ``k_t``
teacher and ``k_s`` student updates as ``lax.scan`` loops in one compiled
program; each update draws a fresh minibatch and fresh noise.
"""

import dataclasses
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from adjax import estimators
from adjax import losses
from adjax import methods
from adjax import models
from adjax import values

State = dict[str, Any]
Data = dict[str, jax.Array]  # {'x': [N, ...], 'y': [N]}


def make_optimizer(learning_rate: float, weight_decay: float) -> optax.GradientTransformation:
  """Adam with coupled (L2) weight decay; both hyperparameters are arrays in the state."""

  def make(learning_rate, weight_decay):
    return optax.chain(optax.add_decayed_weights(weight_decay), optax.adam(learning_rate))

  return optax.inject_hyperparams(make)(learning_rate=learning_rate, weight_decay=weight_decay)


@dataclasses.dataclass(frozen=True)
class Game:
  """Static description of one run's game: method, networks, optimizers, game config."""

  method: methods.Method
  nets: dict[str, nn.Module]
  optimizers: dict[str, optax.GradientTransformation]
  config: ml_collections.ConfigDict  # the run config (frozen)
  num_classes: int

  @property
  def estimator(self) -> str:
    return self.method.estimator or self.config.game.estimator

  @property
  def weights_3(self) -> tuple[float, float, float]:
    return self.method.weights(self.config.game)

  def __hash__(self):
    return id(self)


def build(config: ml_collections.ConfigDict, num_classes: int) -> Game:
  """The ``Game`` of a validated config."""
  method = methods.METHODS[config.method]
  nets, optimizers = {}, {}
  for player in method.players:
    pc = config[player]
    if player == 'discriminator' and method.discriminator == 'multiclass':
      nets[player] = models.Heads(pc.model, config.game.heads, num_classes)
    else:
      nets[player] = models.MODELS[pc.model](num_outputs=num_classes)
    optimizers[player] = make_optimizer(pc.learning_rate, pc.weight_decay)
  return Game(method, nets, optimizers, ml_collections.FrozenConfigDict(config), num_classes)


def init_state(game: Game, key: jax.Array, x_example: jax.Array) -> State:
  """Fresh parameters and optimizer states for each player, and the run's key."""
  state: State = {'round': jnp.zeros((), jnp.int32), 'rng': jax.random.key_data(key)}
  for i, player in enumerate(game.method.players):
    params = game.nets[player].init(jax.random.fold_in(key, 1000 + i), x_example[:1])
    state[player] = {'params': params, 'opt_state': game.optimizers[player].init(params)}
    if player != 'discriminator':
      state[player]['reward_average'] = jnp.zeros((), jnp.float32)
  return state


def _logits(game: Game, state: State, player: str, x: jax.Array) -> jax.Array | None:
  if player not in state:
    return None
  return jax.lax.stop_gradient(game.nets[player].apply(state[player]['params'], x))


def generator_loss(
  params, game: Game, role: str, state: State, x: jax.Array, y_B: jax.Array, key: jax.Array, tau, objective: str
):
  """The loss a generator (``role`` = student or teacher) descends, and its reward.

  ``objective='supervised'`` is cross-entropy (pretraining, STUDENT, TEACHER);
  ``'game'`` is ``ω·(adversarial surrogate) + weight·L_KD(other || self)``.
  """
  logits_BxK = game.nets[role].apply(params, x)
  method, g = game.method, game.config.game
  reward_B = jnp.zeros(y_B.shape, jnp.float32)
  if objective == 'supervised' or method.supervised:
    return jnp.mean(losses.cross_entropy(logits_BxK, y_B)), reward_B
  loss = jnp.zeros(())
  if method.discriminator is not None:
    h = _logits(game, state, 'discriminator', x)
    index = methods.ROLE[role]

    def reward_fn(y_BxK):
      return values.role_log_probs(method.discriminator, h, y_BxK)[:, index]

    surrogate_B, reward_B = estimators.surrogate(
      game.estimator, key, logits_BxK, reward_fn, tau, g.baseline, state[role]['reward_average']
    )
    loss += game.weights_3[index] * jnp.mean(surrogate_B)
  other = 'teacher' if role == 'student' else 'student'
  if method.distill and other in state:
    weight = g.nu if role == 'student' else g.mu
    kd_B = losses.distillation(
      _logits(game, state, other, x), logits_BxK, y_B, g.upsilon, g.kd_temperature, g.distillation
    )
    loss += weight * jnp.mean(kd_B)
  return loss, reward_B


def discriminator_loss(params, game: Game, state: State, x: jax.Array, y_B: jax.Array, key: jax.Array, tau):
  """Minus the sampled adversarial value: real labels vs the generators' samples."""
  k_student, k_teacher = jax.random.split(key)
  y_real_BxK = jax.nn.one_hot(y_B, game.num_classes)
  samples = []
  for role, k in (('student', k_student), ('teacher', k_teacher)):
    logits = _logits(game, state, role, x)
    # A role that does not play has weight 0; any label vector stands in.
    samples.append(y_real_BxK if logits is None else estimators.generator_sample(game.estimator, k, logits, tau))
  h = game.nets['discriminator'].apply(params, x)
  value_B = values.adversarial_sampled(game.method.discriminator, game.weights_3, h, y_real_BxK, *samples)
  return -jnp.mean(value_B), jnp.zeros(y_B.shape, jnp.float32)


def _updates(game: Game, state: State, player: str, data: Data, key: jax.Array, num_updates: int, tau, objective: str):
  """``num_updates`` updates of one player as a ``lax.scan``; the others are held fixed."""
  batch_size = game.config.batch_size
  n = data['y'].shape[0]
  optimizer = game.optimizers[player]

  def loss_fn(params, x, y, k):
    if player == 'discriminator':
      return discriminator_loss(params, game, state, x, y, k, tau)
    return generator_loss(params, game, player, state, x, y, k, tau, objective)

  def step(player_state, i):
    k_batch, k_noise = jax.random.split(jax.random.fold_in(key, i))
    idx_B = jax.random.randint(k_batch, (batch_size,), 0, n)
    x, y = data['x'][idx_B], data['y'][idx_B]
    (loss, reward_B), grads = jax.value_and_grad(loss_fn, has_aux=True)(player_state['params'], x, y, k_noise)
    updates, opt_state = optimizer.update(grads, player_state['opt_state'], player_state['params'])
    new = dict(player_state, params=optax.apply_updates(player_state['params'], updates), opt_state=opt_state)
    if 'reward_average' in new:
      new['reward_average'] = estimators.update_moving_average(
        player_state['reward_average'], reward_B, game.config.game.baseline_decay
      )
    return new, {'loss': loss, 'reward': jnp.mean(reward_B), 'grad_norm': optax.global_norm(grads)}

  new_player_state, metrics = jax.lax.scan(step, state[player], jnp.arange(num_updates))
  return new_player_state, jax.tree.map(jnp.mean, metrics)


def round_tau(game: Game, round_: jax.Array) -> jax.Array:
  t = game.config.tau
  return estimators.temperature(round_, t.tau0, t.tau_min, t.decay, t.every)


def play_round(game: Game, state: State, data: Data) -> tuple[State, dict]:
  """One round of Algorithm 1: k_d discriminator, k_t teacher, k_s student updates."""
  round_ = state['round']
  key = jax.random.fold_in(jax.random.wrap_key_data(state['rng']), round_ + 1)
  tau = round_tau(game, round_)
  counts = {'discriminator': game.config.k_d, 'teacher': game.config.k_t, 'student': game.config.k_s}
  state = dict(state)
  metrics = {'tau': tau}
  for i, player in enumerate(methods.PLAYERS):
    if player in state and counts[player] > 0:
      state[player], metrics[player] = _updates(
        game, state, player, data, jax.random.fold_in(key, i), counts[player], tau, 'game'
      )
  state['round'] = round_ + 1
  return state, metrics


def pretrain(game: Game, state: State, data: Data) -> tuple[State, dict]:
  """Supervised pretraining of the generators, then of the discriminator against them."""
  key = jax.random.fold_in(jax.random.wrap_key_data(state['rng']), 0)
  tau = round_tau(game, jnp.zeros((), jnp.int32))
  state = dict(state)
  metrics = {}
  for i, player in enumerate(('student', 'teacher', 'discriminator')):
    steps = game.config.pretrain[player]
    if player in state and steps > 0:
      state[player], metrics[player] = _updates(
        game, state, player, data, jax.random.fold_in(key, i), steps, tau, 'supervised'
      )
  return state, metrics


def accuracy(game: Game, player: str, params, x: jax.Array, y: jax.Array, chunk: int = 500) -> jax.Array:
  """Top-1 accuracy of a generator on a split, in chunks of ``chunk`` examples."""
  n = y.shape[0]
  pad = (-n) % chunk
  x_chunks = jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1)).reshape(-1, chunk, *x.shape[1:])
  y_chunks = jnp.pad(y, (0, pad), constant_values=-1).reshape(-1, chunk)

  def correct(xy):
    logits = game.nets[player].apply(params, xy[0])
    return jnp.sum(jnp.argmax(logits, -1) == xy[1])

  return jnp.sum(jax.lax.map(correct, (x_chunks, y_chunks))) / n


def compile_fns(game: Game):
  """The run's jitted programs: ``pretrain``, ``play_round`` (state donated) and ``accuracy``."""
  return (
    jax.jit(functools.partial(pretrain, game), donate_argnums=(0,)),
    jax.jit(functools.partial(play_round, game), donate_argnums=(0,)),
    jax.jit(functools.partial(accuracy, game), static_argnums=(0,)),
  )
