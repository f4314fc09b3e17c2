"""From a config to ``results.json``: data, game, pretraining, rounds, selection on validation."""

import dataclasses
import functools
import hashlib
import json
import os
import re
import time

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from adjax import checkpoint
from adjax import config as config_lib
from adjax import data as data_lib
from adjax import default_config
from adjax import game as game_lib
from adjax import methods
from adjax import metric_writer
from adjax import parallel
from adjax import ranking
from adjax import rounds
from adjax import sweeps
from adjax import workdir as workdir_lib

GENERATORS = ('student', 'teacher')
# Fields a resumed run may change: more rounds continue the same trajectory.
RESUMABLE_CHANGES = ('rounds',)
# Fields that say where things are kept, not what is computed: a cached teacher is found by a hash of what
# trains it, so a workdir moved with its teacher cache (or pointed at a copy) is still the same run.
# ``mesh.devices`` says where members run: the same members on other devices compute the same numbers (to float
# rounding), and checkpoints hold only real members, so a run may resume on another number of devices.
PLACE_FIELDS = ('teacher_cache', 'mesh.devices', 'mesh.members')
# Config fields and groups newer than some workdirs: their defaults compute what the runs before them computed.
ADDED_FIELDS = (
  'mesh', 'text', 'select_metric', 'rank_k',
  'game.generator_reward', 'game.divide_by_batch', 'game.noisy_keep', 'game.distill_terms',
)  # fmt: skip


# What identifies a run beyond its config: its data and any network or optimizer given from Python.
IDENTITY_FIELDS = ('data', 'method', 'nets', 'optimizers')


def _run_json(config: ml_collections.ConfigDict, sweep: list[dict] | None, identity: dict | None = None) -> dict:
  """What ``config.json`` holds: the config, the sweep points if any, and the run's identity."""
  return {**json.loads(config.to_json()), **({'sweep': sweep} if sweep else {}), **(identity or {})}


def _what_is_computed(config_json: dict) -> dict:
  """``config_json`` without ``PLACE_FIELDS`` (dotted names reach into groups); a group that adjax added after the
  config was written (``ADDED_FIELDS``) counts as its default, which is what that run computed."""
  out = json.loads(json.dumps(config_json))
  defaults = json.loads(default_config.get_config().to_json())
  for field in ADDED_FIELDS:
    node, default = _group_of(out, field), _group_of(defaults, field)
    if isinstance(node, dict):
      node.setdefault(field.rpartition('.')[2], default[field.rpartition('.')[2]])
  for field in PLACE_FIELDS:
    node = _group_of(out, field)
    if isinstance(node, dict):
      node.pop(field.rpartition('.')[2], None)
  terms = _group_of(out, 'game.distill_terms').get('distill_terms')
  if isinstance(terms, dict):  # only replacements count: a term registered later must not make another run
    out['game']['distill_terms'] = {k: v for k, v in terms.items() if k != v}
  return out


def _group_of(config_json: dict, field: str):
  """The dict that holds a dotted field (``'game.nu'``: ``config_json['game']``); ``{}`` where a group is missing."""
  node = config_json
  for group in field.split('.')[:-1]:
    node = node.get(group, {}) if isinstance(node, dict) else {}
  return node


def _check_resume(workdir: str, config: ml_collections.ConfigDict, sweep: list[dict] | None, identity: dict) -> None:
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    return
  saved = _what_is_computed(workdir_lib.read_json(path, f'workdir={workdir!r}'))
  now = _what_is_computed(_run_json(config, sweep, identity))
  # A workdir written before adjax recorded identities is checked on its config alone.
  ignored = RESUMABLE_CHANGES + tuple(k for k in IDENTITY_FIELDS if k not in saved)
  changed = sorted(k for k in set(saved) | set(now) if k not in ignored and saved.get(k) != now.get(k))
  if changed:
    details = [f'{path}: {a!r} -> {b!r}' for k in changed for path, a, b in _differences(k, saved.get(k), now.get(k))]
    shown = '; '.join(details[:4]) + ('; …' if len(details) > 4 else '')
    raise config_lib.ConfigError(
      f'workdir={workdir!r} holds a run with a different config (fields: {", ".join(changed)}: {shown}); '
      'use a new workdir, or the same config to resume'
    )


def _differences(path: str, a, b):
  """``(dotted path, saved, now)`` of every leaf where two JSON values differ."""
  if isinstance(a, dict) and isinstance(b, dict):
    for k in sorted(set(a) | set(b)):
      if a.get(k) != b.get(k):
        yield from _differences(f'{path}.{k}', a.get(k), b.get(k))
  else:
    yield path, a, b


def finished(
  workdir: str,
  config: ml_collections.ConfigDict,
  sweep: list[dict] | None = None,
  *,
  data: data_lib.Source | None = None,
  nets: dict | None = None,
  optimizers: dict | None = None,
) -> dict | None:
  """The results in ``workdir`` if that run finished with exactly this config, sweep, data, nets, optimizers."""
  path = os.path.join(workdir, 'results.json')
  if not os.path.exists(path):
    return None
  try:
    results = workdir_lib.read_json(path, f'workdir={workdir!r}')
  except config_lib.ConfigError as e:  # the run writes it again from its checkpoints
    logging.warning('%s', e)
    return None
  same = _what_is_computed(results['config']) == _what_is_computed(json.loads(config.to_json())) and [
    s.get('overrides') for s in results.get('sweep', [])
  ] == (sweep or [])
  if same and 'identity' in results:
    c = config_lib.validate(config)
    source = data if data is not None else data_lib.read(c)
    splits = _load_members([c], source, tuple(nets or {}))
    game = game_lib.build(c, splits.num_classes, nets, optimizers, splits.vocab_size)
    same = results['identity'] == _identity(source, game, splits, dict(optimizers or {}))
  return results if same else None


