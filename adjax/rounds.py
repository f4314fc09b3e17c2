"""One round of Algorithm 1, pretraining, evaluation, and the compiled programs that run them.

A round runs ``k_d`` discriminator, ``k_t`` teacher and ``k_s`` student
updates as ``lax.scan`` loops in one compiled program; each update draws a
fresh minibatch and fresh noise. A phase first draws all its minibatches and
runs the held-fixed players' forward passes on them in one batched pass
(``fixed_outputs``), then scans the updates of its player
(``adjax.objectives`` gives each player's loss).
"""

from collections.abc import Callable
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from adjax import augment
from adjax import diagnostics
from adjax import estimators
from adjax import methods
from adjax import objectives
from adjax import parallel
from adjax import ranking
from adjax.game import DATA_AXES
from adjax.game import Data
from adjax.game import Game
from adjax.game import State
from adjax.game import examples
from adjax.game import round_key
from adjax.game import round_tau
from adjax.game import view

# The frozen teacher of a two-phase baseline trains in this many equal segments
# of ``pretrain.frozen_teacher`` steps; the host keeps its best on validation.
FROZEN_SEGMENTS = 10


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
  once and gathered. The same numbers as per-update forward passes; rounds
  1.2x faster (measured when it was introduced).
  """
  with jax.named_scope('fixed_players'):
    chunk = game.config.eval_chunk
    idx_UxB = batches['idx']
    every_example = not batches['augmented'] and data['index'].shape[0] <= idx_UxB.size
    train = examples(data) if every_example and players else None
    out = {}
    for p in players:
      params, x_UxB = state[p]['params'], view(p, batches)
      if every_example:
        out[p] = game.apply(p, params, view(p, train), chunk)[idx_UxB]
      else:
        flat = game.apply(p, params, jax.tree.map(lambda a: a.reshape(-1, *a.shape[2:]), x_UxB), chunk)
        out[p] = flat.reshape(*idx_UxB.shape, *flat.shape[1:])
    return jax.lax.stop_gradient(out)


def draw_batches(game: Game, data: Data, key: jax.Array, num_updates: int) -> dict:
  """A phase's minibatches, drawn up front: indices ``[U, B]``, inputs (augmented if configured), labels."""
  with jax.named_scope('draw_batches'):
    k_idx, k_aug = jax.random.split(key)
    idx_UxB = jax.random.randint(k_idx, (num_updates, game.config.batch_size), 0, data['index'].shape[0])
    batches, aug = examples(data, idx_UxB), game.config.augment
    augmented = not augment.is_identity(aug)  # refused with privileged inputs (game.check_inputs): x alone is augmented
    if augmented:
      x_UxB = batches['x']
      with jax.named_scope('augment'):
        batches['x'] = augment.apply(k_aug, x_UxB.reshape(-1, *x_UxB.shape[2:]), aug).reshape(x_UxB.shape)
    return {**batches, 'idx': idx_UxB, 'augmented': augmented}


def phase_batches(
  game: Game, state: State, player: str, data: Data, key: jax.Array, num_updates: int, objective: str
) -> tuple[objectives.Batch, jax.Array]:
  """A phase's ``num_updates`` minibatches as ``player`` sees them, and the phase's noise key.

  The ``Batch`` has a leading update axis: the player's view ``[U, B, ...]``,
  the labels and the held-fixed players' outputs on every minibatch (drawn up
  front, so those outputs come from one batched pass; ``objective``: the
  players held fixed, ``'game'`` or ``'supervised'``). Under data parallelism
  (``mesh.batch > 1``) it is this device's share of each minibatch, with its
  own noise key.
  """
  k_batches, k_noise = jax.random.split(key)
  batches = draw_batches(game, data, k_batches, num_updates)
  ways = game.config.mesh.batch
  if ways > 1:
    batches = _share(batches, ways)
    k_noise = jax.random.fold_in(k_noise, jax.lax.axis_index(parallel.BATCH))
  others = fixed_outputs(game, state, fixed_players(game, state, player, objective), data, batches)
  return objectives.Batch(view(player, batches), batches['y'], others), k_noise


