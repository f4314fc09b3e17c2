"""From a config to ``results.json``: data, game, pretraining, rounds, selection on validation."""

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

GENERATORS = ('student', 'teacher')
# Fields a resumed run may change: more rounds continue the same trajectory.
RESUMABLE_CHANGES = ('rounds',)


def _check_resume(workdir: str, config: ml_collections.ConfigDict) -> None:
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    return
  with open(path) as f:
    saved = json.load(f)
  now = json.loads(config.to_json())
  changed = sorted(k for k in set(saved) | set(now) if k not in RESUMABLE_CHANGES and saved.get(k) != now.get(k))
  if changed:
    raise config_lib.ConfigError(
      f'workdir={workdir!r} holds a run with a different config (fields: {", ".join(changed)}); '
      'use a new workdir, or the same config to resume'
    )


def _write_json(path: str, obj) -> None:
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    json.dump(obj, f, indent=1)
  os.replace(tmp, path)


def _evaluate(accuracy, state, x, y) -> dict[str, float | None]:
  return {p: float(accuracy(p, state[p]['params'], x, y)) if p in state else None for p in GENERATORS}


def _round_scalars(metrics: dict, val: dict) -> dict[str, float]:
  scalars = {f'{p}_val_accuracy': v for p, v in val.items() if v is not None}
  if 'tau' in metrics:
    scalars['tau'] = float(metrics['tau'])
  for player, m in metrics.items():
    if isinstance(m, dict):
      for name, value in m.items():
        scalars[f'{player}_{name}'] = float(value)
  return scalars


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains one run, checkpointing each round; resumes from ``workdir`` if it holds one."""
  config = config_lib.validate(config)
  _check_resume(workdir, config)
  splits = data_lib.load(config)
  game = game_lib.build(config, splits.num_classes)
  pretrain, play_round, accuracy = game_lib.compile_fns(game)
  train = {'x': jnp.asarray(splits.x_train), 'y': jnp.asarray(splits.y_train)}
  x_val, y_val = jnp.asarray(splits.x_val), jnp.asarray(splits.y_val)

  os.makedirs(workdir, exist_ok=True)
  if not os.path.exists(os.path.join(workdir, 'config.json')):
    _write_json(os.path.join(workdir, 'config.json'), json.loads(config.to_json()))
  ckpt = checkpoint.Checkpoints(os.path.join(workdir, 'checkpoints'))
  writer = metric_writer.MetricWriter(os.path.join(workdir, 'tensorboard'))

  state = game_lib.init_state(game, jax.random.key(config.seed), train['x'])
  step = ckpt.latest_step()
  if step is None:
    t0 = time.perf_counter()
    state, metrics = pretrain(state, train)
    val = _evaluate(accuracy, state, x_val, y_val)
    best = {p: jax.tree.map(jnp.copy, state[p]['params']) for p in GENERATORS if p in state}
    meta = {
      'history': [{'round': 0, 'seconds': time.perf_counter() - t0, **_round_scalars(metrics, val)}],
      'best': {p: {'round': 0, 'val_accuracy': val[p]} for p in best},
    }
    writer.write_scalars(0, _round_scalars(metrics, val))
    ckpt.save(0, {'state': state, 'best': best}, meta)
  else:
    like = {'state': state, 'best': {p: state[p]['params'] for p in GENERATORS if p in state}}
    arrays, meta = ckpt.restore(step, like)
    state, best = arrays['state'], arrays['best']
    logging.info('resumed %s at round %d', workdir, step)

  for r in range(int(state['round']), config.rounds):
    t0 = time.perf_counter()
    state, metrics = play_round(state, train)
    val = _evaluate(accuracy, state, x_val, y_val)
    scalars = _round_scalars(jax.device_get(metrics), val)
    if not all(np.isfinite(v) for v in scalars.values()):
      raise FloatingPointError(f'non-finite metrics in round {r + 1}: {scalars}')
    for p in best:
      if val[p] > meta['best'][p]['val_accuracy']:
        best[p] = jax.tree.map(jnp.copy, state[p]['params'])
        meta['best'][p] = {'round': r + 1, 'val_accuracy': val[p]}
    seconds = time.perf_counter() - t0
    meta['history'].append({'round': r + 1, 'seconds': seconds, **scalars})
    writer.write_scalars(r + 1, scalars)
    metric_writer.log_round(r + 1, config.rounds, scalars, seconds)
    ckpt.save(r + 1, {'state': state, 'best': best}, meta)

  x_test, y_test = jnp.asarray(splits.x_test), jnp.asarray(splits.y_test)
  final = {}
  for p in GENERATORS:
    if p not in best:
      final[p] = None
      continue
    final[p] = {
      'test_accuracy': float(accuracy(p, best[p], x_test, y_test)),
      'val_accuracy': meta['best'][p]['val_accuracy'],
      'selected_round': meta['best'][p]['round'],
      'last_test_accuracy': float(accuracy(p, state[p]['params'], x_test, y_test)),
      'last_val_accuracy': meta['history'][-1][f'{p}_val_accuracy'],
    }
  results = {
    'method': config.method,
    'dataset': config.dataset,
    'n_train': config.n_train,
    'n_val': int(splits.y_val.size),
    'n_test': int(splits.y_test.size),
    'seed': config.seed,
    'rounds': config.rounds,
    'final': final,
    'history': meta['history'],
    'config': json.loads(config.to_json()),
  }
  _write_json(os.path.join(workdir, 'results.json'), results)
  writer.close()
  ckpt.close()
  return results