def describe(obj) -> str | dict:
  """A stable description of a network or optimizer (the same in every process): its type and fields.

  Linen modules are dataclasses: each field is described (callables by
  their qualified name, submodules recursively). Other objects by their type
  and ``repr`` with memory addresses removed.
  """
  if callable(obj) and not dataclasses.is_dataclass(obj):
    return f'{getattr(obj, "__module__", "")}.{getattr(obj, "__qualname__", type(obj).__qualname__)}'
  if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
    fields = {
      f.name: describe(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.name not in ('parent', 'name')
    }
    return {'type': f'{type(obj).__module__}.{type(obj).__qualname__}', **fields}
  if isinstance(obj, tuple | list):
    return [describe(o) for o in obj]
  return re.sub(r' at 0x[0-9a-f]+', '', repr(obj))


def _shapes(x) -> str:
  return ' and '.join(str(tuple(a.shape)) for a in jax.tree.leaves(x))


def describe_net(net, example) -> dict:
  """``describe(net)`` plus ``computation``: a digest of the jaxprs of ``net.apply`` and ``net.init`` on one example.

  Fields alone miss a change inside ``__call__`` (another activation written
  in the code); the jaxpr is what the network computes, traced abstractly
  (no parameters are made).
  """
  x = jax.tree.map(lambda a: jax.ShapeDtypeStruct((1, *a.shape[1:]), a.dtype), example)
  params = jax.eval_shape(net.init, jax.random.key(0), x)
  # init's jaxpr too: an initializer set inside the module's code changes what a run trains from.
  jaxprs = str(jax.make_jaxpr(net.apply)(params, x)) + str(jax.make_jaxpr(net.init)(jax.random.key(0), x))
  return {**describe(net), 'computation': hashlib.sha256(jaxprs.encode()).hexdigest()[:16]}


# A small parameter tree, shaped like a Linen layer's, on which an optimizer's computation is traced.
_PROBE_PARAMS = {'params': {'Dense_0': {'kernel': np.full((3, 2), 0.5, np.float32), 'bias': np.zeros(2, np.float32)}}}


def describe_optimizer(opt, params=None) -> dict:
  """An optax transformation's identity: digests of its initial state on ``params`` (zeros shaped like a
  player's parameters; a probe tree by default: injected hyperparameters are values there) and of the jaxpr of its
  update, constants included (a learning rate or a momentum written into the code is a literal or a constant)."""
  params = _PROBE_PARAMS if params is None else params
  state = opt.init(params)
  closed = jax.make_jaxpr(opt.update)(params, state, params)
  h = hashlib.sha256(str(closed.jaxpr).encode())
  for leaf in [*closed.consts, *jax.tree.leaves(state)]:
    h.update(np.ascontiguousarray(np.asarray(leaf)).view(np.uint8))
  return {'type': describe(opt.update), 'computation': h.hexdigest()[:16]}


def _example(splits: data_lib.Splits, player: str):
  """One example as ``player`` sees it, ``[1, ...]`` (an array, or image and text)."""
  return jax.tree.map(lambda a: a[:1], game_lib.view(player, splits.pool))


def _check_outputs(nets: dict, splits: data_lib.Splits) -> None:
  """A user's network must give ``[B, num_classes]`` scores: refused here, before anything is compiled or written."""
  for player, net in nets.items():
    x = jax.tree.map(lambda a: jax.ShapeDtypeStruct((2, *a.shape[1:]), a.dtype), _example(splits, player))
    try:
      out = jax.eval_shape(lambda x, net=net: net.init_with_output(jax.random.key(0), x)[0], x)
    except Exception as e:
      raise config_lib.ConfigError(
        f'nets[{player!r}] fails on inputs of shape {_shapes(x)} ({type(e).__name__}: {str(e).splitlines()[0][:200]})'
      ) from None
    if not hasattr(out, 'shape') or tuple(out.shape) != (2, splits.num_classes):
      raise config_lib.ConfigError(
        f'nets[{player!r}] gives outputs of shape {getattr(out, "shape", type(out))} for 2 examples; '
        f'it must give [B, num_classes] = [B, {splits.num_classes}] scores'
      )


def _identity(source: data_lib.Source, game: game_lib.Game, splits: data_lib.Splits, optimizers: dict) -> dict:
  """What a run's results, resume check and teacher cache record beyond its config: the data's fingerprint, the
  method's declaration, every player's network (built-in ones too: their code may change) and the optimizers
  given from Python (each traced on its player's parameter shapes)."""
  out = {
    'data': source.identity(),
    'method': describe(game.method),
    'nets': {p: describe_net(game.nets[p], _example(splits, p)) for p in game.method.present},
    'optimizers': {},
  }
  for player, opt in sorted(optimizers.items()):
    x = jax.tree.map(jnp.zeros_like, _example(splits, player))
    params = jax.tree.map(np.zeros_like, jax.device_get(game.nets[player].init(jax.random.key(0), x)))
    try:
      out['optimizers'][player] = describe_optimizer(opt, params)
    except Exception as e:
      raise config_lib.ConfigError(
        f"optimizers[{player!r}] fails on the {player}'s parameters "
        f'({type(e).__name__}: {str(e).splitlines()[0][:200]})'
      ) from None
  return out


class _Members:
  """Where a run's members live: the mesh, their count (padded to a multiple of the mesh's ``members`` axis), and
  moving their arrays there and back. Padding members copy member 0 and are never reported."""

  def __init__(self, mesh: jax.sharding.Mesh, count: int, splits: data_lib.Splits):
    self.mesh, self.count, self.size = mesh, count, parallel.padded(count, mesh)
    self.splits = splits
    self._pool = None

  def put(self, tree):
    """Host arrays ``[count, ...]`` as arrays ``[size, ...]`` split over the mesh's members axis."""
    host = jax.tree.map(np.asarray, tree)
    return parallel.place(parallel.pad(host, self.size), self.mesh, parallel.P(parallel.MEMBERS))

  def put_each(self, member):
    """``put`` of the members' trees ``member(i)``, made one at a time: on one device of one process each is
    written in place into the stacked arrays, so the members' stack never exists on the host as well."""
    if jax.process_count() > 1 or self.mesh.devices.size > 1:
      return self.put(jax.tree.map(lambda *a: np.stack(a), *(member(i) for i in range(self.count))))
    first = member(0)
    sharding = jax.sharding.NamedSharding(self.mesh, parallel.P(parallel.MEMBERS))
    zeros = lambda: jax.tree.map(lambda a: jnp.zeros((self.size, *np.shape(a)), np.asarray(a).dtype), first)
    stacked = jax.jit(zeros, out_shardings=sharding)()
    for i in range(self.count):
      stacked = _set_member(stacked, first if i == 0 else member(i), i)
    return stacked

  def checkpointable(self, tree):
    """``tree`` as the checkpoint takes it: the arrays themselves on one device of one process (orbax writes them
    with the least memory), else the real members on the host."""
    if jax.process_count() == 1 and self.mesh.devices.size == 1:
      return tree
    return self.get(tree)

  def get(self, tree):
    """The real members' arrays ``[count, ...]`` on the host (every process)."""
    return jax.tree.map(lambda a: a[: self.count], parallel.fetch(tree))

  def data(self, split: str) -> game_lib.Data:
    """A split as the programs read it: the pool (one copy per device, placed once), the members' indices."""
    if self._pool is None:
      self._pool = parallel.place(self.splits.pool, self.mesh, parallel.P())
    return {'pool': self._pool, **self.put({'index': self.splits.index[split], 'mean': self.splits.mean})}


def _evaluate(accuracy, params: dict, data: game_lib.Data, members: _Members) -> dict[str, dict | None]:
  """Per-member figures ``{metric: [S]}`` of each generator in ``params`` on a split (each sees its own view)."""
  return {p: members.get(accuracy(p, params[p], data)) if p in params else None for p in GENERATORS}


def selected_figure(results: dict) -> str | None:
  """The figure a run's results were selected on (``accuracy``; ``p@3`` … for tags); None if every member
  diverged."""
  for final in (results['final'] or {}).values():
    if final:
      return next(k[len('val_') :] for k in final if k.startswith('val_') and not k.endswith('_std'))
  return None


def select_metric(config: ml_collections.ConfigDict, splits: data_lib.Splits) -> str:
  """The validation figure that selects parameters: ``select_metric``, checked against what the data gives."""
  multi_label = splits.pool['y'].ndim == 2
  if multi_label and not 1 <= config.rank_k <= splits.num_classes:
    raise config_lib.ConfigError(f'rank_k={config.rank_k} must be in 1..{splits.num_classes} (the number of tags)')
  valid = ranking.names(config.rank_k) if multi_label else ('accuracy',)
  chosen = config.select_metric or valid[0]
  if chosen not in valid:
    kind = 'multi-label tags' if multi_label else 'class labels'
    hint = f' (or set rank_k={chosen.split("@")[1]})' if multi_label and '@' in chosen else ''
    raise config_lib.ConfigError(
      f'select_metric={chosen!r} is not a figure of {kind} at rank_k={config.rank_k}; choose one of '
      f'{", ".join(valid)}{hint}'
    )
  return chosen


def _params(state) -> dict:
  return {p: state[p]['params'] for p in GENERATORS if p in state}


def _round_scalars(metrics: dict, val: dict, seed_index: int) -> dict[str, float]:
  """One seed's scalars of a round: validation accuracies, tau, each player's mean loss/reward/grad norm."""
  scalars = {f'{p}_val_{m}': float(a[seed_index]) for p, v in val.items() if v is not None for m, a in v.items()}
  if 'tau' in metrics:
    scalars['tau'] = float(metrics['tau'][seed_index])
  for player, m in metrics.items():
    if isinstance(m, dict):
      for name, value in m.items():
        scalars[f'{player}_{name}'] = float(value[seed_index])
  return scalars


@jax.jit
def _where(pick_S, new, old):
  return jax.tree.map(lambda n, o: jnp.where(pick_S.reshape(-1, *[1] * (n.ndim - 1)), n, o), new, old)


def _select(pick_S: np.ndarray, new, old, members: _Members):
  """Per member: ``new``'s arrays where ``pick_S``, else ``old``'s (leading member axis)."""
  return _where(members.put(pick_S), new, old)


def _stack(trees):
  return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


def _init_member(game: game_lib.Game, config: ml_collections.ConfigDict, data: game_lib.Split):
  return jax.device_get(game_lib.init_state(game, jax.random.key(config.seed), data, config))


def init_members(game: game_lib.Game, configs: list[ml_collections.ConfigDict], data: game_lib.Split):
  """Each config's initial state (its seed's key, its swept values), stacked on a leading member axis as host
  arrays (``data``: examples shaped as the players see them). Filled one member at a time: the stack and one
  member's state are in memory, not every member's state twice."""
  stacked = None
  for i, c in enumerate(configs):
    one = _init_member(game, c, data)
    if stacked is None:
      stacked = jax.tree.map(lambda a: np.empty((len(configs), *np.shape(a)), np.asarray(a).dtype), one)
    jax.tree.map(lambda out, a: out.__setitem__(i, a), stacked, one)
  return stacked


def with_overrides(config: ml_collections.ConfigDict, overrides: dict) -> ml_collections.ConfigDict:
  """A copy of ``config`` with dotted fields (``{'game.nu': 0.1, 'seed': 3}``) set."""
  c = ml_collections.ConfigDict(config.to_dict())
  for field, value in overrides.items():
    *groups, name = field.split('.')
    node = c
    for g in groups:
      node = node[g]
    node[name] = value
  return c


def check_sweep(
  config: ml_collections.ConfigDict, sweep: list[dict], optimizers: dict | None = None
) -> list[ml_collections.ConfigDict]:
  """Each sweep point's validated config; a field that would change the compiled program is refused, and so is a
  learning rate or weight decay of a player whose optimizer the user gave (adjax does not set it)."""
  configs = []
  method = methods.METHODS[config.method]
  for point in sweep:
    for field in point:
      sweeps.check_field(field)
      player, _, name = field.partition('.')
      unread = (
        (player == 'game' and name not in method.weight_fields())
        or (player in methods.PLAYERS and player not in method.present)
        or (field == 'tau.tau0' and method.discriminator is None)
      )
      if unread:
        reads = [f'game.{w}' for w in method.weight_fields()] + [f'{p}.*' for p in method.present]
        raise config_lib.ConfigError(
          f'{field} is not read by method={config.method}: every point would train the same model; '
          f'it reads {", ".join(reads + (["tau.tau0"] if method.discriminator else []))}'
        )
      if player in (optimizers or {}) and name in game_lib.PLAYER_HYPERPARAMETERS:
        raise config_lib.ConfigError(
          f'{field} cannot be swept: the {player} has its own optimizer, whose hyperparameters adjax does not set'
        )
    configs.append(config_lib.validate(with_overrides(config, point)))
  return configs


def _load_members(configs: list[ml_collections.ConfigDict], source: data_lib.Source, own_nets) -> data_lib.Splits:
  """Each member's indices (and means), stacked on a leading axis, into the one shared pool of examples (seeds draw
  different subsamples; a seed's are drawn once)."""
  by_seed = {}
  for c in configs:
    if c.seed not in by_seed:
      by_seed[c.seed] = data_lib.load(c, source, own_nets)
  per_member = [by_seed[c.seed] for c in configs]
  first = per_member[0]
  return data_lib.Splits(
    first.pool,
    {k: np.stack([sp.index[k] for sp in per_member]) for k in first.index},
    first.num_classes,
    {k: np.stack([sp.mean[k] for sp in per_member]) for k in first.mean},
  )


def _summary(per_seed_final: list[dict]) -> dict:
  """Mean and standard deviation over seeds of each final figure."""
  out = {}
  for p in GENERATORS:
    if per_seed_final[0][p] is None:
      out[p] = None
      continue
    out[p] = {}
    for name in per_seed_final[0][p]:
      values = np.array([f[p][name] for f in per_seed_final], np.float64)
      out[p][name], out[p][f'{name}_std'] = float(values.mean()), float(values.std())
  return out


# Config fields (and groups) that do not change how a frozen teacher is trained. Everything else identifies it, so a
# field added later makes a cache miss (the teacher is trained again), never a stale teacher.
# The fields of the ``game`` group that train the frozen teacher (the rest of the group does not; tests/test_authors
# checks that flipping any other leaves its pretraining program unchanged).
TEACHER_GAME_FIELDS = ('divide_by_batch',)
NOT_TEACHER_FIELDS = (
  'method', 'game', 'student', 'discriminator', 'k_d', 'k_t', 'k_s', 'rounds', 'num_seeds', 'seed', 'tau',
  'teacher_cache', 'pretrain', 'sweep', 'mesh',
)  # fmt: skip


def teacher_cache_path(config: ml_collections.ConfigDict, seed: int, identity: dict) -> str:
  """Where the frozen teacher of ``config``'s ``seed`` is cached: a digest of all that trains it, data included."""
  fields = {k: v for k, v in config.to_dict().items() if k not in NOT_TEACHER_FIELDS}
  fields.update(
    seed=seed,
    steps=config.pretrain.frozen_teacher,
    segments=rounds.FROZEN_SEGMENTS,
    data=identity['data']['fingerprint'],
    net=identity['nets'].get('teacher'),
    optimizer=identity['optimizers'].get('teacher'),
  )
  default_game = default_config.get_config().game
  for name in TEACHER_GAME_FIELDS:  # only when set otherwise: the keys of teachers cached before them stay valid
    if config.game[name] != default_game[name]:
      fields[f'game.{name}'] = config.game[name]
  digest = hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:16]
  return os.path.join(config.teacher_cache, f'teacher_{digest}')


