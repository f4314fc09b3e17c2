r"""Hyperparameter sweeps as one vmapped program: a table and plots of accuracy against each swept value.

  python -m experiments.sweep --workdir=DIR --config.method=adim \
      --sweep=game.nu=log:1e-3:1e3:7 --sweep=game.omega_s=lin:0:1:5 --combine=axes --n_train=100,1000

A ``--sweep`` is ``FIELD=VALUES`` (``adjax.sweeps``: VALUES ``a,b,c``,
``lin:START:STOP:NUM`` or ``log:START:STOP:NUM``; FIELD one of
``adjax.fields.sweepable()``, a static field such as a model is refused). Several
``--sweep`` flags combine as a grid (``--combine=grid``) or one field at a
time with the others at the config's values (``--combine=axes``, the paper's
Figs. 3 and 6). Sweeping some of ω_r, ω_s, ω_t of a method that needs them to
sum to 1 gives the remainder to the unswept ones in equal parts.

Every point times ``--config.num_seeds`` seeds is one member of a vmapped
program of at most ``--chunk`` members; a larger sweep runs in the fewest
chunks of equal size (the last padded, so all compile once), each in
``DIR/n{N}/chunk_{i}`` (reused when finished, resumed when not). Training
sizes (``--n_train``) change shapes, so each is its own program. Writes
``DIR/sweep.md``, ``DIR/sweep.json`` and ``DIR/sweep_{field}.png``: student
(and teacher) test and validation accuracy, mean over seeds, against each
swept value. A config file may carry the sweep in ``config.sweep`` (``specs``,
``combine``, ``n_train``; see ``experiments/configs/fig3.py``); flags given
here take precedence.
"""

import json
import math
import os

from absl import flags
from absl import logging
import ml_collections
import numpy as np

from adjax import config as config_lib
from adjax import data as data_lib
from adjax import figures
from adjax import parallel
from adjax import sweeps
from adjax import train
from adjax import workdir as workdir_lib
from adjax.run import identity as identity_lib
from adjax.run import results as results_lib
from experiments import cli

_WORKDIR = flags.DEFINE_string('workdir', None, 'Output directory.')
_SWEEP = flags.DEFINE_multi_string(
  'sweep', [], 'FIELD=VALUES; VALUES: a,b,c | lin:START:STOP:NUM | log:START:STOP:NUM.'
)
_COMBINE = flags.DEFINE_enum('combine', None, ['grid', 'axes'], 'How several --sweep flags combine (default: grid).')
_N_TRAIN = flags.DEFINE_list('n_train', None, 'Training-set sizes, each its own program (default: the config).')
_CHUNK = flags.DEFINE_integer(
  'chunk', 16, 'Most members (points x seeds) in one vmapped program (memory: each holds 3 players and Adam).'
)
_CONFIG = cli.define_config(os.path.join(os.path.dirname(__file__), 'configs', 'mnist.py'), 'Base config.')


def _summary(entry: dict, figure: str) -> dict:
  """A point's figures (``figure``: what its runs selected on); a point with diverged seeds says which round each
  diverged in."""
  out = {'diverged': entry['diverged']} if entry.get('diverged') else {}
  for p in figures.GENERATORS:
    final = entry['final'][p] if entry['final'] is not None else None
    if final is not None:
      for name in (figures.test(figure), figures.val(figure)):
        out[f'{p}_{name}'] = final[name]
        if f'{name}_std' in final:  # several seeds
          out[f'{p}_{name}_std'] = final[f'{name}_std']
  return out


