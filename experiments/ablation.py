r"""Table 1's row under the authors' conditions (SPEC §8): every method under each condition of ``mnist_authors``.

  python -m experiments.ablation --workdir=DIR                           # every condition, every method, 10 seeds
  python -m experiments.ablation --workdir=DIR --conditions=authors_update,non_saturating --methods=ngan,adim

A condition is a set of config overrides (``experiments/configs/mnist_authors.py``:
``CONDITIONS``: adjax's defaults, the authors' conditions together, each
difference alone, the non-saturating generator reward). Each (condition,
method) cell is one run of ``adjax.train`` (its seeds vmapped) in
``DIR/{condition}/{method}`` on the base config (default ``mnist.py``; the
same ``--config.FIELD=VALUE`` overrides as ``experiments.main``); finished
cells are reused, unfinished ones resume. A cell whose programs (pretraining,
the frozen teacher's, a round) trace to the same jaxprs as the defaults' is
not run again: the condition does not enter that method (DISTN-MSE does not
touch ADIM), and its figure is the defaults' (``=`` in the table). Writes
``DIR/ablation.md`` (student test accuracy picked on validation, mean ± std
over seeds, per method and condition, and per condition the margin of ADIM
and of ADIB over the best baseline against the seeds' spread) and
``DIR/ablation.json``, with the paper's Table 1 figure beside each method
where it gives one, and per method its equilibrium diagnostics under each
condition, ``DIR/diagnostics_{METHOD}.png`` (mean over seeds; methods
without a discriminator show their divergences only; ``--beside=LABEL=DIR``
draws another workdir's cells, another schedule's, beside them). The table
and figures cover every cell stored in ``DIR``, not only this call's
conditions and methods, and a call without ``--label`` and ``--beside``
draws those of the call before (kept in ``DIR/ablation.json``, directories
as given: relative to where that call ran): a call that runs one more cell,
with the same base config and ``--num_seeds``, leaves the rest of the table
and figures as they were (a stored cell of another config is left out, with
a warning).
"""

import json
import math
import os
import statistics

from absl import flags
from absl import logging
import ml_collections

from adjax import config as config_lib
from adjax import data as data_lib
from adjax import fields
from adjax import figures
from adjax import game as game_lib
from adjax import parallel
from adjax import sweeps
from adjax import train
from adjax import workdir as workdir_lib
from adjax.run import identity as identity_lib
from adjax.run import plots
from experiments import cells as cells_lib
from experiments import cli
from experiments.configs import mnist_authors

BASELINES = ('distn', 'mimic', 'noisy', 'codis', 'ngan')  # what ADIM and ADIB are compared with
FLAGS = flags.FLAGS


def _define_flags() -> None:
  """The entrypoint's flags, defined only when it runs as a program (``table1`` defines some of the same names)."""
  flags.DEFINE_string('workdir', None, 'Output directory.')
  flags.DEFINE_list('conditions', ['all'], f'Conditions, or all: {", ".join(mnist_authors.CONDITIONS)}.')
  flags.DEFINE_list('methods', ['all'], "Methods, or 'all' (every method with a student).")
  flags.DEFINE_integer('num_seeds', 10, 'Seeds per cell, vmapped.')
  flags.DEFINE_bool(
    'table_only',
    False,
    'Write the table of the finished cells; train nothing (it traces the programs to find the = cells).',
  )
  flags.DEFINE_string('label', '', "This workdir's name in the diagnostics figures' legends (e.g. its schedule).")
  flags.DEFINE_list(
    'beside',
    [],
    'LABEL=DIR,…: other ablation workdirs (another schedule) whose finished cells of the same conditions and '
    "methods are drawn beside this one's in diagnostics_{METHOD}.png, named LABEL.",
  )
  cli.define_config(os.path.join(os.path.dirname(__file__), 'configs', 'mnist.py'), 'Base config.')


def programs(config: ml_collections.ConfigDict, split: game_lib.Split) -> str:
  """A digest of what a config's programs compute on ``split`` (``adjax.run.identity.programs``; ``cell_configs``
  refuses a condition that sets a state hyperparameter, which the digest would not see)."""
  return identity_lib.programs(game_lib.build(config, int(split['y'].max()) + 1), split)


