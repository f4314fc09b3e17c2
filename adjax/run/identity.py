"""What a run computes, as the resume check, ``finished`` and the teacher cache compare it: the config's computed
fields (``adjax.fields`` says which) and the run's identity: the data's fingerprint, the method's declaration, every
player's network and the optimizers given from Python."""

import dataclasses
import functools
import hashlib
import json
import os
import re

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from adjax import checkpoint
from adjax import data as data_lib
from adjax import fields
from adjax import game as game_lib
from adjax import rounds
from adjax import workdir as workdir_lib
from adjax.errors import ConfigError


def run_json(config: ml_collections.ConfigDict, sweep: list[dict] | None, identity: dict | None = None) -> dict:
  """What ``config.json`` holds: the config, the sweep points if any, and the run's identity."""
  return {**json.loads(config.to_json()), **({'sweep': sweep} if sweep else {}), **(identity or {})}


def what_is_computed(config_json: dict) -> dict:
  """``config_json`` without its place fields; a field adjax added after the config was written counts as its
  default (what that run computed); values compared as their declaration's ``normalize`` says."""
  out = json.loads(json.dumps(config_json))
  defaults = json.loads(fields.get_config().to_json())
  for f in fields.fields().values():
    *groups, leaf = f.name.split('.')
    node, default = out, defaults
    for g in groups:
      node = node.setdefault(g, {}) if isinstance(node, dict) and f.added else _get(node, g)
      default = default[g]
    if not isinstance(node, dict):
      continue
    if f.added:
      node.setdefault(leaf, default[leaf])
    if f.place:
      node.pop(leaf, None)
    elif f.normalize and leaf in node:
      node[leaf] = f.normalize(node[leaf])
  return out


def _get(node, key: str):
  return node.get(key) if isinstance(node, dict) else None


RECORD = 'run'  # the key of a checkpoint's metadata that holds ``run_json`` of the run it belongs to


def check_resume(workdir: str, config: ml_collections.ConfigDict, sweep: list[dict] | None, identity: dict) -> None:
  """Refuses a workdir that holds another run (only a resumable field may differ), as recorded where its state
  lives: the newest checkpoint's metadata, a finished ``results.json`` (never replaced by another run, nor by one of
  fewer rounds), and ``config.json`` (the copy for people, also checked so an edited one is noticed)."""
  now = what_is_computed(run_json(config, sweep, identity))
  for where, saved in _records(workdir):
    _compare(workdir, where, what_is_computed(saved), now, identity)
  results = stored_results(workdir)
  if results is not None and results.get('rounds', 0) > config.rounds:
    raise ConfigError(
      f'rounds={config.rounds} but workdir={workdir!r} holds the finished results of this run at '
      f'rounds={results["rounds"]}; set rounds>={results["rounds"]} to report or extend it, or use a new workdir'
    )


_RESTART = 'to start afresh in this workdir, move its checkpoints/, results.json and config.json out of it'


def _records(workdir: str):
  """``(where, run_json)`` of each record of the run a workdir holds."""
  directory = os.path.join(workdir, 'checkpoints')
  newest = checkpoint.newest_meta(directory)
  if newest is not None and RECORD in newest[1]:
    yield f'checkpoints/{newest[0]}', newest[1][RECORD]
  elif checkpoint.saved_steps(directory) and not os.path.exists(os.path.join(workdir, 'config.json')):
    raise ConfigError(
      f'workdir={workdir!r} holds checkpoints that record no run (an older adjax wrote them, or their metadata is '
      f'damaged) and no config.json: nothing shows which run they are of; use a new workdir, or {_RESTART}'
    )
  results = stored_results(workdir)
  if results is not None and 'config' in results:
    points = {'sweep': [s.get('overrides') for s in results['sweep']]} if 'sweep' in results else {}
    yield 'results.json', {**results['config'], **points, **results.get('identity', {})}
  path = os.path.join(workdir, 'config.json')
  if os.path.exists(path):
    yield 'config.json', workdir_lib.read_json(path, f'workdir={workdir!r}')


def stored_results(workdir: str) -> dict | None:
  """A workdir's ``results.json``, or None if it has none or it is unreadable (a run writes it again)."""
  path = os.path.join(workdir, 'results.json')
  if not os.path.exists(path):
    return None
  try:
    return workdir_lib.read_json(path, f'workdir={workdir!r}')
  except ConfigError as e:
    logging.warning('%s', e)
    return None


def _compare(workdir: str, where: str, saved: dict, now: dict, identity: dict) -> None:
  # A record written before adjax recorded identities is checked on its config alone.
  ignored = (*fields.names(resumable=True), *(k for k in identity if k not in saved))
  changed = sorted(k for k in set(saved) | set(now) if k not in ignored and saved.get(k) != now.get(k))
  if changed:
    details = [f'{path}: {a!r} -> {b!r}' for k in changed for path, a, b in differences(k, saved.get(k), now.get(k))]
    shown = '; '.join(details[:4]) + ('; …' if len(details) > 4 else '')
    raise ConfigError(
      f'workdir={workdir!r} holds another run (its {where} differs in {", ".join(changed)}: {shown}); '
      f'use a new workdir, or the same config to resume; {_RESTART}'
    )


