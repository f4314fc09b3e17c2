r"""Seconds per round of ADIB and ADIM on the MNIST models, against this machine's matmul peak.

  python -m benchmarks.round_time [--batch_sizes=10,64] [--repeats=5] [--out=FILE] \
      [--torch_python=PYTHON_WITH_TORCH]

Prints JSON: per method and batch size, seconds per round (median of
``repeats``), updates per second, the round's FLOPs (XLA's cost analysis of
one update of each player, times the updates), achieved FLOP/s, its fraction
of the measured f32 matmul peak, and the ADIM/ADIB time ratio (paper: 1.23x).
With ``--torch_python`` (an interpreter that has torch), the same rounds in
``benchmarks/torch_round.py`` are timed in the same run, one after the other,
and each case gets ``torch_seconds_per_round`` and ``speedup_over_torch``.
"""

import json
import os
import statistics
import subprocess
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp

from adjax import config as config_lib
from adjax import data
from adjax import game as game_lib
from adjax import rounds
from experiments.configs import mnist

_BATCH_SIZES = flags.DEFINE_list('batch_sizes', ['10', '64'], 'Minibatch sizes to time.')
_METHODS = flags.DEFINE_list('methods', ['adib', 'adim'], 'Methods to time.')
_REPEATS = flags.DEFINE_integer('repeats', 5, 'Timed rounds per case (median reported).')
_OUT = flags.DEFINE_string('out', None, 'Also write the JSON here.')
_TORCH_PYTHON = flags.DEFINE_string('torch_python', None, 'A Python with torch: also time benchmarks/torch_round.py.')
_TORCH_DEVICE = flags.DEFINE_string('torch_device', 'cpu', "torch's device for that comparison (cpu, cuda).")
_TINY = flags.DEFINE_bool('tiny', False, 'One update per player on 100 examples (the tests run it so it cannot rot).')
UPDATES = {'k_d': 20, 'k_t': 10, 'k_s': 10}


def _median_seconds(fn, repeats: int) -> float:
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - t0)
  return statistics.median(times)


def matmul_peak(n: int = 2048, repeats: int = 10) -> float:
  """f32 FLOP/s of an n x n matmul, the best of ``repeats``."""
  a = jax.random.normal(jax.random.key(0), (n, n))
  f = jax.jit(lambda a: a @ a)
  jax.block_until_ready(f(a))
  best = min(_timed(lambda: f(a)) for _ in range(repeats))
  return 2 * n**3 / best


def _timed(fn) -> float:
  t0 = time.perf_counter()
  jax.block_until_ready(fn())
  return time.perf_counter() - t0


def _setup(method: str, batch_size: int, counts: dict):
  c = mnist.get_config()
  c.method, c.batch_size, c.n_train, c.n_val = method, batch_size, 1000, 100
  c.k_d, c.k_t, c.k_s = counts['k_d'], counts['k_t'], counts['k_s']
  if _TINY.value:
    c.n_train, c.k_d, c.k_t, c.k_s = 100, min(1, c.k_d), min(1, c.k_t), min(1, c.k_s)
  c.augment.rotation = c.augment.shift = c.augment.zoom = 0.0  # as the PyTorch round
  c = config_lib.validate(c)
  splits = data.load(c)
  game = game_lib.build(c, splits.num_classes)
  train = {'x': jnp.asarray(splits.x_train), 'y': jnp.asarray(splits.y_train)}
  state = game_lib.init_state(game, jax.random.key(0), train)
  return game, state, game_lib.as_data(train)


def round_flops(method: str, batch_size: int) -> float:
  """FLOPs of a round: XLA's count for one update of each player, times its updates."""
  total = 0.0
  for name, k in UPDATES.items():
    one = {key: int(key == name) for key in UPDATES}
    game, state, train = _setup(method, batch_size, one)
    play = jax.jit(lambda s, d, game=game: rounds.play_round(game, s, d))
    # The HLO before backend passes: the same count on every backend (GPU's compiled
    # cost analysis does not count cuDNN convolutions).
    total += k * play.lower(state, train).cost_analysis()['flops']
  return total


def time_round(method: str, batch_size: int, repeats: int) -> float:
  game, state, train = _setup(method, batch_size, UPDATES)
  _, play_round, _ = rounds.compile_fns(game)
  state, train = jax.tree.map(lambda a: a[None], state), {**train, 'index': train['index'][None]}  # one seed
  state, _ = play_round(state, train, None)  # compile
  holder = {'state': state}

  def one_round():
    holder['state'], metrics = play_round(holder['state'], train, None)
    return metrics

  return _median_seconds(one_round, repeats)


def torch_seconds(python: str, batch_sizes, methods, repeats: int) -> dict:
  script = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'torch_round.py')
  args = [python, script, f'--batch_sizes={",".join(batch_sizes)}', f'--methods={",".join(methods)}']
  args.append(f'--device={_TORCH_DEVICE.value}')
  proc = subprocess.run([*args, f'--repeats={repeats}'], capture_output=True, text=True, check=True)
  report = json.loads(proc.stdout.strip().splitlines()[-1])
  return {(c['method'], c['batch_size']): c['seconds_per_round'] for c in report['cases']}, report['torch']


def main(argv):
  del argv
  peak = matmul_peak()
  num_updates = sum(UPDATES.values())
  report = {
    'device': jax.devices()[0].device_kind,
    'matmul_peak_flops': peak,
    'updates_per_round': UPDATES,
    'cases': [],
  }
  for batch_size in map(int, _BATCH_SIZES.value):
    seconds = {}
    for method in _METHODS.value:
      s = time_round(method, batch_size, _REPEATS.value)
      flops = round_flops(method, batch_size)
      seconds[method] = s
      report['cases'].append(
        {
          'method': method,
          'batch_size': batch_size,
          'seconds_per_round': s,
          'updates_per_second': num_updates / s,
          'round_flops': flops,
          'achieved_flops_per_second': flops / s,
          'fraction_of_matmul_peak': flops / s / peak,
        }
      )
    if {'adib', 'adim'} <= set(seconds):
      report.setdefault('adim_over_adib', {})[str(batch_size)] = seconds['adim'] / seconds['adib']
  if _TORCH_PYTHON.value:
    seconds, version = torch_seconds(_TORCH_PYTHON.value, _BATCH_SIZES.value, _METHODS.value, _REPEATS.value)
    report['torch'] = version
    for case in report['cases']:
      case['torch_seconds_per_round'] = seconds[case['method'], case['batch_size']]
      case['speedup_over_torch'] = case['torch_seconds_per_round'] / case['seconds_per_round']
  text = json.dumps(report, indent=1)
  print(text)
  if _OUT.value:
    with open(_OUT.value, 'w') as f:
      f.write(text)


if __name__ == '__main__':
  app.run(main)