def _frozen_players(configs, game, state, members: _Members, pretrain, accuracy, identity, metric: str):
  """Trains the frozen teacher of a two-phase baseline, or loads it from ``teacher_cache``.

  It trains in ``game.FROZEN_SEGMENTS`` segments; each member keeps its
  parameters with the best validation accuracy after any segment.
  """
  if not game.method.frozen:
    return state
  paths = [teacher_cache_path(c, c.seed, identity) for c in configs] if configs[0].teacher_cache else []
  # Every decision is taken by all processes together: one that loads while another trains would hang both.
  if paths and not parallel.any_process(not all(os.path.isdir(p) for p in paths)):
    like = jax.tree.map(lambda a: a[0], members.get(state['teacher']['params']))
    try:
      trees, error = [checkpoint.load_tree(p, like) for p in paths], None
    except (checkpoint.Damaged, checkpoint.OtherLayout) as e:
      trees, error = None, e
    if not parallel.any_process(error is not None):
      state['teacher'] = dict(state['teacher'], params=members.put(_stack(trees)))
      logging.info('loaded the frozen teacher from %s', configs[0].teacher_cache)
      return state
    logging.warning('cached teacher unusable (%s); training it again', error or 'in another process')
    for path in paths if parallel.is_writer() else []:
      checkpoint.move_aside(path, path + '.damaged')
  best, best_val = None, None
  train, val_split = members.data('train'), members.data('val')
  for segment in range(rounds.FROZEN_SEGMENTS):
    state, _ = pretrain(state, train, True, segment)
    val = _evaluate(accuracy, {'teacher': state['teacher']['params']}, val_split, members)['teacher'][metric]
    if best is None:
      best, best_val = jax.tree.map(jnp.copy, state['teacher']['params']), val
      continue
    best = _select(val > best_val, state['teacher']['params'], best, members)
    best_val = np.maximum(val, best_val)
  logging.info('frozen teacher: best validation %s %s', metric, np.round(best_val, 4))
  state['teacher'] = dict(state['teacher'], params=best)
  host = members.get(best)
  for i, path in enumerate(paths if parallel.is_writer() else []):
    if not os.path.isdir(path):
      checkpoint.save_tree(path, jax.tree.map(lambda a: a[i], host))
  return state


