"""The paper's Table 1 protocol: methods x training sizes x seeds, with the paper's figures beside.

  python -m experiments.table1 --n_train=100,1000 --methods=all --num_seeds=10,3 --rounds=40,250 --workdir=DIR

Each (n_train, method) cell is one run of ``adjax.train`` (its seeds vmapped)
in ``DIR/n{N}/{METHOD}``; a cell whose ``results.json`` holds the same config
is reused, an unfinished one resumes from its checkpoint. Writes
``DIR/table1.md`` (student test accuracy of the student picked on validation,
mean ± std, and the paper's figure), ``DIR/table1.json`` and, per training
size, ``DIR/fig4_n{N}.png``: mean student validation accuracy per round for
each method (the paper's Fig. 4). Base config and overrides as in
``experiments.main`` (``--config.FIELD=VALUE``).
"""

import os
import sys

from absl import flags
from absl import logging
import ml_collections

from adjax import data as data_lib
from adjax import figures
from adjax import parallel
from adjax import train
from adjax import workdir as workdir_lib
from experiments import cells as cells_lib
from experiments import cli

_WORKDIR = flags.DEFINE_string('workdir', None, 'Output directory.')
flags.DEFINE_list('n_train', ['100', '1000'], 'Training-set sizes (or --config.n_train if given).')
_METHODS = flags.DEFINE_list('methods', ['all'], "Methods, or 'all' (every method with a student).")
flags.DEFINE_list('num_seeds', ['10'], 'Seeds per cell, vmapped: one count, or one per --n_train size.')
_ROUNDS = flags.DEFINE_list('rounds', [], "Rounds per cell: one count, or one per --n_train size ('' = the config's).")
_CONFIG = cli.define_config(os.path.join(os.path.dirname(__file__), 'configs', 'mnist.py'), 'Base config.')


def cell_config(base: ml_collections.ConfigDict, method: str, n_train: int, num_seeds: int, rounds: int):
  return cells_lib.cell_config(base, method, n_train, num_seeds, rounds, _WORKDIR.value)


def markdown(cells: dict, sizes: list[int], methods: list[str], dataset: str) -> str:
  head = ' | '.join(f'n={n} (adjax) | late gain | n={n} (paper)' for n in sizes)
  lines = [
    f'Student test accuracy (%) on {dataset}, picked on validation, mean ± std over seeds.',
    '',
    f'| method | {head} |',
    '|---|' + '---|---|---|' * len(sizes),
  ]
  for m in methods:
    row = []
    for n in sizes:
      r = cells.get((n, m))
      ours = cells_lib.figure(r) if r else '—'
      gain = cells_lib.late_gain(r['history']) if r else None
      paper = cells_lib.paper(m, n, dataset)
      row += [ours, '—' if gain is None else f'{gain:+.2f}', paper]
    lines.append(f'| {m} | ' + ' | '.join(row) + ' |')
  lines.append('')
  lines.append(
    '(k): seeds (a diverged seed is left out and counted). The paper selects epochs on the test set and uses the '
    'full MNIST training set as its pool.'
  )
  lines.append(
    'Late gain: mean student validation accuracy (points) over the last quarter of the rounds minus that over the '
    'quarter before; near 0 when the schedule has converged.'
  )
  return '\n'.join(lines)


def plot_curves(cells: dict, n: int, methods: list[str], path: str) -> None:
  """Mean student validation accuracy per round: every round (left) and the second half, zoomed on the methods
  within 10 points of the best (right; a collapsed method would flatten the others into one line)."""
  import matplotlib

  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  import numpy as np

  curves = {}
  for m in methods:
    if r := cells.get((n, m)):
      curves[m] = (
        np.array([h['round'] for h in r['history']]),
        100 * np.array([h[figures.history('student', 'accuracy')] for h in r['history']]),
      )
  fig, (ax, zoom) = plt.subplots(1, 2, figsize=(11, 4))
  late = {m: (r[r >= r.max() / 2], v[r >= r.max() / 2]) for m, (r, v) in curves.items()}
  best = max((np.median(v) for _, v in late.values()), default=0.0)
  near = [m for m in curves if np.median(late[m][1]) >= best - 10]
  for m, (r, v) in curves.items():
    line = ax.plot(r, v, label=m)[0]
    if m in near:
      zoom.plot(*late[m], color=line.get_color(), label=m)
  if near:
    zoom.set_ylim(min(np.percentile(late[m][1], 5) for m in near) - 0.5, max(late[m][1].max() for m in near) + 0.5)
  for a, title in ((ax, f'n_train = {n}'), (zoom, f'n_train = {n}, second half')):
    a.set_xlabel('round')
    a.set_ylabel('student validation accuracy (%)')
    a.set_title(title)
    a.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def per_size(flag: str, values: list[str], sizes: list[int]) -> dict[int, int]:
  """One integer per training size from a flag holding one value, or one per size."""
  if len(values) not in (1, len(sizes)) or not all(v.strip().isdigit() for v in values):
    sys.exit(f'adjax: --{flag}={",".join(values)} needs one count or one per --n_train size ({len(sizes)})')
  counts = [int(v) for v in values]
  return dict(zip(sizes, counts * len(sizes) if len(counts) == 1 else counts))


def main(argv):
  del argv
  logging.set_verbosity(logging.INFO)  # one progress line per round
  names = cells_lib.with_student() if _METHODS.value == ['all'] else _METHODS.value
  as_list = lambda v: v if isinstance(v, list) else [str(v)]
  sizes = [int(n) for n in as_list(cli.flag_or_config('n_train', 'n_train'))]
  seeds = per_size('num_seeds', as_list(cli.flag_or_config('num_seeds', 'num_seeds')), sizes)
  rounds = per_size('rounds', _ROUNDS.value or [str(_CONFIG.value.rounds)], sizes)
  with cli.reported():  # every cell's config, and each size against the data, is checked before anything runs
    configs = {(n, m): cell_config(_CONFIG.value, m, n, seeds[n], rounds[n]) for n in sizes for m in names}
    for n in sizes:
      data_lib.load(configs[n, names[0]])
  with cli.reported(), workdir_lib.exclusive(_WORKDIR.value):  # one table1 writer; each cell locks its own workdir
    cells = {}
    for (n, m), c in configs.items():
      workdir = os.path.join(_WORKDIR.value, f'n{n}', m)
      cells[n, m] = train.finished(workdir, c) or train.train_and_evaluate(c, workdir)
      print(f'n={n} {m}: {cells_lib.figure(cells[n, m])}', flush=True)
    if not parallel.is_writer():  # process 0 writes the table, JSON and plots
      return
    dataset = _CONFIG.value.dataset
    table = markdown(cells, sizes, names, dataset)
    print('\n' + table)
    with open(os.path.join(_WORKDIR.value, 'table1.md'), 'w') as f:
      f.write(table + '\n')
    summary = {
      f'n{n}/{m}': {
        'final': r['final'],
        'late_gain': cells_lib.late_gain(r['history']),
        'rounds': r['rounds'],
        'per_seed': [p['final'] for p in r['per_seed']],
      }
      for (n, m), r in cells.items()
    }
    workdir_lib.write_json(os.path.join(_WORKDIR.value, 'table1.json'), summary)
    for n in sizes:
      plot_curves(cells, n, names, os.path.join(_WORKDIR.value, f'fig4_n{n}.png'))


if __name__ == '__main__':
  cli.run(main)
