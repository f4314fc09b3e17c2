r"""Seconds per round of ADIB and ADIM on the MNIST models, against this machine's matmul peak and PyTorch.

  python -m benchmarks.round_time [--batch_sizes=10,64] [--repeats=5] [--cycles=3] [--out=FILE] \
      [--torch_python=PYTHON_WITH_TORCH] [--torch_compile]

Prints JSON: per method and batch size, seconds per round, updates per
second, the round's FLOPs (XLA's cost analysis of one update of each player,
times the updates), achieved FLOP/s, its fraction of the f32 matmul peak,
and the ADIM/ADIB time and FLOP ratios (paper: 1.23x time).

Everything is measured ``cycles`` times, interleaved, so that every figure
sees the same machine load: in each cycle every case's adjax round (median of
``repeats``), a sample of the matmul peak (2048², best of 3) after each case,
and, with ``--torch_python`` (an interpreter that has torch), the rounds of
``benchmarks/torch_round.py`` (eager, and with ``--torch_compile`` also
``torch.compile``d). Each figure is the median over the cycles; the peak
also at the round's own GEMM shapes (the dense layer and LeNet's second
convolution at the round's batch). Ratios are of figures of this one run.
"""

import json
import os
import statistics
import subprocess

from absl import app
from absl import flags
import jax

from adjax import conv
from adjax import rounds
from benchmarks import common

_BATCH_SIZES = flags.DEFINE_list('batch_sizes', ['10', '64'], 'Minibatch sizes to time.')
_METHODS = flags.DEFINE_list('methods', ['adib', 'adim'], 'Methods to time.')
_REPEATS = flags.DEFINE_integer('repeats', 5, 'Timed rounds per case and cycle (median).')
_CYCLES = flags.DEFINE_integer('cycles', 3, 'Interleaved measurement cycles (median over them).')
_OUT = flags.DEFINE_string('out', None, 'Also write the JSON here.')
_TORCH_PYTHON = flags.DEFINE_string('torch_python', None, 'A Python with torch: also time benchmarks/torch_round.py.')
_TORCH_DEVICE = flags.DEFINE_string('torch_device', 'cpu', "torch's device for that comparison (cpu, cuda).")
_TORCH_COMPILE = flags.DEFINE_bool('torch_compile', False, 'Also time the torch.compile round.')
_TINY = flags.DEFINE_bool('tiny', False, 'One update per player on 100 examples (the tests run it so it cannot rot).')
UPDATES = common.UPDATES


def round_flops(method: str, batch_size: int) -> float:
  """FLOPs of a round: XLA's count for one update of each player, times its updates."""
  total = 0.0
  for name, k in UPDATES.items():
    one = {key: int(key == name) for key in UPDATES}
    game, state, train = common.setup(method, batch_size, one, _TINY.value)
    state, train = jax.tree.map(lambda a: a[0], state), {**train, 'index': train['index'][0]}
    play = jax.jit(lambda s, d, game=game: rounds.play_round(game, s, d))
    # The HLO before backend passes: the same count on every backend (GPU's compiled
    # cost analysis does not count cuDNN convolutions).
    total += (1 if _TINY.value else k) * play.lower(state, train).cost_analysis()['flops']
  return total


def round_timer(method: str, batch_size: int):
  """A function that times ``repeats`` rounds of the case (one seed) and returns their median."""
  game, state, train = common.setup(method, batch_size, UPDATES, _TINY.value)
  play_round = rounds.compile_fns(game).play_round
  holder = {'state': play_round(state, train)[0]}  # compiled

  def one_round():
    holder['state'], metrics = play_round(holder['state'], train)
    return metrics

  return lambda repeats: common.median_seconds(one_round, repeats)