def check_names(conditions: list[str], methods: list[str]) -> None:
  """``ConfigError`` naming an unknown condition or method and the valid ones."""
  unknown = [c for c in conditions if c not in mnist_authors.CONDITIONS]
  if unknown:
    raise config_lib.ConfigError(f'--conditions: {", ".join(unknown)} not one of {", ".join(mnist_authors.CONDITIONS)}')
  unknown = [m for m in methods if m not in cells_lib.with_student()]
  if unknown:
    raise config_lib.ConfigError(
      f'--methods: {", ".join(unknown)} not one of {", ".join(cells_lib.with_student())} (the methods with a student)'
    )


def cell_configs(base, conditions: list[str], methods: list[str], num_seeds: int, workdir: str) -> dict:
  """``{(condition, method): config}``, validated (a bad override or method fails here, before any run)."""
  check_names(conditions, methods)
  for condition in conditions:
    swept = [f for f in mnist_authors.CONDITIONS[condition] if f in fields.sweepable()]
    if swept:
      raise config_lib.ConfigError(
        f'condition {condition} sets {", ".join(swept)}: a hyperparameter in the state, which comparing programs '
        'cannot see; sweep it with experiments.sweep instead'
      )
  out = {}
  for condition in conditions:
    config = sweeps.with_overrides(base, mnist_authors.CONDITIONS[condition])
    for m in methods:
      out[condition, m] = cells_lib.cell_config(config, m, base.n_train, num_seeds, base.rounds, workdir)
  return out


def beside(items: list[str]) -> dict[str, str]:
  """``--beside``'s ``LABEL=DIR`` items as ``{label: dir}``, checked before anything runs."""
  out = {}
  for item in items:
    label, sep, directory = item.partition('=')
    if not sep or not label or not os.path.isdir(directory):
      raise config_lib.ConfigError(
        f'--beside={item!r}: give LABEL=DIR, DIR an ablation workdir (DIR/CONDITION/METHOD cells)'
        + (f'; {directory!r} is not a directory' if sep and label else '')
      )
    out[label] = directory
  return out


def in_table(workdir: str, conditions: list[str], methods: list[str]) -> tuple[list[str], list[str]]:
  """The conditions and methods of the table: those asked for and those with a cell stored in ``workdir``, in the
  order of ``mnist_authors.CONDITIONS`` and of the methods' registry (the defaults always, the others compare with
  them)."""
  stored = lambda c, m: os.path.isdir(os.path.join(workdir, c, m))
  every = cells_lib.with_student()
  methods = [m for m in every if m in methods or any(stored(c, m) for c in mnist_authors.CONDITIONS)]
  conditions = [
    c for c in mnist_authors.CONDITIONS if c == 'defaults' or c in conditions or any(stored(c, m) for m in every)
  ]
  return conditions, methods


def figure_settings(workdir: str, label: str, items: list[str]) -> tuple[str, dict[str, str]]:
  """The figures' ``--label`` and ``--beside`` (checked, ``{label: dir}``): this call's, else, when it gives
  neither, those kept in ``workdir/ablation.json`` by the call before (their directories still there)."""
  if label or items:
    return label, beside(items)
  path = os.path.join(workdir, 'ablation.json')
  try:
    kept = workdir_lib.read_json(path, f'--workdir={workdir!r}').get('figures', {}) if os.path.exists(path) else {}
    label, kept_beside = str(kept.get('label', '')), dict(kept.get('beside', {}))
  except (config_lib.ConfigError, AttributeError, TypeError, ValueError) as e:  # the call rewrites it at its end
    logging.warning('%s: its figure settings are unreadable (%s): none kept', path, e)
    return '', {}
  others = {k: d for k, d in kept_beside.items() if isinstance(d, str) and os.path.isdir(d)}
  for k, d in kept_beside.items():
    if k not in others:
      logging.warning('--beside kept in %s: %s=%s is not a directory (here), left out of the figures', path, k, d)
  return label, others


