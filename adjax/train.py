"""From a config to ``results.json``: data, game, pretraining, rounds, selection on validation."""

import dataclasses
import hashlib
import json
import os
import time

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from adjax import checkpoint
from adjax import config as config_lib
from adjax import data as data_lib
from adjax import game as game_lib
from adjax import metric_writer
from adjax import sweeps

GENERATORS = ('student', 'teacher')
# Fields a resumed run may change: more rounds continue the same trajectory.
RESUMABLE_CHANGES = ('rounds',)
# Fields that say where things are kept, not what is computed: a cached teacher is found by a hash of what
# trains it, so a workdir moved with its teacher cache (or pointed at a copy) is still the same run.
PLACE_FIELDS = ('teacher_cache',)


def _run_json(config: ml_collections.ConfigDict, sweep: list[dict] | None) -> dict:
  """What ``config.json`` holds: the config, and the sweep points if any."""
  return {**json.loads(config.to_json()), **({'sweep': sweep} if sweep else {})}


def _what_is_computed(config_json: dict) -> dict:
  return {k: v for k, v in config_json.items() if k not in PLACE_FIELDS}


def _check_resume(workdir: str, config: ml_collections.ConfigDict, sweep: list[dict] | None) -> None:
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    return
  with open(path) as f:
    saved = json.load(f)
  now = _run_json(config, sweep)
  ignored = RESUMABLE_CHANGES + PLACE_FIELDS
  changed = sorted(k for k in set(saved) | set(now) if k not in ignored and saved.get(k) != now.get(k))
  if changed:
    raise config_lib.ConfigError(
      f'workdir={workdir!r} holds a run with a different config (fields: {", ".join(changed)}); '
      'use a new workdir, or the same config to resume'
    )


def finished(workdir: str, config: ml_collections.ConfigDict, sweep: list[dict] | None = None) -> dict | None:
  """The results in ``workdir`` if that run finished with exactly this config (and sweep), else None."""
  path = os.path.join(workdir, 'results.json')
  if not os.path.exists(path):
    return None
  with open(path) as f:
    results = json.load(f)
  same = _what_is_computed(results['config']) == _what_is_computed(json.loads(config.to_json())) and [
    s.get('overrides') for s in results.get('sweep', [])
  ] == (sweep or [])
  return results if same else None


def _write_json(path: str, obj) -> None:
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    json.dump(obj, f, indent=1)
  os.replace(tmp, path)


def _evaluate(accuracy, params: dict, split: dict) -> dict[str, np.ndarray | None]:
  """Per-member accuracies ``[S]`` of each generator in ``params`` on a split (each sees its own view)."""
  return {
    p: np.asarray(accuracy(p, params[p], game_lib.view(p, split), split['y'])) if p in params else None
    for p in GENERATORS
  }


def _params(state) -> dict:
  return {p: state[p]['params'] for p in GENERATORS if p in state}


def _round_scalars(metrics: dict, val: dict, seed_index: int) -> dict[str, float]:
  """One seed's scalars of a round: validation accuracies, tau, each player's mean loss/reward/grad norm."""
  scalars = {f'{p}_val_accuracy': float(v[seed_index]) for p, v in val.items() if v is not None}
  if 'tau' in metrics:
    scalars['tau'] = float(metrics['tau'][seed_index])
  for player, m in metrics.items():
    if isinstance(m, dict):
      for name, value in m.items():
        scalars[f'{player}_{name}'] = float(value[seed_index])
  return scalars


def _select(pick_S: np.ndarray, new, old):
  """Per member: ``new``'s arrays where ``pick_S``, else ``old``'s (leading member axis)."""
  pick = jnp.asarray(pick_S)
  return jax.tree.map(lambda n, o: jnp.where(pick.reshape(-1, *[1] * (n.ndim - 1)), n, o), new, old)


def _stack(trees):
  return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


def init_members(game: game_lib.Game, configs: list[ml_collections.ConfigDict], data: dict):
  """Each config's initial state (its seed's key, its swept values), stacked on a leading member axis."""
  return _stack([game_lib.init_state(game, jax.random.key(c.seed), data, c) for c in configs])


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


def check_sweep(config: ml_collections.ConfigDict, sweep: list[dict]) -> list[ml_collections.ConfigDict]:
  """Each sweep point's validated config; a field that would change the compiled program is refused."""
  configs = []
  for point in sweep:
    for field in point:
      sweeps.check_field(field)
    configs.append(config_lib.validate(with_overrides(config, point)))
  return configs


def _load_members(configs: list[ml_collections.ConfigDict]) -> data_lib.Splits:
  """Each member's splits, stacked on a leading axis (seeds draw different subsamples; a seed's are loaded once)."""
  by_seed = {}
  for c in configs:
    if c.seed not in by_seed:
      by_seed[c.seed] = data_lib.load(c)
  per_member = [by_seed[c.seed] for c in configs]
  names = [f.name for f in dataclasses.fields(data_lib.Splits) if f.name != 'num_classes']
  fields = {f: np.stack([getattr(sp, f) for sp in per_member]) for f in names if getattr(per_member[0], f) is not None}
  return data_lib.Splits(**fields, num_classes=per_member[0].num_classes)


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