def gemm_flops(batch_size: int, repeats: int = 5) -> dict[str, float]:
  """FLOP/s of the round's own large products at its batch: the 3136x1024 dense layer, LeNet's 5x5x32x64
  convolution on 14x14 (median of ``repeats``)."""
  key = jax.random.key(1)
  dense_a, dense_w = jax.random.normal(key, (batch_size, 3136)), jax.random.normal(key, (3136, 1024))
  conv_x, conv_w = jax.random.normal(key, (batch_size, 14, 14, 32)), jax.random.normal(key, (5, 5, 32, 64))
  cases = {
    'dense_3136x1024': (jax.jit(lambda a, w: a @ w), (dense_a, dense_w), 2 * batch_size * 3136 * 1024),
    'conv_5x5x32x64_14x14': (jax.jit(conv.conv_same), (conv_x, conv_w), 2 * batch_size * 14 * 14 * 25 * 32 * 64),
  }
  out = {}
  for name, (f, args, flops) in cases.items():
    jax.block_until_ready(f(*args))
    out[name] = flops / common.median_seconds(lambda: f(*args), repeats)
  return out


def torch_seconds(python: str, batch_sizes, methods, repeats: int, compiled: bool) -> tuple[dict, str]:
  script = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'torch_round.py')
  args = [python, script, f'--batch_sizes={",".join(batch_sizes)}', f'--methods={",".join(methods)}']
  args += [f'--device={_TORCH_DEVICE.value}', f'--repeats={repeats}'] + (['--compile'] if compiled else [])
  proc = subprocess.run(args, capture_output=True, text=True, check=True)
  report = json.loads(proc.stdout.strip().splitlines()[-1])
  return {(c['method'], c['batch_size']): c['seconds_per_round'] for c in report['cases']}, report['torch']


def main(argv):
  del argv
  peak = common.MatmulPeak()
  cases = [(m, b) for b in map(int, _BATCH_SIZES.value) for m in _METHODS.value]
  timers = {case: round_timer(*case) for case in cases}
  torch_modes = ['eager'] + (['compiled'] if _TORCH_COMPILE.value else []) if _TORCH_PYTHON.value else []
  samples = {(case, mode): [] for case in cases for mode in ['adjax', *torch_modes]}
  version = None
  for _ in range(_CYCLES.value):  # interleaved: every figure sees the same machine load
    for case in cases:
      samples[case, 'adjax'].append(timers[case](_REPEATS.value))
      peak.sample()
    for mode in torch_modes:
      seconds, version = torch_seconds(
        _TORCH_PYTHON.value, _BATCH_SIZES.value, _METHODS.value, _REPEATS.value, mode == 'compiled'
      )
      for case in cases:
        samples[case, mode].append(seconds[case])
      peak.sample()
  median = {key: statistics.median(v) for key, v in samples.items()}
  num_updates = sum(UPDATES.values())
  report = {
    'device': jax.devices()[0].device_kind,
    'matmul_peak_flops': peak.flops(),
    'matmul_peak_samples': peak.samples,
    'updates_per_round': UPDATES,
    'cycles': _CYCLES.value,
    'repeats': _REPEATS.value,
    'cases': [],
  }
  flops, seconds = {}, {}
  for method, b in cases:
    s, flops[method, b] = median[(method, b), 'adjax'], round_flops(method, b)
    seconds[method, b] = s
    case = {
      'method': method,
      'batch_size': b,
      'seconds_per_round': s,
      'seconds_per_cycle': samples[(method, b), 'adjax'],
      'updates_per_second': num_updates / s,
      'round_flops': flops[method, b],
      'achieved_flops_per_second': flops[method, b] / s,
      'fraction_of_matmul_peak': flops[method, b] / s / peak.flops(),
    }
    for mode in torch_modes:
      case[f'torch_{mode}_seconds_per_round'] = median[(method, b), mode]
      case[f'speedup_over_torch_{mode}'] = median[(method, b), mode] / s
    report['cases'].append(case)
  for b in map(int, _BATCH_SIZES.value):
    if ('adib', b) in seconds and ('adim', b) in seconds:
      report.setdefault('adim_over_adib', {})[str(b)] = seconds['adim', b] / seconds['adib', b]
      report.setdefault('adim_over_adib_flops', {})[str(b)] = flops['adim', b] / flops['adib', b]
    report.setdefault('gemm_flops_per_second', {})[str(b)] = gemm_flops(b)
  if version:
    report['torch'] = version
  common.write_report(report, _OUT.value)


if __name__ == '__main__':
  app.run(main)