def player_updates(state: State, batches: objectives.Batch, ctx: objectives.Context) -> tuple[dict, dict]:
  """One update of ``ctx.role`` per minibatch of ``batches`` (``phase_batches``) as a ``lax.scan``; the others
  are held fixed. Update ``i`` draws its noise from ``fold_in(ctx.key, i)``; each update reads the reward moving
  average from the player's state as the scan carries it (``ctx.reward_average`` is not read)."""
  game, player = ctx.game, ctx.role
  optimizer = game.optimizers[player]
  ways = game.config.mesh.batch
  loss_fn = objectives.discriminator_loss if player == 'discriminator' else objectives.generator_loss

  def step(player_state, inputs):
    i, batch = inputs
    update_ctx = ctx._replace(key=jax.random.fold_in(ctx.key, i), reward_average=player_state.get('reward_average'))
    with jax.named_scope('loss_and_gradient'):
      (loss, reward_B), grads = jax.value_and_grad(loss_fn, has_aux=True)(player_state['params'], batch, update_ctx)
    if ways > 1:  # the whole minibatch's mean loss, gradient and reward (equal shares: the mean of the means)
      # The parameters are the same on every device of the batch axis, so shard_map's autodiff already summed
      # their gradients over it: the mean is that sum over the number of shares.
      grads = jax.tree.map(lambda g: g / ways, grads)
      loss, reward = jax.lax.pmean((loss, jnp.mean(reward_B)), parallel.BATCH)
      reward_B = reward[None]
    with jax.named_scope('optimizer'):
      updates, opt_state = optimizer.update(grads, player_state['opt_state'], player_state['params'])
      new = dict(player_state, params=optax.apply_updates(player_state['params'], updates), opt_state=opt_state)
    if 'reward_average' in new:
      new['reward_average'] = estimators.update_moving_average(
        player_state['reward_average'], reward_B, game.config.game.baseline_decay
      )
    return new, {'loss': loss, 'reward': jnp.mean(reward_B), 'grad_norm': optax.global_norm(grads)}

  num_updates = batches.y.shape[0]
  new_player_state, metrics = jax.lax.scan(step, state[player], (jnp.arange(num_updates), batches))
  return new_player_state, jax.tree.map(jnp.mean, metrics)


def _phase(game: Game, state: State, player: str, data: Data, key, num_updates: int, tau, objective: str):
  """``num_updates`` updates of ``player`` on a phase's minibatches (``phase_batches``, then ``player_updates``)."""
  batches, k_noise = phase_batches(game, state, player, data, key, num_updates, objective)
  axis = parallel.BATCH if game.config.mesh.batch > 1 else None
  ctx = objectives.Context(game, player, k_noise, tau, None, state['hparams'], axis)
  return player_updates(state, batches, ctx)


def _share(batches: dict, ways: int) -> dict:
  """The slice ``[U, B / ways]`` of a phase's minibatches that this device of the ``batch`` mesh axis trains on."""
  size = batches['idx'].shape[1] // ways
  start = jax.lax.axis_index(parallel.BATCH) * size
  return {
    k: v if k == 'augmented' else jax.lax.dynamic_slice_in_dim(v, start, size, axis=1) for k, v in batches.items()
  }


def play_round(game: Game, state: State, data: Data) -> tuple[State, dict]:
  """One round of Algorithm 1: k_d discriminator, k_t teacher, k_s student updates."""
  round_ = state['round']
  key = round_key(state, round_ + 1)
  tau = round_tau(game, state, round_)
  counts = {'discriminator': game.config.k_d, 'teacher': game.config.k_t, 'student': game.config.k_s}
  state = dict(state)
  metrics = {'tau': tau}
  for i, player in enumerate(methods.PLAYERS):
    if player in game.method.players and counts[player] > 0:
      player_key = jax.random.fold_in(key, i)
      state[player], metrics[player] = _phase(game, state, player, data, player_key, counts[player], tau, 'game')
  state['round'] = round_ + 1
  return state, metrics


def all_finite(tree) -> jax.Array:
  """One boolean: every element of every leaf of ``tree`` is finite."""
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in jax.tree.leaves(tree)]))


