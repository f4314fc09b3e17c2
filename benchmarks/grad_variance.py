"""Gradient variance of the adversarial and distillation terms (the paper's Figs. 5, 10) and their cosine (Fig. 7).

  python -m benchmarks.grad_variance --out=DIR [--rounds=20 --every=5 --draws=64 --config.n_train=100]

Trains ADIM (or ADIB) members as one vmapped program: the config's weights,
then ω_s swept over ``--omegas`` (the others sharing the rest) and ω_t swept
likewise. Every ``--every`` rounds, at the members' current parameters, it
draws ``--draws`` independent gradients (fresh minibatch and noise each) of
each unweighted term of the student's and the teacher's loss, for every
estimator in ``--estimators``, all in one compiled program per estimator
(members one after another, ``--draws_per_chunk`` draws vmapped; no host
round trip inside; timed to ``block_until_ready``). Writes
``DIR/grad_variance.json`` (device kind, draws per second, per round log10
mean per-parameter variance and cosine of the expected gradients) and
``DIR/fig5_student.png``, ``DIR/fig10_teacher.png`` (log10 variance per round,
the config's member) and ``DIR/fig7.png`` (cosine, mean over rounds, against
ω_s for the student and ω_t for the teacher).
"""

import json
import os
import sys
import time

from absl import app
from absl import flags
import jax
import ml_collections
from ml_collections import config_flags
import numpy as np

from adjax import config as config_lib
from adjax import data as data_lib
from adjax import estimators
from adjax import game as game_lib
from adjax import gradients
from adjax import methods as methods_lib
from adjax import rounds
from adjax import sweeps
from adjax.run import members as members_lib

_OUT = flags.DEFINE_string('out', None, 'Output directory.', required=True)
_ROUNDS = flags.DEFINE_integer('rounds', 20, 'Rounds of training.')
_EVERY = flags.DEFINE_integer('every', 5, 'Measure at round 0 and every this many rounds.')
_DRAWS = flags.DEFINE_integer('draws', 64, 'Independent gradient draws per measurement.')
_CHUNK = flags.DEFINE_integer('draws_per_chunk', 16, 'Draws vmapped at once (memory: this many gradients).')
_OMEGAS = flags.DEFINE_list('omegas', ['0.1', '0.3', '0.5', '0.7', '0.9'], 'ω_s (and ω_t) values for Fig. 7.')
_ESTIMATORS = flags.DEFINE_list(
  'estimators', [n for n, e in estimators.ESTIMATORS.items() if e.estimates_gradient], 'Gradient estimators to measure.'
)
_CONFIG = config_flags.DEFINE_config_file('config', 'experiments/configs/mnist.py', 'Base config.')

ROLES = ('student', 'teacher')


def members(config: ml_collections.ConfigDict, omegas: list[float]) -> list[tuple[str | None, dict]]:
  """``(axis, point)``: the config itself, then ω_s and ω_t each swept over ``omegas``."""
  fields = {'game.omega_s': omegas, 'game.omega_t': omegas}
  return [(None, {}), *sweeps.sweep_points(fields, 'axes', config.method)]


def check(config, draws: int, per_chunk: int, names: list[str]) -> None:
  method = methods_lib.METHODS[config.method]
  if method.discriminator is None or method.distill != 'kd' or 'teacher' not in method.players:
    raise config_lib.ConfigError(f'method={config.method} has no adversarial and distillation terms; use adim or adib')
  if per_chunk < 2 or draws % per_chunk:
    raise config_lib.ConfigError(f'--draws={draws} must be a multiple of --draws_per_chunk={per_chunk} (>= 2)')
  for name in names:
    if name not in estimators.ESTIMATORS:
      raise config_lib.ConfigError(f'--estimators: {name!r} is not one of {", ".join(estimators.ESTIMATORS)}')