def plot(rows: list[dict], field: str, path: str, figure: str = 'accuracy') -> None:
  import matplotlib

  matplotlib.use('Agg')
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(figsize=(6, 4))
  scale = 100 if figure == 'accuracy' else 1
  values = sorted({r['value'] for r in rows if r['value'] is not None})
  log_x = min(values) > 0 and max(values) / min(values) >= 100
  for n in sorted({r['n_train'] for r in rows}):
    for p, style in (('student', '-o'), ('teacher', '--s')):
      for split, alpha in (('test', 1.0), ('val', 0.4)):
        key = f'{p}_{split}_{figure}'
        pts = sorted((r['value'], r[key]) for r in rows if r['n_train'] == n and key in r)
        if not pts:
          continue
        xs = [math.log10(v) if log_x else v for v, _ in pts]
        ax.plot(xs, [scale * a for _, a in pts], style, alpha=alpha, label=f'n={n} {p} {split}')
    lost = sorted(r['value'] for r in rows if r['n_train'] == n and f'student_{figures.test(figure)}' not in r)
    if lost:  # every seed diverged: marked on the axis, no accuracy to plot
      xs = [math.log10(v) if log_x else v for v in lost]
      ax.plot(xs, [0] * len(xs), 'rx', clip_on=False, label=f'n={n} diverged')
  ax.set_xlabel(f'log10 {field}' if log_x else field)
  ax.set_ylabel('accuracy (%)' if figure == 'accuracy' else figure)
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def markdown(rows: list[dict], figure: str = 'accuracy') -> str:
  percent = figure == 'accuracy'
  lines = [
    ('Accuracy (%)' if percent else figure.upper()) + ' picked on validation, mean ± std over seeds.',
    '',
    '| n_train | swept | student test | student val | teacher test |',
    '|---|---|---|---|---|',
  ]
  for r in rows:
    cells = []
    for key in (
      f'student_{figures.test(figure)}',
      figures.history('student', figure),
      f'teacher_{figures.test(figure)}',
    ):
      scale, digits = (100, 2) if percent else (1, 4)
      spread = f' ± {scale * r[key + "_std"]:.{digits}f}' if key + '_std' in r else ''
      cells.append(f'{scale * r[key]:.{digits}f}{spread}' if key in r else '—')
    swept = ', '.join(f'{k}={v:.4g}' for k, v in r['overrides'].items())
    if r.get('diverged'):  # every seed's figures are left out of the means
      swept += ' (diverged: ' + ', '.join(f'seed {d["seed"]} in round {d["round"]}' for d in r['diverged']) + ')'
    lines.append(f'| {r["n_train"]} | {swept} | ' + ' | '.join(cells) + ' |')
  lines += ['', "A diverged seed is frozen when its metrics go non-finite and left out of its point's figures."]
  return '\n'.join(lines)