def _restore_latest(ckpt: checkpoint.Checkpoints, like, workdir: str):
  """The newest intact checkpoint's ``(arrays, meta)``, or None if there is none.

  A damaged checkpoint is reported and moved to ``workdir/damaged_checkpoints``
  (kept, not deleted); the one before it is tried next. One written for
  another state is refused: resuming it would be another run.
  """
  for step in ckpt.all_steps():
    try:
      arrays, meta = ckpt.restore(step, like)
    except checkpoint.OtherLayout as e:
      raise config_lib.ConfigError(
        f"workdir={workdir!r} holds a round-{step} checkpoint of another layout than this run's state ({e}); "
        'another version of adjax (or another setup) wrote it: use a new workdir'
      ) from None
    except checkpoint.Damaged as e:
      moved = ckpt.set_aside(step, os.path.join(workdir, 'damaged_checkpoints'))
      logging.warning('checkpoint of round %d is damaged (%s); moved to %s, trying the one before', step, e, moved)
      continue
    logging.info('resumed %s at round %d', workdir, step)
    return arrays, meta
  return None


def _check_rounds(workdir: str, config: ml_collections.ConfigDict) -> None:
  """Fewer rounds than a workdir already holds would report later rounds' figures under an earlier count."""
  steps = checkpoint.saved_steps(os.path.join(workdir, 'checkpoints'))
  if steps and max(steps) > config.rounds:
    raise config_lib.ConfigError(
      f'rounds={config.rounds} but workdir={workdir!r} already holds {max(steps)} rounds of this run; '
      f'set rounds>={max(steps)} to resume or report it, or use a new workdir for a shorter run'
    )


