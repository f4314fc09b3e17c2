"""The two-phase baselines' frozen teacher (DISTN, MIMIC, NOISY): trained first, in segments with selection on
validation, or loaded from ``teacher_cache`` under a digest of all that trains it."""

import hashlib
import json
import os

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from adjax import checkpoint
from adjax import fields
from adjax import parallel
from adjax import rounds
from adjax import workdir as workdir_lib
from adjax.run import members as members_lib
from adjax.run import results as results_lib


def cache_path(config: ml_collections.ConfigDict, seed: int, identity: dict) -> str:
  """Where the frozen teacher of ``config``'s ``seed`` is cached: a digest of all that trains it, data included.

  Every config field declared to train the teacher (``adjax.fields``; a
  field not declared counts) is in it, so a field unknown here makes a cache
  miss (the teacher is trained again), never a stale teacher. A field
  declared ``added`` enters only when set away from its default: the
  teachers cached before it existed stay valid.
  """
  declared = fields.fields()
  at_default = lambda name, value: name in declared and declared[name].added and value == declared[name].default
  key = {n: v for n, v in fields.computed(config, teacher=False).items() if not at_default(n, v)}
  key.update(
    seed=seed,
    segments=rounds.FROZEN_SEGMENTS,
    data=identity['data']['fingerprint'],
    net=identity['nets'].get('teacher'),
    optimizer=identity['optimizers'].get('teacher'),
  )
  digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
  return os.path.join(config.teacher_cache, f'teacher_{digest}')


def _load(paths: list[str], state, members: members_lib.Members):
  """``state`` with the cached teachers, or None when a cache entry is missing or unusable (set aside)."""
  # Every decision is taken by all processes together: one that loads while another trains would hang both.
  if not paths or parallel.any_process(not all(os.path.isdir(p) for p in paths)):
    return None
  like = jax.tree.map(lambda a: a[0], members.get(state['teacher']['params']))
  try:
    trees, error = [checkpoint.load_tree(p, like) for p in paths], None
  except (checkpoint.Damaged, checkpoint.OtherLayout) as e:
    trees, error = None, e
  if not parallel.any_process(error is not None):
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)
    logging.info('loaded the frozen teacher from %s', os.path.dirname(paths[0]))
    return dict(state, teacher=dict(state['teacher'], params=members.put(stacked)))
  logging.warning('cached teacher unusable (%s); training it again', error or 'in another process')
  for path in paths if parallel.is_writer() else []:
    workdir_lib.move_aside(path, path + '.damaged')
  return None


def frozen(run, state, members: members_lib.Members, programs: rounds.Programs, metric: str):
  """``state`` with the frozen teacher of a two-phase baseline trained (or loaded from ``teacher_cache``).

  It trains in ``rounds.FROZEN_SEGMENTS`` segments; each member keeps its
  parameters with the best validation ``metric`` after any segment.
  """
  if not run.setup.game.method.frozen:
    return state
  paths = [cache_path(c, c.seed, run.identity) for c in run.setup.configs] if run.setup.config.teacher_cache else []
  loaded = _load(paths, state, members)
  if loaded is not None:
    return loaded
  best, best_val = None, None
  train, val_split = members.data('train'), members.data('val')
  for segment in range(rounds.FROZEN_SEGMENTS):
    state, _ = programs.pretrain(state, train, True, segment)
    teacher = {'teacher': state['teacher']['params']}
    val = results_lib.evaluate(programs.accuracy, teacher, val_split, members)['teacher'][metric]
    if best is None:
      best, best_val = jax.tree.map(jnp.copy, state['teacher']['params']), val
      continue
    best = members.select(val > best_val, state['teacher']['params'], best)
    best_val = np.maximum(val, best_val)
  logging.info('frozen teacher: best validation %s %s', metric, np.round(best_val, 4))
  state['teacher'] = dict(state['teacher'], params=best)
  host = members.get(best)
  for i, path in enumerate(paths if parallel.is_writer() else []):
    if not os.path.isdir(path):
      checkpoint.save_tree(path, jax.tree.map(lambda a: a[i], host))
  return state