# Fields that determine a frozen teacher's training: runs that agree on them share it.
TEACHER_FIELDS = (
  'dataset',
  'data_file',
  'tfds',
  'n_train',
  'n_val',
  'teacher',
  'batch_size',
  'augment',
  'subtract_pixel_mean',
  'eval_chunk',
)


def teacher_cache_path(config: ml_collections.ConfigDict, seed: int) -> str:
  fields = {k: config.to_dict()[k] for k in TEACHER_FIELDS}
  fields.update(seed=seed, steps=config.pretrain.frozen_teacher, segments=game_lib.FROZEN_SEGMENTS)
  digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]
  return os.path.join(config.teacher_cache, f'teacher_{digest}')


def _frozen_players(configs, game, state, train, val_split, pretrain, accuracy):
  """Trains the frozen teacher of a two-phase baseline, or loads it from ``teacher_cache``.

  It trains in ``game.FROZEN_SEGMENTS`` segments; each member keeps its
  parameters with the best validation accuracy after any segment.
  """
  if not game.method.frozen:
    return state
  paths = [teacher_cache_path(c, c.seed) for c in configs] if configs[0].teacher_cache else []
  if paths and all(os.path.isdir(p) for p in paths):
    like = jax.tree.map(lambda a: a[0], state['teacher']['params'])
    state['teacher'] = dict(state['teacher'], params=_stack([checkpoint.load_tree(p, like) for p in paths]))
    logging.info('loaded the frozen teacher from %s', configs[0].teacher_cache)
    return state
  best, best_val = None, None
  for segment in range(game_lib.FROZEN_SEGMENTS):
    state, _ = pretrain(state, train, True, segment)
    val = _evaluate(accuracy, {'teacher': state['teacher']['params']}, val_split)['teacher']
    if best is None:
      best, best_val = jax.tree.map(jnp.copy, state['teacher']['params']), val
      continue
    best = _select(val > best_val, state['teacher']['params'], best)
    best_val = np.maximum(val, best_val)
  logging.info('frozen teacher: best validation accuracy %s', np.round(best_val, 4))
  state['teacher'] = dict(state['teacher'], params=best)
  for i, path in enumerate(paths):
    if not os.path.isdir(path):
      checkpoint.save_tree(path, jax.tree.map(lambda a: a[i], best))
  return state


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, sweep: list[dict] | None = None) -> dict:
  """Trains ``num_seeds`` seeds, times each ``sweep`` point, as one vmapped program; resumes from ``workdir``.

  ``sweep``: a list of points, each ``{dotted field: value}`` over
  ``game.SWEEPABLE`` fields (e.g. ``[{'game.nu': 0.1}, {'game.nu': 1.0}]``).
  Members are ordered point-major: point 0's seeds, then point 1's, …
  """
  config = config_lib.validate(config)
  points = check_sweep(config, sweep) if sweep else [config]
  seeds = [config.seed + i for i in range(config.num_seeds)]
  configs = [with_overrides(c, {'seed': seed}) for c in points for seed in seeds]
  overrides = [point for point in (sweep or [{}]) for _ in seeds]
  _check_resume(workdir, config, sweep)
  splits = _load_members(configs)
  game = game_lib.build(config, splits.num_classes)
  pretrain, play_round, accuracy = game_lib.compile_fns(game)
  train, val_split = (jax.tree.map(jnp.asarray, splits.split(name)) for name in ('train', 'val'))

  os.makedirs(workdir, exist_ok=True)
  if not os.path.exists(os.path.join(workdir, 'config.json')):
    _write_json(os.path.join(workdir, 'config.json'), _run_json(config, sweep))
  ckpt = checkpoint.Checkpoints(os.path.join(workdir, 'checkpoints'))
  writer = metric_writer.MetricWriter(os.path.join(workdir, 'tensorboard'))
  num_members = len(configs)

  def tag(i):
    names = [f'{k}={v:g}' for k, v in overrides[i].items()] + ([f'seed_{configs[i].seed}'] if len(seeds) > 1 else [])
    return ''.join(n + '/' for n in names)

  first = jax.tree.map(lambda a: a[0], train)
  state = init_members(game, configs, first)
  step = ckpt.latest_step()
  if step is None:
    t0 = time.perf_counter()
    state = _frozen_players(configs, game, state, train, val_split, pretrain, accuracy)
    state, metrics = pretrain(state, train, False)
    val = _evaluate(accuracy, _params(state), val_split)
    best = {p: jax.tree.map(jnp.copy, state[p]['params']) for p in GENERATORS if p in state}
    metrics = jax.device_get(metrics)
    meta = {
      'history': [[{'round': 0, **_round_scalars(metrics, val, i)}] for i in range(num_members)],
      'best': [{p: {'round': 0, 'val_accuracy': float(val[p][i])} for p in best} for i in range(num_members)],
      'seconds': [time.perf_counter() - t0],
    }
    for i in range(num_members):
      writer.write_scalars(0, {tag(i) + k: v for k, v in meta['history'][i][0].items()})
    ckpt.save(0, {'state': state, 'best': best}, meta)
  else:
    like = {'state': state, 'best': {p: state[p]['params'] for p in GENERATORS if p in state}}
    try:
      arrays, meta = ckpt.restore(step, like)
    except ValueError as e:  # orbax: the saved tree is not this state's (another adjax version wrote it)
      raise config_lib.ConfigError(
        f"workdir={workdir!r} holds a round-{step} checkpoint whose arrays do not match this run's state "
        f'({str(e).splitlines()[0][:200]}); it was written by another version of adjax: use a new workdir'
      ) from None
    state, best = arrays['state'], arrays['best']
    logging.info('resumed %s at round %d', workdir, step)

  for r in range(int(state['round'][0]), config.rounds):
    t0 = time.perf_counter()
    state, metrics = play_round(state, train)
    # A frozen player's accuracy is that of round 0: it is not evaluated again.
    trained = {p: v for p, v in _params(state).items() if p not in game.method.frozen}
    val = _evaluate(accuracy, trained, val_split)
    for p in game.method.frozen:
      val[p] = np.array([h[0][f'{p}_val_accuracy'] for h in meta['history']], np.float32)
    metrics = jax.device_get(metrics)
    for i in range(num_members):
      scalars = {'round': r + 1, **_round_scalars(metrics, val, i)}
      if not all(np.isfinite(v) for v in scalars.values()):
        raise FloatingPointError(f'non-finite metrics in round {r + 1}, member {tag(i) or 0}: {scalars}')
      meta['history'][i].append(scalars)
      writer.write_scalars(r + 1, {tag(i) + k: v for k, v in scalars.items()})
    for p in best:
      improved_S = np.array([val[p][i] > meta['best'][i][p]['val_accuracy'] for i in range(num_members)])
      for i in np.flatnonzero(improved_S):
        meta['best'][i][p] = {'round': r + 1, 'val_accuracy': float(val[p][i])}
      if improved_S.any():
        best[p] = _select(improved_S, state[p]['params'], best[p])
    meta['seconds'].append(time.perf_counter() - t0)
    metric_writer.log_round(r + 1, config.rounds, [h[-1] for h in meta['history']], meta['seconds'][-1])
    ckpt.save(r + 1, {'state': state, 'best': best}, meta)

  test_split = jax.tree.map(jnp.asarray, splits.split('test'))
  selected, last = _evaluate(accuracy, best, test_split), _evaluate(accuracy, _params(state), test_split)
  test = {p: (selected[p], last[p]) for p in best}
  per_seed = []
  for i, c in enumerate(configs):
    final = {p: None for p in GENERATORS}
    for p in best:
      final[p] = {
        'test_accuracy': float(test[p][0][i]),
        'val_accuracy': meta['best'][i][p]['val_accuracy'],
        'selected_round': meta['best'][i][p]['round'],
        'last_test_accuracy': float(test[p][1][i]),
        'last_val_accuracy': meta['history'][i][-1][f'{p}_val_accuracy'],
      }
    per_seed.append(
      {'seed': c.seed, **({'overrides': overrides[i]} if sweep else {}), 'final': final, 'history': meta['history'][i]}
    )
  results = {
    'method': config.method,
    'dataset': config.dataset,
    'n_train': config.n_train,
    'n_val': int(splits.y_val.shape[-1]),
    'n_test': int(splits.y_test.shape[-1]),
    'seed': config.seed,
    'num_seeds': len(seeds),
    'rounds': config.rounds,
    'seconds_per_round': meta['seconds'],
    # One seed: its figures; several: mean and std over seeds (each member's under per_seed).
    **_group(per_seed, len(seeds), sweep),
    'per_seed': per_seed,
    'config': json.loads(config.to_json()),
  }
  _write_json(os.path.join(workdir, 'results.json'), results)
  writer.close()
  ckpt.close()
  return results


def _group(per_seed: list[dict], num_seeds: int, sweep: list[dict] | None) -> dict:
  """``final`` and ``history`` over the seeds of a run; for a sweep, ``sweep``: those of each point."""
  groups = []
  for j in range(len(per_seed) // num_seeds):
    members = per_seed[j * num_seeds : (j + 1) * num_seeds]
    groups.append(
      {
        'final': members[0]['final'] if num_seeds == 1 else _summary([m['final'] for m in members]),
        'history': members[0]['history'] if num_seeds == 1 else _mean_history(members),
      }
    )
  if not sweep:
    return groups[0]
  return {'sweep': [{'overrides': point, **group} for point, group in zip(sweep, groups)]}


def _mean_history(per_seed: list[dict]) -> list[dict]:
  """Per round, the mean over seeds of each scalar."""
  rounds = zip(*(s['history'] for s in per_seed))
  return [{k: float(np.mean([h[k] for h in hs])) for k in hs[0]} for hs in rounds]