def _nonfinite(scalars: dict) -> list[str]:
  return [k for k, v in scalars.items() if not np.isfinite(v)]


@dataclasses.dataclass(frozen=True)
class _Run:
  """What one call of ``train_and_evaluate`` works on, checked."""

  config: ml_collections.ConfigDict
  workdir: str
  sweep: list[dict] | None
  configs: list[ml_collections.ConfigDict]  # one per member
  overrides: list[dict]  # each member's sweep point
  num_seeds: int
  source: data_lib.Source
  identity: dict
  game: game_lib.Game  # the config's, with the user's networks and optimizers


def train_and_evaluate(
  config: ml_collections.ConfigDict,
  workdir: str,
  sweep: list[dict] | None = None,
  *,
  data: data_lib.Source | None = None,
  nets: dict | None = None,
  optimizers: dict | None = None,
) -> dict:
  """Trains ``num_seeds`` seeds, times each ``sweep`` point, as one vmapped program; resumes from ``workdir``.

  Args:
    config: a run config (``adjax.default_config.get_config()`` and overrides).
    workdir: where checkpoints, TensorBoard files and ``results.json`` go; a
      run started again with the same workdir resumes.
    sweep: points ``{dotted field: value}`` over ``game.sweepable_fields()``
      (e.g. ``[{'game.nu': 0.1}, {'game.nu': 1.0}]``); members are ordered
      point-major: point 0's seeds, then point 1's, …
    data: the run's arrays (``adjax.data.from_arrays(...)``) instead of
      ``config.dataset``; validation is drawn from its training arrays.
    nets: ``{player: flax.linen.Module}`` replacing ``config.<player>.model``
      (outputs ``[B, num_classes]``; for ADIM the discriminator's heads wrap
      it).
    optimizers: ``{player: optax.GradientTransformation}`` replacing the
      default Adam (then that player's ``learning_rate`` and ``weight_decay``
      are not read, and cannot be swept).

  Returns:
    The contents of ``results.json``; ``identity`` names the data (and its
    fingerprint), the networks and optimizers given from Python. A workdir
    holding a run with other data, networks or optimizers is refused.

  A member whose round goes non-finite is frozen and reported as diverged
  (``diverged_round`` in its ``per_seed`` entry, no figures); the others
  finish. A run of one member, or a run without ``sweep`` whose every member
  diverged, raises ``FloatingPointError`` instead, keeping its last good
  checkpoint. SIGTERM ends the run after the current round's checkpoint
  (``workdir.Preempted``). Only one process may run in a workdir at a time.
  """
  config = config_lib.validate(config)
  for option in config_lib.unused_options(config) if parallel.is_writer() else ():
    logging.warning('%s: method=%s does not read it; it changes nothing', option, config.method)
  parallel.check(config)
  nets, optimizers = dict(nets or {}), dict(optimizers or {})
  game_lib.check_players(config, nets, optimizers)
  points = check_sweep(config, sweep, optimizers) if sweep else [config]
  seeds = [config.seed + i for i in range(config.num_seeds)]
  configs = [with_overrides(c, {'seed': seed}) for c in points for seed in seeds]
  overrides = [point for point in (sweep or [{}]) for _ in seeds]
  workdir_lib.check_usable(workdir)
  _check_rounds(workdir, config)
  source = data if data is not None else data_lib.read(config)
  splits = _load_members(configs, source, tuple(nets))
  select_metric(config, splits)
  _check_outputs(nets, splits)
  game = game_lib.build(config, splits.num_classes, nets, optimizers, splits.vocab_size)
  identity = _identity(source, game, splits, optimizers)
  _check_resume(workdir, config, sweep, identity)
  run = _Run(config, workdir, sweep, configs, overrides, len(seeds), source, identity, game)
  with workdir_lib.exclusive(workdir), workdir_lib.stop_on_sigterm() as sigterm:
    _check_resume(workdir, config, sweep, identity)  # again, under the lock: another run may have started meanwhile
    return _run(run, splits, sigterm)