def figure_runs(results: dict, others: dict[str, str], conditions: list[str], method: str, label: str = '') -> dict:
  """A method's runs for its diagnostics figure, ``{legend: results}``: this workdir's under each condition (named
  ``LABEL: CONDITION`` when ``label`` is given), then the finished cells of the same conditions in ``others``."""
  runs = {f'{label}: {c}' if label else c: results[c, method] for c in conditions if (c, method) in results}
  for where, directory in others.items():
    for c in conditions:
      stored = identity_lib.stored_results(os.path.join(directory, c, method))
      if stored:
        runs[f'{where}: {c}'] = stored
  return runs


def same_as_defaults(configs: dict, split: game_lib.Split) -> set:
  """The cells whose programs equal those of the same method under the defaults (``configs`` holds both)."""
  defaults, same = {}, set()
  for (condition, m), config in configs.items():
    if condition == 'defaults':
      continue
    if m not in defaults:
      defaults[m] = programs(configs['defaults', m], split)
    if programs(config, split) == defaults[m]:
      same.add((condition, m))
  return same


def margins(per_method: dict[str, list[float]]) -> dict | None:
  """ADIM's and ADIB's mean margin over the best baseline (by mean), the larger of the two sample standard deviations
  (n − 1; ``spread``) and the standard error of the difference of the means (``se``), in points."""
  means = {m: statistics.mean(v) for m, v in per_method.items() if v}
  base = [m for m in BASELINES if m in means]
  if not base:
    return None
  best = max(base, key=means.get)
  out = {'best_baseline': best}
  for m in ('adim', 'adib'):
    if m in means:
      a, b = per_method[m], per_method[best]
      spread = max(_std(a), _std(b))
      se = math.sqrt(_std(a) ** 2 / len(a) + _std(b) ** 2 / len(b))  # standard error of the difference of means
      out[m] = {'margin': 100 * (means[m] - means[best]), 'spread': 100 * spread, 'se': 100 * se}
  return out


def _std(values: list[float]) -> float:
  return statistics.stdev(values) if len(values) > 1 else math.nan


def grid(
  results: dict, same: set, conditions: list[str], methods: list[str], name: str, paper: dict | None = None
) -> list[str]:
  """Markdown rows of the student's ``name`` (``test_accuracy``, ``last_test_accuracy``) per method and condition,
  and the paper's figure of each method where ``paper`` (``{method: figure}``) is given."""
  extra = ' paper |' if paper else ''
  lines = ['| method | ' + ' | '.join(conditions) + ' |' + extra, '|---|' + '---|' * (len(conditions) + bool(paper))]
  for m in methods:
    row = []
    for c in conditions:
      if (c, m) in same:
        row.append('=' if ('defaults', m) in results else '= (defaults not run)')
      elif (c, m) in results:
        row.append(cells_lib.figure(results[c, m], name))
      else:
        row.append('not run')
    lines.append(f'| {m} | ' + ' | '.join(row) + ' |' + (f' {paper[m]} |' if paper else ''))
  return lines


def markdown(results: dict, same: set, conditions: list[str], methods: list[str], paper: dict | None = None) -> str:
  """The student's test accuracy picked on validation (and the paper's) with each condition's margins, then that of
  the last round."""
  row = []
  for c in conditions:
    got = margins(_per_method(results, same, c, methods)) or {}
    parts = [f'{m.upper()} {got[m]["margin"]:+.2f} (± {got[m]["spread"]:.2f})' for m in ('adim', 'adib') if m in got]
    row.append(f'vs {got["best_baseline"].upper()}: ' + ', '.join(parts) if parts else '—')
  lines = [
    *grid(results, same, conditions, methods, figures.test('accuracy'), paper),
    '| margin over the best baseline | ' + ' | '.join(row) + ' |' + (' |' if paper else ''),
    '',
    'Student test accuracy (%) picked on validation, mean ± std over seeds (seeds). `=`: the condition does not enter '
    "the method's programs (the same jaxprs as the defaults'), so the figure is the defaults'. Margin: the mean of "
    'ADIM (ADIB) minus that of the best two-phase, codistillation or NGAN baseline, ± the larger sample standard '
    'deviation (n − 1; the table above divides by n) of the two.',
    '',
    'Student test accuracy (%) of the last round (a collapsed method shows here):',
    '',
    *grid(results, same, conditions, methods, str(figures.Figure('accuracy', last=True))),
  ]
  return '\n'.join(lines)


