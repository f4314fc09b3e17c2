r"""The paper's Table 4 protocol on the tag task: methods x seeds (vmapped), KVOTE, the paper's figures beside.

  python -m experiments.table4 --workdir=DIR [--methods=student,teacher,distn,codis,ngan,adib,adim,adim_ngs] \
      [--num_seeds=3] [--config=experiments/configs/tags.py] [--config.FIELD=VALUE ...]

Each method is one run of ``adjax.train`` (its seeds vmapped) in
``DIR/{METHOD}``, reused when finished and resumed when not. KVOTE (kNN tag
voting on the image features, k chosen on validation) runs on each seed's
splits. Writes ``DIR/table4.md``: MAP, MRR, P@3, R@3, F@3 and NDCG@3 of the
student picked on validation P@3 (mean ± std over seeds), the teacher's MAP
and P@3 beside it, and the paper's popular-tags figures; ``DIR/table4.json``;
and ``DIR/fig9.png``: mean student validation P@3 per round (the paper's
Fig. 9).
"""

import dataclasses
import os

from absl import flags
from absl import logging
import ml_collections
import numpy as np

from adjax import config as config_lib
from adjax import data as data_lib
from adjax import figures
from adjax import kvote
from adjax import parallel
from adjax import ranking
from adjax import sweeps
from adjax import train
from adjax import workdir as workdir_lib
from adjax.run import results as results_lib
from experiments import cli

_WORKDIR = flags.DEFINE_string('workdir', None, 'Output directory.')
_METHODS = flags.DEFINE_list(
  'methods', ['student', 'teacher', 'distn', 'codis', 'ngan', 'adib', 'adim', 'adim_ngs'], 'Methods to run.'
)
_NUM_SEEDS = flags.DEFINE_integer('num_seeds', 3, 'Seeds per method, vmapped.')
_CONFIG = cli.define_config(os.path.join(os.path.dirname(__file__), 'configs', 'tags.py'), 'Base config.')

# SPEC §6, Table 4, the 200 most popular YFCC100M tags: MAP, MRR, P@3, R@3, F@3, NDCG@3.
PAPER = {
  'kvote': (0.5755, 0.5852, 0.2320, 0.4400, 0.2339, 0.5592),
  'ngan': (0.7432, 0.7555, 0.2892, 0.6676, 0.3516, 0.7465),
  'adib': (0.7787, 0.7905, 0.3047, 0.6971, 0.3678, 0.7846),
  'adim': (0.7862, 0.7980, 0.3060, 0.7032, 0.3687, 0.7914),
}


def columns(k: int) -> tuple[str, ...]:
  """The table's figures in the paper's order: MAP, MRR, P@k, R@k, F@k, NDCG@k."""
  names = ranking.names(k)
  return (names[4], names[5], *names[:4])


def cell_config(base: ml_collections.ConfigDict, method: str, num_seeds: int) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict(base.to_dict())
  c.method, c.num_seeds = method, num_seeds
  if not c.teacher_cache:  # DISTN's frozen teacher, trained once per seed
    c.teacher_cache = os.path.join(_WORKDIR.value, 'teachers')
  return config_lib.validate(c)


def _player(results: dict) -> str:
  return 'teacher' if results['method'] == 'teacher' else 'student'


def _figure(final: dict | None, name: str) -> str:
  if final is None:
    return '—'
  test = figures.Figure(name)
  return f'{final[str(test)]:.4f} ± {final.get(str(dataclasses.replace(test, std=True)), 0.0):.4f}'


def run_kvote(base: ml_collections.ConfigDict, num_seeds: int) -> dict:
  """KVOTE on each seed's splits: mean and std of each test figure, and the k picked per seed."""
  runs = []
  for seed in range(base.seed, base.seed + num_seeds):
    c = config_lib.validate(sweeps.with_overrides(base, {'seed': seed, 'method': 'student'}))
    splits = data_lib.load(c)
    runs.append(kvote.run(splits, results_lib.select_metric(c, splits), c.rank_k))
  final = {}
  for name in runs[0]['test']:
    values = np.array([r['test'][name] for r in runs])
    final[figures.test(name)] = float(values.mean())
    final[str(figures.Figure(name, std=True))] = float(values.std())
  return {'final': final, 'k': [r['k'] for r in runs]}