def _run(run: _Run, splits: data_lib.Splits, sigterm) -> dict:
  """The run loop, under the workdir lock: start (round 0) or resume, the rounds, the results."""
  game = run.game
  config_path = os.path.join(run.workdir, 'config.json')
  if parallel.is_writer() and not os.path.exists(config_path):
    workdir_lib.write_json(config_path, _run_json(run.config, run.sweep, run.identity))
  mesh = parallel.make_mesh(run.config, len(run.configs))
  loop = _Loop(run, game, rounds.compile_fns(game, mesh), _Members(mesh, len(run.configs), splits), sigterm)
  try:
    state, best, meta = loop.start()
    for r in range(int(loop.members.get(state['round'])[0]), run.config.rounds):
      state, best = loop.play(r + 1, state, best, meta)
    results = _results(run, splits, loop.programs.accuracy, state, best, meta, loop.members, loop.metric)
    loop.ckpt.wait()  # the last round's checkpoint is on disk before the results are
    if parallel.is_writer():
      workdir_lib.write_json(os.path.join(run.workdir, 'results.json'), results)
    return results
  finally:
    loop.close()


class _Loop:
  """One run's host loop: what every round needs (programs, data on the device, writers), and the round itself.

  ``meta`` (JSON, saved with each checkpoint) holds each member's history, its
  best round per generator, its diverged round (None while healthy) and the
  seconds of each round.
  """

  def __init__(self, run: _Run, game: game_lib.Game, programs: rounds.Programs, members: _Members, sigterm):
    self.run, self.game, self.programs, self.members, self.sigterm = run, game, programs, members, sigterm
    self.train, self.val = members.data('train'), members.data('val')
    self.metric = select_metric(run.config, members.splits)  # what selects parameters on validation
    self.key = f'val_{self.metric}'
    self.ckpt = checkpoint.Checkpoints(os.path.join(run.workdir, 'checkpoints'))
    self.writer = metric_writer.MetricWriter(os.path.join(run.workdir, 'tensorboard'), enabled=parallel.is_writer())

  def close(self) -> None:
    self.writer.close()
    self.ckpt.close()

  def tag(self, i: int) -> str:
    """Member ``i``'s prefix in TensorBoard and the log: its sweep point and seed."""
    run = self.run
    names = [f'{k}={v:g}' for k, v in run.overrides[i].items()]
    names += [f'seed_{run.configs[i].seed}'] if run.num_seeds > 1 else []
    return ''.join(n + '/' for n in names)

  def _stop_if_preempted(self, round_: int) -> None:
    if parallel.any_process(self.sigterm.is_set()):  # all processes stop after the same round
      self.ckpt.wait()  # with the round's checkpoint on disk
      raise workdir_lib.Preempted(
        f'SIGTERM: stopped after the checkpoint of round {round_}; run the same command again to resume'
      )

  def _save(self, round_: int, state, best, meta) -> None:
    self.ckpt.save(
      round_, self.members.checkpointable({'state': state, 'best': best}), meta
    )  # written while the next round runs
    self._stop_if_preempted(round_)

  def start(self):
    """``(state, best, meta)``: the newest intact checkpoint's, or round 0's (frozen teacher, pretraining)."""
    run, game, members, (pretrain, _, accuracy) = self.run, self.game, self.members, self.programs
    example = {k: a[:1] for k, a in members.splits.pool.items()}
    one = _init_member(game, run.configs[0], example)
    stacked = lambda a: jax.ShapeDtypeStruct((members.count, *np.shape(a)), np.asarray(a).dtype)
    like = jax.tree.map(stacked, {'state': one, 'best': _params(one)})
    restored = _restore_latest(self.ckpt, like, run.workdir)
    if restored is not None:
      arrays, meta = restored
      meta.setdefault('diverged', [None] * members.count)
      arrays = members.put(arrays)
      return arrays['state'], arrays['best'], meta
    t0 = time.perf_counter()
    state = members.put_each(lambda i: _init_member(game, run.configs[i], example))
    state = _frozen_players(run.configs, game, state, members, pretrain, accuracy, run.identity, self.metric)
    state, metrics = pretrain(state, self.train, False, 0)
    val = _evaluate(accuracy, _params(state), self.val, members)
    best = {p: jax.tree.map(jnp.copy, state[p]['params']) for p in GENERATORS if p in state}
    metrics = members.get(metrics)
    history = [[{'round': 0, **_round_scalars(metrics, val, i)}] for i in range(members.count)]
    params_finite_S = members.get(_all_finite(best))
    finite = [not _nonfinite(history[i][0]) and bool(params_finite_S[i]) for i in range(members.count)]
    meta = {
      'history': [h if ok else [] for h, ok in zip(history, finite)],
      'best': [{p: {'round': 0, self.key: float(val[p][self.metric][i])} for p in best} for i in range(members.count)],
      'diverged': [None if ok else 0 for ok in finite],
      'seconds': [time.perf_counter() - t0],
    }
    _check_members(meta, history, 0, self.tag, stop_when_all=not run.sweep)
    for i in np.flatnonzero(finite):
      self.writer.write_scalars(0, {self.tag(i) + k: v for k, v in history[i][0].items()})
    self._save(0, state, best, meta)
    return state, best, meta

  def play(self, round_: int, state, best, meta):
    """Round ``round_``: play it (diverged members frozen), evaluate, mark divergence, select, log, save."""
    (_, play_round, accuracy), members = self.programs, self.members
    t0 = time.perf_counter()
    active = np.array([d is None for d in meta['diverged']])
    state, metrics = play_round(state, self.train, members.put(active))
    # A frozen player's accuracy is that of round 0: it is not evaluated again.
    trained = {p: v for p, v in _params(state).items() if p not in self.game.method.frozen}
    val = _evaluate(accuracy, trained, self.val, members)
    metrics = members.get(metrics)
    finite = metrics.pop('finite')
    for p in self.game.method.frozen:
      first = next((h[0] for h in meta['history'] if h), {})
      names = [k[len(f'{p}_val_') :] for k in first if k.startswith(f'{p}_val_')]
      val[p] = {
        m: np.array([h[0][f'{p}_val_{m}'] if h else np.nan for h in meta['history']], np.float32) for m in names
      }
    history = [[{'round': round_, **_round_scalars(metrics, val, i)}] for i in range(members.count)]
    for i in np.flatnonzero(active):
      if not finite[i] or _nonfinite(history[i][0]):
        meta['diverged'][i] = round_
    _check_members(meta, history, round_, self.tag, stop_when_all=not self.run.sweep)
    live = np.array([d is None for d in meta['diverged']])
    for i in np.flatnonzero(live):
      meta['history'][i].append(history[i][0])
      self.writer.write_scalars(round_, {self.tag(i) + k: v for k, v in history[i][0].items()})
    for p in best:
      score = val[p][self.metric]
      improved_S = live & np.array([score[i] > meta['best'][i][p][self.key] for i in range(members.count)])
      for i in np.flatnonzero(improved_S):
        meta['best'][i][p] = {'round': round_, self.key: float(score[i])}
      if improved_S.any():
        best[p] = _select(improved_S, state[p]['params'], best[p], members)
    meta['seconds'].append(time.perf_counter() - t0)
    live_last = [meta['history'][i][-1] for i in np.flatnonzero(live)]
    if parallel.is_writer():
      metric_writer.log_round(round_, self.run.config.rounds, live_last, meta['seconds'], self.metric)
    self._save(round_, state, best, meta)
    return state, best


