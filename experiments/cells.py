"""What the grid entrypoints (``table1``, ``ablation``) share: a cell's config, its figure, its convergence check.

Flag-free, so that both entrypoints (each defining its own flags) can import it.
"""

import os

import ml_collections

from adjax import config as config_lib
from adjax import figures
from adjax import methods as methods_lib


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