def run(base: ml_collections.ConfigDict, specs: list[str], combine: str, sizes: list[int], chunk: int, workdir: str):
  """Checks everything, then runs every chunk of every size; returns the rows (one per point and size), the swept
  fields, the figure selected on and what ``sweep.json`` records of the sweep."""
  fields = sweeps.parse_sweeps(specs)
  if not fields:
    raise config_lib.ConfigError('nothing to sweep: give --sweep=FIELD=VALUES (or config.sweep.specs)')
  if chunk < 1:
    raise config_lib.ConfigError(f'--chunk={chunk} must be >= 1')
  base = config_lib.validate(base)
  record = _record(base, specs, combine, sizes)
  _check_summary(workdir, record)
  axes_points = sweeps.sweep_points(fields, combine, base.method)
  points = [p for _, p in axes_points]
  per_program = max(1, chunk // base.num_seeds)
  jobs = []
  for n in sizes:  # every member's config and each size against the data, before anything runs
    c = sweeps.with_overrides(base, {'n_train': n})
    sweeps.check_sweep(c, points)
    data_lib.load(c)
    for i, (group, real) in enumerate(sweeps.chunks(points, per_program)):
      jobs.append((n, c, group, real, os.path.join(workdir, f'n{n}', f'chunk_{i}')))
  rows, done = [], {}
  with workdir_lib.exclusive(workdir):  # one sweep per workdir; each chunk also locks its own
    for n, c, group, real, path in jobs:
      results = train.finished(path, c, group) or train.train_and_evaluate(c, path, group)
      done.setdefault(n, []).extend(results['sweep'][:real])
  figure = next((f for entries in done.values() for e in entries if (f := results_lib.selected_figure(e))), 'accuracy')
  for n in sizes:
    for (axis, point), entry in zip(axes_points, done[n], strict=True):
      value = point[axis] if axis else None
      rows.append({'n_train': n, 'axis': axis, 'value': value, 'overrides': point, **_summary(entry, figure)})
  return rows, fields, figure, record


def parse_sizes(values) -> list[int]:
  """``--n_train``'s values as positive integers."""
  try:
    sizes = [int(n) for n in values]
  except ValueError:
    sizes = []
  if not sizes or min(sizes) < 1:
    raise config_lib.ConfigError(f'--n_train={",".join(map(str, values))} must be positive integers, e.g. 100,1000')
  return sizes


def _record(base: ml_collections.ConfigDict, specs: list[str], combine: str, sizes: list[int]) -> dict:
  """What ``sweep.json`` records of the sweep it summarises."""
  return {'specs': list(specs), 'combine': combine, 'n_train': list(sizes), 'config': json.loads(base.to_json())}


def _check_summary(workdir: str, record: dict) -> None:
  """Refuses a workdir whose ``sweep.json`` summarises another sweep (its summary would be replaced, its chunks
  mixed with this sweep's)."""
  path = os.path.join(workdir, 'sweep.json')
  if not os.path.exists(path):
    return
  saved = workdir_lib.read_json(path, f'workdir={workdir!r}')
  now = {k: identity_lib.what_is_computed(v) if k == 'config' else v for k, v in record.items()}
  changed = [
    k for k in now if k in saved and (identity_lib.what_is_computed(saved[k]) if k == 'config' else saved[k]) != now[k]
  ]
  if changed:
    raise config_lib.ConfigError(
      f'workdir={workdir!r} holds the finished summary of another sweep (sweep.json differs in {", ".join(changed)}); '
      'use a new workdir, or move that sweep out of it'
    )


def main(argv):
  del argv
  logging.set_verbosity(logging.INFO)
  base = ml_collections.ConfigDict(_CONFIG.value.to_dict())
  preset = None
  if 'sweep' in base:  # the config file's sweep, not a field of the runs
    preset = ml_collections.ConfigDict(base.sweep.to_dict())
    del base['sweep']
  specs = _SWEEP.value or (list(preset.specs) if preset else [])
  combine = _COMBINE.value or (preset.combine if preset else 'grid')
  with cli.reported():
    sizes = parse_sizes(_N_TRAIN.value or (preset.n_train if preset else [base.n_train]))
    rows, fields, figure, record = run(base, specs, combine, sizes, _CHUNK.value, _WORKDIR.value)
  if parallel.is_writer():
    _write(rows, fields, record, figure)


def _write(rows: list[dict], fields: dict, record: dict, figure: str) -> None:
  combine, sizes = record['combine'], record['n_train']
  table = markdown(rows, figure)
  print('\n' + table)
  with open(os.path.join(_WORKDIR.value, 'sweep.md'), 'w') as f:
    f.write(table + '\n')
  workdir_lib.write_json(os.path.join(_WORKDIR.value, 'sweep.json'), {**record, 'rows': rows})
  for field, values in fields.items():
    if combine == 'axes':
      field_rows = [r for r in rows if r['axis'] == field]
    else:  # a grid: each value's mean over the other fields
      field_rows = []
      for n in sizes:
        for v in values:
          group = [r for r in rows if r['n_train'] == n and r['overrides'][field] == v]
          keys = {k for r in group for k in r if k.endswith((figure, '_std'))}
          mean = {k: float(np.mean([r[k] for r in group if k in r])) for k in keys}  # over points that did not diverge
          field_rows.append({'n_train': n, 'value': v, **mean})
    plot(field_rows, field, os.path.join(_WORKDIR.value, f'sweep_{field.replace(".", "_")}.png'), figure)


if __name__ == '__main__':
  cli.run(main)
