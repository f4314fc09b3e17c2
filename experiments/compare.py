"""Trains several methods over several seeds and prints a table of student test accuracy.

The README's main command:
  python -m experiments.compare --workdir=/tmp/adjax-compare

Each method is one run of ``adjax.train`` in ``WORKDIR/METHOD`` with its seeds
vmapped in one program (resumed if it is there); the table gives the test
accuracy of the student picked on validation and of the last student, mean ±
std over seeds, and is also written to ``WORKDIR/table.md`` and
``WORKDIR/summary.json``.
"""

import json
import os
import sys
import time

from absl import flags
from absl import logging
import ml_collections
import numpy as np

from adjax import config as config_lib
from adjax import figures
from adjax import parallel
from adjax import train
from experiments import cli

_WORKDIR = flags.DEFINE_string('workdir', None, 'Output directory.')
_METHODS = flags.DEFINE_list('methods', ['student', 'ngan', 'adim'], 'Methods to compare.')
flags.DEFINE_integer('num_seeds', 3, 'Seeds per method (default: 3, or --config.num_seeds if given).')
flags.DEFINE_integer('n_train', 100, 'Training examples, class-balanced (or --config.n_train if given).')
flags.DEFINE_integer('rounds', 40, 'Rounds of Algorithm 1 per run (or --config.rounds if given).')
_CONFIG = cli.define_config(
  os.path.join(os.path.dirname(__file__), 'configs', 'mnist.py'),
  'Base config; --config.FIELD=VALUE overrides it for every method.',
)


def _table(rows: dict[str, list[dict]], n_train: int) -> str:
  """``rows``: each method's per-seed results (``{'seed', 'final', 'history'}``)."""
  lines = [
    f'Student test accuracy (%) on mnist5k, n_train={n_train}, mean ± std over seeds',
    '',
    '| method | selected on validation | last round | seeds |',
    '|---|---|---|---|',
  ]
  for method, all_runs in rows.items():
    runs = [r for r in all_runs if r['final'] is not None]  # diverged seeds have no figures
    diverged = f' ({len(all_runs) - len(runs)} diverged)' if len(runs) < len(all_runs) else ''
    sel = 100 * np.array([r['final']['student'][figures.test('accuracy')] for r in runs])
    last = 100 * np.array([r['final']['student'][str(figures.Figure('accuracy', last=True))] for r in runs])
    sel_cell, last_cell = f'{sel.mean():.2f} ± {sel.std():.2f}', f'{last.mean():.2f} ± {last.std():.2f}'
    lines.append(f'| {method} | {sel_cell} | {last_cell} | {len(runs)}{diverged} |')
  return '\n'.join(lines)


def main(argv):
  del argv
  logging.set_verbosity(logging.INFO)  # one progress line per round
  configs = {}
  for method in _METHODS.value:  # every config is checked before anything runs
    c = ml_collections.ConfigDict(_CONFIG.value.to_dict())
    c.method = method
    c.num_seeds, c.n_train, c.rounds = (cli.flag_or_config(f, f) for f in ('num_seeds', 'n_train', 'rounds'))
    with cli.reported():
      config_lib.validate(c)
    configs[method] = c
  if 'teacher' in _METHODS.value:
    sys.exit('adjax: the table compares students; run method=teacher with experiments.main')
  rows: dict[str, list[dict]] = {}
  start = time.perf_counter()
  for method, c in configs.items():
    t0 = time.perf_counter()
    with cli.reported():
      rows[method] = train.train_and_evaluate(c, os.path.join(_WORKDIR.value, method))['per_seed']
    for r in rows[method]:
      if r['final'] is None:
        print(f'{method} seed {r["seed"]}: diverged in round {r["diverged_round"]}', flush=True)
        continue
      s = r['final']['student']
      print(
        f'{method} seed {r["seed"]}: student test {s[figures.test("accuracy")]:.4f} '
        f'(round {s["selected_round"]} on validation), last {s[str(figures.Figure("accuracy", last=True))]:.4f}',
        flush=True,
      )
    print(f'{method}: {len(rows[method])} seeds in {time.perf_counter() - t0:.0f}s', flush=True)
  table = _table(rows, configs[_METHODS.value[0]].n_train)
  wall = time.perf_counter() - start
  first = configs[_METHODS.value[0]]
  table += f'\n\nWall time: {wall:.0f} s, {len(configs)} methods x {first.num_seeds} seeds x {first.rounds} rounds.'
  print('\n' + table)
  if not parallel.is_writer():  # process 0 writes the table and summary
    return
  with open(os.path.join(_WORKDIR.value, 'table.md'), 'w') as f:
    f.write(table + '\n')
  summary = {m: [{'seed': r['seed'], 'final': r['final']} for r in runs] for m, runs in rows.items()}
  with open(os.path.join(_WORKDIR.value, 'summary.json'), 'w') as f:
    json.dump(summary, f, indent=1)


if __name__ == '__main__':
  cli.run(main)