def guarded_round(game: Game, state: State, data: Data, active: jax.Array | None = None) -> tuple[State, dict]:
  """``play_round``, but a member that is not ``active`` or whose round went non-finite keeps its parameters.

  ``metrics['finite']`` says whether this round's metrics and trained
  parameters were finite. A diverged sweep member's parameters stop changing
  while the others go on (the host marks it and stops passing it as active);
  its optimizer state is not kept (it never trains again), so the program
  holds a second copy of the parameters only, not of the whole state
  (``benchmarks/memory.py``).
  """
  new, metrics = play_round(game, state, data)
  finite = all_finite(metrics) & all_finite({p: new[p]['params'] for p in game.method.players})
  keep_new = finite if active is None else finite & active
  for p in game.method.players:
    params = jax.tree.map(lambda n, o: jnp.where(keep_new, n, o), new[p]['params'], state[p]['params'])
    new[p] = dict(new[p], params=params)
  return new, {**metrics, 'finite': finite}


def pretrain(game: Game, state: State, data: Data, frozen: bool = False, segment=0) -> tuple[State, dict]:
  """Supervised pretraining of the generators, then of the discriminator against them.

  ``frozen=True`` trains only the frozen players, one ``segment`` (of
  ``FROZEN_SEGMENTS``, each with its own minibatches) of their
  ``pretrain.frozen_teacher`` steps; a run may instead load them from a
  teacher cache. ``False`` trains all the others.
  """
  key = round_key(state, 0)
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
      state[player], metrics[player] = _phase(game, state, player, data, player_key, steps, tau, 'supervised')
  return state, metrics


def accuracy(game: Game, player: str, params, data: Data) -> dict[str, jax.Array]:
  """A generator's figures on a split (``data``'s examples, as the player sees them): ``{'accuracy'}`` (top-1) of
  integer labels; of multi-hot tags, the ranking metrics of ``adjax.ranking`` at ``rank_k`` (``p@3``, …, ``mrr``)."""
  split = examples(data)
  logits = game.apply(player, params, view(player, split), game.config.eval_chunk)
  if split['y'].ndim == 2:
    return ranking.metrics(logits, split['y'], game.config.rank_k)
  return {'accuracy': jnp.mean(jnp.argmax(logits, -1) == split['y'])}


def member_loop(config) -> bool:
  """Whether a device runs its members one after another (``mesh.members``: 'loop'; 'auto' on a CPU) rather than
  vmapped ('vmap'; 'auto' elsewhere)."""
  choice = config.mesh.members
  return choice == 'loop' or (choice == 'auto' and jax.default_backend() == 'cpu')


def each_member(fn: Callable, loop: bool) -> Callable:
  """``fn(state, data, *xs) -> (new state or None, out)`` of one member, over the members of a device: ``state``,
  ``xs`` and ``data``'s per-member parts (``DATA_AXES``) carry a leading member axis; returns ``(state, outs)``.

  Vmapped, or (``loop``) one member after another in a ``lax.scan`` whose
  carry is the stacked state, each member's new state written over its old
  one in place (``fn`` returning None leaves the state as it was): a member's
  temporaries, not every member's, are in memory at once, and each member
  computes exactly what a run of it alone computes (vmapped, a dense layer
  is a batched matmul: the same up to float rounding).
  """

  def vmapped(state, data, *xs):
    return jax.vmap(fn, in_axes=(0, DATA_AXES) + (0,) * len(xs))(state, data, *xs)

  def run(state, data, *xs):
    if not loop:
      return vmapped(state, data, *xs)
    shared = {k: v for k, v in data.items() if DATA_AXES[k] is None}
    per_member = {k: v for k, v in data.items() if DATA_AXES[k] == 0}

    def body(state, i):
      # Member i as a member axis of one: the very program a run of one member runs, so the same numbers.
      take = lambda a: jax.lax.dynamic_slice_in_dim(a, i, 1)
      new, out = vmapped(
        jax.tree.map(take, state), {**shared, **jax.tree.map(take, per_member)}, *jax.tree.map(take, xs)
      )
      if new is not None:
        state = jax.tree.map(lambda a, n: jax.lax.dynamic_update_slice_in_dim(a, n, i, 0), state, new)
      return state, jax.tree.map(lambda a: a[0], out)

    return jax.lax.scan(body, state, jnp.arange(jax.tree.leaves(state)[0].shape[0]))

  return run


class Programs(NamedTuple):
  """A game's jitted programs (see ``compile_fns``)."""

  pretrain: Callable
  play_round: Callable
  accuracy: Callable
  diagnostics: Callable