def markdown(cells: dict, kv: dict, dataset: str, num_seeds: int, k: int = 3) -> str:
  cols = columns(k)
  lines = [
    f'Test figures of the student picked on validation P@3 on {dataset}, mean ± std over {num_seeds} seeds; the '
    'teacher column is the MAP and P@3 of the teacher the method trained or used.',
    '',
    '| method | ' + ' | '.join(n.upper() for n in cols) + f' | teacher MAP / P@{k} |',
    '|---|' + '---|' * (len(cols) + 1),
    f'| KVOTE (k = {", ".join(map(str, kv["k"]))}) | ' + ' | '.join(_figure(kv['final'], n) for n in cols) + ' | — |',
  ]
  for m, r in cells.items():
    final = r['final'][_player(r)] if r['final'] else None
    teacher = r['final'].get('teacher') if r['final'] and m != 'teacher' else None
    t = '—' if teacher is None else f'{teacher[figures.test("map")]:.4f} / {teacher[figures.test(f"p@{k}")]:.4f}'
    diverged = len(r.get('diverged', []))
    name = m.upper() + (' (its own figures)' if m == 'teacher' else '') + (f', {diverged} diverged' if diverged else '')
    lines.append(f'| {name} | ' + ' | '.join(_figure(final, n) for n in cols) + f' | {t} |')
  lines += ['', 'The paper on YFCC100M, popular tags (Table 4, at k = 3):', '']
  lines += ['| method | ' + ' | '.join(n.upper() for n in columns(3)) + ' |', '|---|' + '---|' * len(cols)]
  for m, paper in PAPER.items():
    lines.append(f'| {m.upper()} | ' + ' | '.join(f'{v:.4f}' for v in paper) + ' |')
  return '\n'.join(lines)


def plot_curves(cells: dict, path: str, k: int = 3) -> None:
  """Mean student validation P@k per round of each method (the paper's Fig. 9; the TEACHER method's own)."""
  import matplotlib

  matplotlib.use('Agg')
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(figsize=(6, 4))
  for m, r in cells.items():
    key = figures.history(_player(r), f'p@{k}')
    ax.plot([h['round'] for h in r['history']], [h[key] for h in r['history']], label=m)
  ax.set_xlabel('round')
  ax.set_ylabel(f'student validation P@{k}')
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def main(argv):
  del argv
  logging.set_verbosity(logging.INFO)
  base = ml_collections.ConfigDict(_CONFIG.value.to_dict())
  with cli.reported():  # every config checked, and the data, before anything runs
    configs = {m: cell_config(base, m, _NUM_SEEDS.value) for m in _METHODS.value}
    splits = data_lib.load(configs[_METHODS.value[0]])
    if splits.pool['y'].ndim != 2:
      raise config_lib.ConfigError(f'dataset={base.dataset!r} has class labels; table4 needs multi-label tags')
  with cli.reported(), workdir_lib.exclusive(_WORKDIR.value):
    cells = {}
    for m, c in configs.items():
      workdir = os.path.join(_WORKDIR.value, m)
      cells[m] = train.finished(workdir, c) or train.train_and_evaluate(c, workdir)
    kv = run_kvote(configs[_METHODS.value[0]], _NUM_SEEDS.value)
    if not parallel.is_writer():
      return
    table = markdown(cells, kv, base.dataset, _NUM_SEEDS.value, base.rank_k)
    print('\n' + table)
    with open(os.path.join(_WORKDIR.value, 'table4.md'), 'w') as f:
      f.write(table + '\n')
    summary = {m: {'final': r['final'], 'per_seed': [p['final'] for p in r['per_seed']]} for m, r in cells.items()}
    workdir_lib.write_json(os.path.join(_WORKDIR.value, 'table4.json'), {**summary, 'kvote': kv})
    plot_curves(cells, os.path.join(_WORKDIR.value, 'fig9.png'), base.rank_k)


if __name__ == '__main__':
  cli.run(main)
