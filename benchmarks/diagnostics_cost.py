r"""What the equilibrium diagnostics add to a round: seconds of a round, and of the diagnostics after it (validation
and the training examples), interleaved.

  python -m benchmarks.diagnostics_cost [--methods=adim,adib] [--schedules=cpu,paper] [--cycles=5] [--out=FILE]

A case is a method under a schedule at n_train = 100, n_val = 1,000, batch
10, one member, built with the functional core (``adjax.setup``), its
diagnostics on ``config.diagnostics`` examples of each split as a run's: ``cpu`` is
``mnist.py``'s round (20 / 10 / 10 updates), ``paper`` ``mnist_paper.py:100``'s
(200 / 100 / 100). In each cycle every case's round and its diagnostics are
timed (medians of ``repeats``); each figure is the median over cycles, and
``fraction`` is diagnostics / round: what a run with diagnostics on spends
beside one with them off.
"""

import statistics

from absl import app
from absl import flags
import jax

import adjax
from adjax import game as game_lib
from benchmarks import common
from experiments.configs import mnist
from experiments.configs import mnist_paper

_METHODS = flags.DEFINE_list('methods', ['adim', 'adib'], 'Methods to time.')
_SCHEDULES = flags.DEFINE_list('schedules', ['cpu', 'paper'], 'cpu (mnist.py) or paper (mnist_paper.py:100).')
_REPEATS = flags.DEFINE_integer('repeats', 3, 'Timed calls per case and cycle (median).')
_CYCLES = flags.DEFINE_integer('cycles', 5, 'Interleaved measurement cycles (median over them).')
_OUT = flags.DEFINE_string('out', None, 'Also write the JSON here.')


def case(method: str, schedule: str):
  """``(time_round, time_diagnostics)``: callables timing one round, and the diagnostics on both splits."""
  config = mnist_paper.get_config('100') if schedule == 'paper' else mnist.get_config()
  config.method = method
  s = adjax.setup(config)
  programs, train, val = s.programs(), s.data('train'), s.data('val')
  holder = {'state': programs.pretrain(s.init(), train, False)[0]}

  def play():
    holder['state'] = programs.play_round(holder['state'], train)[0]  # the state is donated: keep the new one
    return holder['state']

  measured = [game_lib.spread(d, config.diagnostics) for d in (val, train)]  # as a run measures them

  def diagnose():
    return [programs.diagnostics(holder['state'], d) for d in measured]

  jax.block_until_ready(play())  # compiled before timing
  jax.block_until_ready(diagnose())
  return play, diagnose


def main(argv):
  del argv
  cases = {(m, sch): case(m, sch) for m in _METHODS.value for sch in _SCHEDULES.value}
  times = {key: {'round': [], 'diagnostics': []} for key in cases}
  for _ in range(_CYCLES.value):
    for key, (play, diagnose) in cases.items():
      times[key]['round'].append(common.median_seconds(play, _REPEATS.value))
      times[key]['diagnostics'].append(common.median_seconds(diagnose, _REPEATS.value))
  report = {'cases': []}
  for (method, schedule), t in times.items():
    seconds = {k: statistics.median(v) for k, v in t.items()}
    report['cases'].append(
      {
        'method': method,
        'schedule': schedule,
        'seconds_per_round': seconds['round'],
        'seconds_diagnostics': seconds['diagnostics'],
        'fraction': seconds['diagnostics'] / seconds['round'],
      }
    )
  common.write_report(report, _OUT.value)


if __name__ == '__main__':
  app.run(main)