@functools.cache
def compile_fns(game: Game, mesh: jax.sharding.Mesh | None = None) -> Programs:
  """The run's jitted programs over a leading member axis of state and per-member data.

  ``pretrain(state, data, frozen, segment=0)`` (``frozen`` static),
  ``play_round(state, data, active=None)`` (state donated; ``guarded_round``:
  ``active [S]`` bool freezes members, ``metrics['finite'] [S]``) and
  ``accuracy(player, params, data)`` and ``diagnostics(state, data)``
  (``adjax.diagnostics.measure``: ``{name: [S]}``). ``data`` is ``game.Data`` with a
  leading member axis on ``index`` and ``mean`` (``game.DATA_AXES``). Members
  are split over ``mesh``'s ``members`` axis (default: one device), each
  device running its share vmapped or one after another
  (``member_loop``); ``S`` must be a multiple of that axis
  (``parallel.padded``). Cached per game (``Game._key``: the networks,
  optimizers and compiled config) and mesh, so runs that differ only in
  fields that are not compiled (``adjax.fields``: seeds, rounds, swept values) share compiled code.
  """
  mesh = parallel.single_device() if mesh is None else mesh
  members = parallel.P(parallel.MEMBERS)

  def sharded(body, in_specs):
    return jax.shard_map(body, mesh=mesh, in_specs=in_specs, out_specs=members)

  loop = member_loop(game.config)

  def pretrain_program(state, data, frozen, segment=0):
    def body(state, data, segment):
      fn = lambda s, d: pretrain(game, s, d, frozen=frozen, segment=segment)
      return each_member(fn, loop)(state, data)

    return sharded(body, (members, parallel.DATA_SPECS, parallel.P()))(state, data, segment)

  def round_program(state, data, active):
    if active is None:
      active = jnp.ones(jax.tree.leaves(state)[0].shape[0], bool)
    body = each_member(functools.partial(guarded_round, game), loop)
    return sharded(body, (members, parallel.DATA_SPECS, members))(state, data, active)

  def accuracy_program(player, params, data):
    def body(params, data):
      return each_member(lambda p, d: (None, accuracy(game, player, p, d)), loop)(params, data)[1]

    return sharded(body, (members, parallel.DATA_SPECS))(params, data)

  def diagnostics_program(state, data):
    def body(state, data):
      return each_member(lambda s, d: (None, diagnostics.measure(game, s, d)), loop)(state, data)[1]

    return sharded(body, (members, parallel.DATA_SPECS))(state, data)

  # Inputs are placed as the programs split them (a no-op for arrays already there), so that a caller's first call,
  # with arrays made anywhere, and later calls, with the programs' outputs, run one compiled program.
  split = jax.sharding.NamedSharding(mesh, members)
  data_split = {k: jax.sharding.NamedSharding(mesh, spec) for k, spec in parallel.DATA_SPECS.items()}
  jitted = (
    jax.jit(pretrain_program, static_argnums=(2,), donate_argnums=(0,), out_shardings=split),
    jax.jit(round_program, donate_argnums=(0,), out_shardings=split),
    jax.jit(accuracy_program, static_argnums=(0,), out_shardings=split),
    jax.jit(diagnostics_program, out_shardings=split),
  )

  def run_pretrain(state, data, frozen, segment=0):
    return jitted[0](jax.device_put(state, split), jax.device_put(data, data_split), frozen, segment)

  def run_round(state, data, active=None):
    if active is None:  # every member active: the same compiled program as a caller passing the mask
      active = np.ones(jax.tree.leaves(state)[0].shape[0], bool)
    active = jax.device_put(active, split)
    return jitted[1](jax.device_put(state, split), jax.device_put(data, data_split), active)

  def run_accuracy(player, params, data):
    if player not in game.nets:
      players = ', '.join(game.method.present)
      raise ValueError(f"player {player!r} is not one of method={game.config.method}'s players: {players}")
    return jitted[2](player, jax.device_put(params, split), jax.device_put(data, data_split))

  def run_diagnostics(state, data):
    # What the measurement reads: parameters, key, round and hyperparameters (not the optimizer states).
    read = {k: state[k] for k in ('rng', 'round', 'hparams')}
    read.update({p: {'params': state[p]['params']} for p in methods.PLAYERS if p in state})
    return jitted[3](jax.device_put(read, split), jax.device_put(data, data_split))

  fns = (run_pretrain, run_round, run_accuracy, run_diagnostics)
  for program, fn in zip(jitted, fns):
    fn.jitted = program
  return Programs(*fns)
