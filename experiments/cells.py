"""What the grid entrypoints (``table1``, ``ablation``) share: a cell's config, its figure, its convergence check.

Flag-free, so that both entrypoints (each defining its own flags) can import it.
"""

import os

import ml_collections

from adjax import config as config_lib
from adjax import figures
from adjax import methods as methods_lib

# SPEC §6, Table 1 (MNIST): student accuracy %, mean ± std over 10 runs.
PAPER_MNIST = {
  'codis': {100: '74.02 ± 0.13', 1000: '95.77 ± 0.10', 10000: '98.89 ± 0.08', 50000: '99.31 ± 0.06'},
  'distn': {100: '68.34 ± 0.06', 1000: '93.97 ± 0.08', 10000: '98.79 ± 0.07', 50000: '99.26 ± 0.05'},
  'noisy': {100: '66.53 ± 0.18', 1000: '93.45 ± 0.11', 10000: '98.58 ± 0.11', 50000: '99.05 ± 0.10'},
  'mimic': {100: '67.35 ± 0.15', 1000: '93.78 ± 0.13', 10000: '98.65 ± 0.05', 50000: '98.99 ± 0.04'},
  'ngan': {100: '64.90 ± 0.31', 1000: '93.60 ± 0.22', 10000: '98.95 ± 0.19', 50000: '99.36 ± 0.16'},
  'adib': {100: '77.95 ± 0.08', 1000: '96.42 ± 0.09', 10000: '99.25 ± 0.06', 50000: '99.54 ± 0.05'},
  'adim': {100: '78.70 ± 0.11', 1000: '97.20 ± 0.09', 10000: '99.38 ± 0.08', 50000: '99.61 ± 0.04'},
}


def paper(method: str, n_train: int, dataset: str) -> str:
  """The paper's Table 1 figure of ``method`` at ``n_train`` ('—' where it gives none, or not on MNIST)."""
  return PAPER_MNIST.get(method, {}).get(n_train, '—') if dataset == 'mnist5k' else '—'


def with_student() -> list[str]:
  """Every registered method that trains or uses a student (Table 1's rows)."""
  return [m for m, method in methods_lib.METHODS.items() if 'student' in method.present]


def cell_config(
  base: ml_collections.ConfigDict, method: str, n_train: int, num_seeds: int, rounds: int, workdir: str
) -> ml_collections.ConfigDict:
  """``base`` for one cell, validated; two-phase baselines share their trained teachers in ``workdir/teachers``
  unless ``teacher_cache`` is set."""
  c = ml_collections.ConfigDict(base.to_dict())
  c.method, c.n_train, c.num_seeds, c.rounds = method, n_train, num_seeds, rounds
  if not c.teacher_cache:
    c.teacher_cache = os.path.join(workdir, 'teachers')
  return config_lib.validate(c)


def percent(final: dict, name: str, *, seeds: int) -> str:
  """``mean ± std`` in percent; the mean alone for one seed (whose spread is not measured)."""
  mean = f'{100 * final[name]:.2f}'
  return mean if seeds == 1 else f'{mean} ± {100 * final.get(name + "_std", 0.0):.2f}'


def figure(results: dict, name: str = 'test_accuracy') -> str:
  """``mean ± std (seeds)`` (one seed: ``mean (1)``) of the student's ``name`` (test accuracy of the parameters
  picked on validation; ``last_test_accuracy``: of the last round); diverged seeds are left out and counted."""
  diverged = len(results.get('diverged', []))
  if results['final'] is None:
    return f'diverged ({diverged} of {results["num_seeds"]})'
  note = f', {diverged} diverged' if diverged else ''
  seeds = results['num_seeds'] - diverged
  return percent(results['final']['student'], name, seeds=seeds) + f' ({seeds}{note})'


def late_gain(history: list[dict]) -> float | None:
  """Points of mean student validation accuracy gained from the second-last quarter of the rounds to the last.

  Near 0: the schedule has converged; positive: the student was still learning when it stopped. None with fewer
  than 4 rounds.
  """
  val = [h[figures.history('student', 'accuracy')] for h in history if h['round'] >= 1]
  q = len(val) // 4
  if q == 0:
    return None
  return 100 * (sum(val[-q:]) - sum(val[-2 * q : -q])) / q