def _per_method(results: dict, same: set, condition: str, methods: list[str]) -> dict[str, list[float]]:
  """Each method's per-seed student test accuracies under ``condition`` (the defaults' where it is ``=``)."""
  out = {}
  for m in methods:
    r = results.get(('defaults', m) if (condition, m) in same else (condition, m))
    if r and r['final'] is not None:
      out[m] = [
        p['final']['student'][figures.test('accuracy')] for p in r['per_seed'] if p['final']['student'] is not None
      ]
  return out


def main(argv):
  del argv
  logging.set_verbosity(logging.INFO)
  base = FLAGS.config
  methods = cells_lib.with_student() if FLAGS.methods == ['all'] else FLAGS.methods
  conditions = list(mnist_authors.CONDITIONS) if FLAGS.conditions == ['all'] else FLAGS.conditions
  workdir = FLAGS.workdir
  with cli.reported():
    check_names(conditions, methods)  # before the table's scope adds the stored ones
    label, others = figure_settings(workdir, FLAGS.label, FLAGS.beside)
    asked = [(c, m) for c in conditions for m in methods]
    conditions, methods = in_table(workdir, conditions, methods)  # the defaults' always: the others compare with them
    configs = cell_configs(base, conditions, methods, FLAGS.num_seeds, workdir)
    splits = data_lib.load(configs['defaults', methods[0]])
    same = same_as_defaults(configs, splits.split('train'))
  with cli.reported(), workdir_lib.exclusive(workdir):
    results = {}
    for (condition, m), config in configs.items():
      cell = os.path.join(workdir, condition, m)
      if (condition, m) in same:
        continue
      results[condition, m] = train.finished(cell, config)
      if (condition, m) in asked and not results[condition, m] and not FLAGS.table_only:
        results[condition, m] = train.train_and_evaluate(config, cell)
      if results[condition, m]:
        print(f'{condition} {m}: {cells_lib.figure(results[condition, m])}', flush=True)
        continue
      del results[condition, m]
      if os.path.exists(os.path.join(cell, 'results.json')):
        logging.warning('%s holds a finished run of another config (other flags?): left out of the table', cell)
    if not parallel.is_writer():
      return
    paper = {m: cells_lib.paper(m, base.n_train, base.dataset) for m in methods}
    table = markdown(results, same, conditions, methods, paper if set(paper.values()) != {'—'} else None)
    print('\n' + table)
    with open(os.path.join(workdir, 'ablation.md'), 'w') as f:
      f.write(table + '\n')
    summary = {
      'conditions': {c: mnist_authors.CONDITIONS[c] for c in conditions},
      'figures': {'label': label, 'beside': others},
      'same_as_defaults': sorted(f'{c}/{m}' for c, m in same),
      'cells': {
        f'{c}/{m}': {
          'final': r['final'],
          'late_gain': cells_lib.late_gain(r['history']),
          'per_seed': [p['final'] for p in r['per_seed']],
          **({'diagnostics': r['diagnostics']} if 'diagnostics' in r else {}),
        }
        for (c, m), r in results.items()
      },
      'margins': {c: margins(_per_method(results, same, c, methods)) for c in conditions},
    }
    workdir_lib.write_json(os.path.join(workdir, 'ablation.json'), json.loads(json.dumps(summary, default=str)))
    for m in methods:  # each method's equilibrium diagnostics under the conditions that ran it
      runs = figure_runs(results, others, conditions, m, label)
      if plots.compare(runs, os.path.join(workdir, f'diagnostics_{m}.png'), f'{m}, n_train={base.n_train}'):
        print(f'wrote diagnostics_{m}.png', flush=True)


if __name__ == '__main__':
  _define_flags()
  cli.run(main)