def differences(path: str, a, b):
  """``(dotted path, saved, now)`` of every leaf where two JSON values differ."""
  if isinstance(a, dict) and isinstance(b, dict):
    for k in sorted(set(a) | set(b)):
      if a.get(k) != b.get(k):
        yield from differences(f'{path}.{k}', a.get(k), b.get(k))
  else:
    yield path, a, b


def describe(obj) -> str | dict:
  """A stable description of a network or optimizer (the same in every process): its type and fields.

  Linen modules are dataclasses: each field is described (callables by
  their qualified name, submodules recursively). Other objects by their type
  and ``repr`` with memory addresses removed.
  """
  if callable(obj) and not dataclasses.is_dataclass(obj):
    return f'{getattr(obj, "__module__", "")}.{getattr(obj, "__qualname__", type(obj).__qualname__)}'
  if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
    described = {
      f.name: describe(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.name not in ('parent', 'name')
    }
    return {'type': f'{type(obj).__module__}.{type(obj).__qualname__}', **described}
  if isinstance(obj, tuple | list):
    return [describe(o) for o in obj]
  return re.sub(r' at 0x[0-9a-f]+', '', repr(obj))


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


def computation(closed_jaxprs, arrays=()) -> str:
  """A digest of what traced programs compute: each jaxpr's text, and the dtype, shape and bytes of its constants
  and of ``arrays`` (a constant written into the code is a literal or a constant; PRNG keys by their data)."""
  h = hashlib.sha256()
  for closed in closed_jaxprs:
    h.update(str(closed.jaxpr).encode())
  for const in [*(c for closed in closed_jaxprs for c in closed.consts), *arrays]:
    key = jnp.issubdtype(jnp.result_type(const), jax.dtypes.prng_key)
    a = np.ascontiguousarray(np.asarray(jax.random.key_data(const) if key else const))
    h.update(f'{a.dtype}{a.shape}'.encode() + a.tobytes())
  return h.hexdigest()[:16]


def describe_optimizer(opt, params=None) -> dict:
  """An optax transformation's identity: digests of its initial state on ``params`` (zeros shaped like a
  player's parameters; a probe tree by default: injected hyperparameters are values there) and of the jaxpr of its
  update, constants included (a learning rate or a momentum written into the code is a literal or a constant).
  Its bytes are those recorded since optimizers had identities (so runs with them still resume)."""
  params = _PROBE_PARAMS if params is None else params
  state = opt.init(params)
  closed = jax.make_jaxpr(opt.update)(params, state, params)
  h = hashlib.sha256(str(closed.jaxpr).encode())
  for leaf in [*closed.consts, *jax.tree.leaves(state)]:
    h.update(np.ascontiguousarray(np.asarray(leaf)).view(np.uint8))
  return {'type': describe(opt.update), 'computation': h.hexdigest()[:16]}


def programs(game: game_lib.Game, split: game_lib.Split) -> str:
  """``computation`` of a game's programs on ``split``: pretraining, the frozen players' pretraining, a round.
  Equal digests compute the same thing; the state's hyperparameters (swept values) are inputs, not in them."""
  state = game_lib.init_state(game, jax.random.key(0), split)
  data = game_lib.as_data(split)
  closed = [jax.make_jaxpr(functools.partial(rounds.pretrain, game))(state, data)]
  if game.method.frozen:
    closed.append(jax.make_jaxpr(functools.partial(rounds.pretrain, game, frozen=True))(state, data))
  closed.append(jax.make_jaxpr(functools.partial(rounds.play_round, game))(state, data))
  return computation(closed)


def example(splits: data_lib.Splits, player: str):
  """One example as ``player`` sees it, ``[1, ...]`` (an array, or image and text)."""
  return jax.tree.map(lambda a: a[:1], game_lib.view(player, splits.pool))


def identity(source: data_lib.Source, game: game_lib.Game, splits: data_lib.Splits, optimizers: dict) -> dict:
  """What a run's results, resume check and teacher cache record beyond its config: the data's fingerprint, the
  method's declaration, every player's network (built-in ones too: their code may change) and the optimizers
  given from Python (each traced on its player's parameter shapes)."""
  out = {
    'data': source.identity(),
    'method': describe(game.method),
    'nets': {p: describe_net(game.nets[p], example(splits, p)) for p in game.method.present},
    'optimizers': {},
  }
  for player, opt in sorted((p, o) for p, o in optimizers.items() if p in game.method.present):
    x = jax.tree.map(jnp.zeros_like, example(splits, player))
    params = jax.tree.map(np.zeros_like, jax.device_get(game.nets[player].init(jax.random.key(0), x)))
    try:
      out['optimizers'][player] = describe_optimizer(opt, params)
    except Exception as e:
      raise ConfigError(
        f"optimizers[{player!r}] fails on the {player}'s parameters "
        f'({type(e).__name__}: {str(e).splitlines()[0][:200]})'
      ) from None
  return out