@functools.partial(jax.jit, donate_argnums=0)
def _set_member(stacked, one, i):
  return jax.tree.map(lambda s, o: jax.lax.dynamic_update_index_in_dim(s, o, i, 0), stacked, one)


@jax.jit
def _all_finite(tree):
  """Per member: every parameter finite (one program over the member axis)."""
  return jax.vmap(rounds.all_finite)(tree)


def _check_members(meta: dict, history: list[list[dict]], round_: int, tag, stop_when_all: bool) -> None:
  """Logs newly diverged members; raises when a run of one member diverged, or (``stop_when_all``) all of them.

  A chunk of a sweep whose every point diverged still finishes: its points are reported as diverged.
  """
  diverged = [i for i, d in enumerate(meta['diverged']) if d == round_]
  for i in diverged:
    bad = _nonfinite(history[i][0]) or ['parameters']
    logging.warning('member %s diverged in round %d (non-finite: %s); it is frozen', tag(i) or 0, round_, bad)
  every = all(d is not None for d in meta['diverged'])
  if diverged and every and (stop_when_all or len(meta['diverged']) == 1):
    i = diverged[0]
    raise FloatingPointError(
      f'non-finite metrics in round {round_}, member {tag(i) or 0}: {history[i][0]}'
      + (f' (every one of {len(meta["diverged"])} members has diverged)' if len(meta['diverged']) > 1 else '')
      + (f'; the checkpoint of round {round_ - 1} is kept' if round_ > 0 else '; nothing was saved')
    )