def plot(results: dict, out: str) -> None:
  import matplotlib

  matplotlib.use('Agg')
  import matplotlib.pyplot as plt

  rounds = [m['round'] for m in results['measurements']]
  for role, name in (('student', 'fig5_student.png'), ('teacher', 'fig10_teacher.png')):
    fig, ax = plt.subplots(figsize=(6, 4))
    for e in results['estimators']:
      ys = [m['stats'][e][role]['adversarial_log10_variance'][0] for m in results['measurements']]
      ax.plot(rounds, ys, '-o', label=f'adversarial ({e})')
    e0 = results['estimators'][0]
    ys = [m['stats'][e0][role]['distillation_log10_variance'][0] for m in results['measurements']]
    ax.plot(rounds, ys, 'k--s', label='distillation')
    ax.set_xlabel('round')
    ax.set_ylabel('log10 mean per-parameter variance')
    ax.set_title(f'gradient w.r.t. the {role}')
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out, name), dpi=120)
    plt.close(fig)
  fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
  for ax, role, field in zip(axes, ROLES, ('game.omega_s', 'game.omega_t'), strict=True):
    idx = [i for i, (axis, _) in enumerate(results['members']) if axis == field]
    xs = [results['members'][i][1][field] for i in idx]
    for e in results['estimators']:
      ys = [np.mean([m['stats'][e][role]['cosine'][i] for m in results['measurements']]) for i in idx]
      ax.plot(xs, ys, '-o', label=e)
    ax.set_xlabel(field.split('.')[1])
    ax.set_ylabel('cosine(E∇adversarial, E∇distillation)')
    ax.set_title(role)
    ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(os.path.join(out, 'fig7.png'), dpi=120)
  plt.close(fig)


def main(argv):
  del argv
  try:
    config = config_lib.validate(ml_collections.ConfigDict(_CONFIG.value.to_dict()))
    check(config, _DRAWS.value, _CHUNK.value, _ESTIMATORS.value)
    points = members(config, [float(w) for w in _OMEGAS.value])
    configs = sweeps.check_sweep(config, [p for _, p in points])
    splits = data_lib.load(config)
  except config_lib.ConfigError as e:
    sys.exit(f'adjax: bad config: {e}')
  os.makedirs(_OUT.value, exist_ok=True)
  k = len(configs)
  train = game_lib.as_data(splits.split('train'), members=k)
  game = game_lib.build(config, splits.num_classes)
  programs = rounds.compile_fns(game)
  pretrain, play_round = programs.pretrain, programs.play_round
  state = members_lib.init_members(game, configs, splits.split('train'))
  state, _ = pretrain(state, train, False, 0)

  num_chunks = _DRAWS.value // _CHUNK.value
  measure = {}
  for e in _ESTIMATORS.value:
    g = game_lib.build(sweeps.with_overrides(config, {'game.estimator': e}), splits.num_classes)

    def one(s, d, key, g=g):
      return {r: gradients.statistics(g, s, r, d, jax.random.fold_in(key, i), num_chunks, _CHUNK.value)
              for i, r in enumerate(ROLES)}  # fmt: skip

    # Members one after another (lax.map): memory is one member's chunk of draws.
    measure[e] = jax.jit(
      lambda s, d, key, one=one: jax.lax.map(lambda si: one(si[0], {**d, 'index': si[1]}, key), (s, d['index']))
    )

  results = {
    'device_kind': jax.devices()[0].device_kind,
    'platform': jax.devices()[0].platform,
    'method': config.method,
    'n_train': config.n_train,
    'draws': _DRAWS.value,
    'estimators': _ESTIMATORS.value,
    'members': points,
    'draws_per_second': {},
    'measurements': [],
  }
  seconds = {e: 0.0 for e in _ESTIMATORS.value}
  for r in range(_ROUNDS.value + 1):
    if r % _EVERY.value == 0:
      entry = {'round': r, 'stats': {}}
      for i, e in enumerate(_ESTIMATORS.value):
        key = jax.random.fold_in(jax.random.key(config.seed + 7), r * 100 + i)
        if r == 0:  # compile outside the timed call
          jax.block_until_ready(measure[e](state, train, key))
        t0 = time.perf_counter()
        stats = jax.block_until_ready(measure[e](state, train, key))
        seconds[e] += time.perf_counter() - t0
        entry['stats'][e] = jax.tree.map(lambda a: np.asarray(a).tolist(), stats)
      results['measurements'].append(entry)
      s = entry['stats'][_ESTIMATORS.value[0]]['student']
      print(f'round {r}: student log10 var adversarial {s["adversarial_log10_variance"][0]:.3f} '
            f'distillation {s["distillation_log10_variance"][0]:.3f}', flush=True)  # fmt: skip
    if r < _ROUNDS.value:
      state, _ = play_round(state, train, None)
  count = len(results['measurements'])
  # Each call: members x roles x draws gradient draws.
  results['draws_per_second'] = {e: count * k * len(ROLES) * _DRAWS.value / seconds[e] for e in seconds}
  with open(os.path.join(_OUT.value, 'grad_variance.json'), 'w') as f:
    json.dump(results, f, indent=1)
  plot(results, _OUT.value)
  print(json.dumps({'device_kind': results['device_kind'], 'draws_per_second': results['draws_per_second']}))


if __name__ == '__main__':
  app.run(main)