def _results(run: _Run, splits: data_lib.Splits, accuracy, state, best, meta, members: _Members, metric: str) -> dict:
  config, sweep, configs, overrides, num_seeds = run.config, run.sweep, run.configs, run.overrides, run.num_seeds
  test = members.data('test')
  selected, last = _evaluate(accuracy, best, test, members), _evaluate(accuracy, _params(state), test, members)
  test = {p: (selected[p], last[p]) for p in best}
  per_seed = []
  for i, c in enumerate(configs):
    entry = {'seed': c.seed, **({'overrides': overrides[i]} if sweep else {})}
    if meta['diverged'][i] is not None:  # its figures would be those of a broken run: none are reported
      per_seed.append({**entry, 'diverged_round': meta['diverged'][i], 'final': None, 'history': meta['history'][i]})
      continue
    final = {p: None for p in GENERATORS}
    for p in best:
      final[p] = {
        **{f'test_{m}': float(a[i]) for m, a in test[p][0].items()},
        f'val_{metric}': meta['best'][i][p][f'val_{metric}'],
        'selected_round': meta['best'][i][p]['round'],
        **{f'last_test_{m}': float(a[i]) for m, a in test[p][1].items()},
        f'last_val_{metric}': meta['history'][i][-1][f'{p}_val_{metric}'],
      }
    per_seed.append({**entry, 'final': final, 'history': meta['history'][i]})
  return {
    'method': config.method,
    'dataset': run.source.name,
    'n_train': config.n_train,
    'n_val': int(splits.index['val'].shape[-1]),
    'n_test': int(splits.index['test'].shape[-1]),
    'seed': config.seed,
    'num_seeds': num_seeds,
    'rounds': config.rounds,
    'seconds_per_round': meta['seconds'],
    # One seed: its figures; several: mean and std over the seeds that did not diverge (each under per_seed).
    **_group(per_seed, num_seeds, sweep),
    'per_seed': per_seed,
    'config': json.loads(config.to_json()),
    'identity': run.identity,
  }


def _group(per_seed: list[dict], num_seeds: int, sweep: list[dict] | None) -> dict:
  """``final`` and ``history`` over the seeds of a run; for a sweep, ``sweep``: those of each point.

  Diverged members are left out of the figures and listed in ``diverged``
  (``{seed, round}``); a point whose every seed diverged has ``final`` None.
  """
  groups = []
  for j in range(len(per_seed) // num_seeds):
    members = per_seed[j * num_seeds : (j + 1) * num_seeds]
    healthy = [m for m in members if m.get('diverged_round') is None]
    group = {
      'final': None
      if not healthy
      else healthy[0]['final']
      if num_seeds == 1
      else _summary([m['final'] for m in healthy]),
      'history': members[0]['history'] if num_seeds == 1 else _mean_history(healthy or members),
    }
    diverged = [{'seed': m['seed'], 'round': m['diverged_round']} for m in members if m not in healthy]
    groups.append({**group, **({'diverged': diverged} if diverged else {})})
  if not sweep:
    return groups[0]
  return {'sweep': [{'overrides': point, **group} for point, group in zip(sweep, groups)]}


def _mean_history(per_seed: list[dict]) -> list[dict]:
  """Per round, the mean over seeds of each scalar (over the seeds that reached that round)."""
  out = []
  for r in range(max(len(s['history']) for s in per_seed)):
    hs = [s['history'][r] for s in per_seed if len(s['history']) > r]
    out.append({k: float(np.mean([h[k] for h in hs])) for k in hs[0]})
  return out
