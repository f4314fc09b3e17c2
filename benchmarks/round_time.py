r"""Seconds per round of ADIB and ADIM on the MNIST models, per batch size, precision and XLA:CPU setting, against
this machine's matmul peak and PyTorch.

  python -m benchmarks.round_time [--batch_sizes=10,64] [--precisions=float32,bfloat16] \
      [--xla=default,onednn,xnn] [--repeats=5] [--cycles=3] [--out=FILE] \
      [--torch_python=PYTHON_WITH_TORCH] [--torch_compile]

Prints JSON: per case (method, batch size, precision, XLA setting), seconds
per round, updates per second, the round's FLOPs (XLA's cost analysis of one
update of each player, times the updates), achieved FLOP/s and its fraction of
the matmul peak in the case's precision, the speed-up over the default XLA
setting and over PyTorch in the same precision; and the ADIM/ADIB time and
FLOP ratios (paper: 1.23x time).

Each XLA setting (``XLA_SETTINGS``: flags added to the environment's
``XLA_FLAGS``) runs in its own process, since XLA reads its flags once: the
process compiles every case, then times them when asked. Everything is
measured ``cycles`` times, interleaved, so that every figure sees the same
machine load: in each cycle every setting's process times each case (median
of ``repeats`` rounds) and samples the matmul peak of the case's precision
(2048², best of 3) after it; then, with ``--torch_python`` (an interpreter
that has torch), ``benchmarks/torch_round.py`` runs in each precision (eager,
and with ``--torch_compile`` also ``torch.compile``d; bfloat16 under
``torch.autocast``), each followed by a peak sample. Each figure is the median
over the cycles. The peak of a precision is the best of the settings' medians
(what this machine's XLA reached on a plain matmul in this run); the round's
own GEMM shapes (the dense layer and LeNet's second convolution at the round's
batch) are timed too. Ratios are of figures of this one run.
"""

import collections
import json
import os
import statistics
import subprocess
import sys

from absl import app
from absl import flags
import jax

from adjax import conv
from adjax import rounds
from benchmarks import common

_BATCH_SIZES = flags.DEFINE_list('batch_sizes', ['10', '64'], 'Minibatch sizes to time.')
_METHODS = flags.DEFINE_list('methods', ['adib', 'adim'], 'Methods to time.')
_PRECISIONS = flags.DEFINE_list('precisions', ['float32'], 'config.precision values to time (float32, bfloat16).')
_XLA = flags.DEFINE_list('xla', ['default'], 'XLA:CPU settings to time (XLA_SETTINGS), each in its own process.')
_REPEATS = flags.DEFINE_integer('repeats', 5, 'Timed rounds per case and cycle (median).')
_CYCLES = flags.DEFINE_integer('cycles', 3, 'Interleaved measurement cycles (median over them).')
_OUT = flags.DEFINE_string('out', None, 'Also write the JSON here.')
_TORCH_PYTHON = flags.DEFINE_string('torch_python', None, 'A Python with torch: also time benchmarks/torch_round.py.')
_TORCH_DEVICE = flags.DEFINE_string('torch_device', 'cpu', "torch's device for that comparison (cpu, cuda).")
_TORCH_COMPILE = flags.DEFINE_bool('torch_compile', False, 'Also time the torch.compile round.')
_TINY = flags.DEFINE_bool('tiny', False, 'One update per player on 100 examples (the tests run it so it cannot rot).')
_WORKER = flags.DEFINE_bool('worker', False, 'Internal: time the cases when asked on stdin (one XLA setting).')
UPDATES = common.UPDATES

#: XLA:CPU settings by name: the flags each adds to ``XLA_FLAGS`` (jaxlib's own kernel libraries).
XLA_SETTINGS = {
  'default': '',
  # oneDNN thunks for matmul and convolution fusions.
  'onednn': '--xla_cpu_use_onednn=true',
  # Convolutions and dots each handed to XNNPACK as its own fusion.
  'xnn': '--xla_cpu_experimental_xnn_fusion_type=INDIVIDUAL_CONVOLUTION,INDIVIDUAL_DOT',
  'xnn_conv': '--xla_cpu_experimental_xnn_fusion_type=INDIVIDUAL_CONVOLUTION',
  'xnn_dot': '--xla_cpu_experimental_xnn_fusion_type=INDIVIDUAL_DOT',
  # oneDNN fusions of dots and the elementwise operations around them.
  'onednn_fusion': '--xla_cpu_experimental_onednn_fusion_type=DOT,ELTWISE',
  # The broad XNN fusions (dots with their elementwise neighbours, reductions).
  'xnn_broad': '--xla_cpu_experimental_xnn_fusion_type=DOT,ELTWISE,REDUCE',
}
_REPLY = '@@ '  # marks the worker's answers on its stdout


def cases() -> list[tuple[str, int, str]]:
  return [(m, b, p) for p in _PRECISIONS.value for b in map(int, _BATCH_SIZES.value) for m in _METHODS.value]


def round_flops(method: str, batch_size: int, precision: str) -> float:
  """FLOPs of a round: XLA's count for one update of each player, times its updates."""
  total = 0.0
  for name, k in UPDATES.items():
    one = {key: int(key == name) for key in UPDATES}
    game, state, train = common.setup(method, batch_size, one, _TINY.value, precision=precision)
    state, train = jax.tree.map(lambda a: a[0], state), {**train, 'index': train['index'][0]}
    play = jax.jit(lambda s, d, game=game: rounds.play_round(game, s, d))
    # The HLO before backend passes: the same count on every backend (GPU's compiled
    # cost analysis does not count cuDNN convolutions).
    total += (1 if _TINY.value else k) * play.lower(state, train).cost_analysis()['flops']
  return total


def round_timer(method: str, batch_size: int, precision: str):
  """A function that times ``repeats`` rounds of the case (one seed) and returns their median."""
  game, state, train = common.setup(method, batch_size, UPDATES, _TINY.value, precision=precision)
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
  cases_ = {
    'dense_3136x1024': (jax.jit(lambda a, w: a @ w), (dense_a, dense_w), 2 * batch_size * 3136 * 1024),
    'conv_5x5x32x64_14x14': (jax.jit(conv.conv_same), (conv_x, conv_w), 2 * batch_size * 14 * 14 * 25 * 32 * 64),
  }
  out = {}
  for name, (f, args, flops) in cases_.items():
    jax.block_until_ready(f(*args))
    out[name] = flops / common.median_seconds(lambda: f(*args), repeats)
  return out


def worker() -> None:
  """One XLA setting's process: compiles every case, then answers the parent's commands on stdin (``cycle``: each
  case timed, a peak sample after each; ``peak``: a peak sample per precision; ``flops``: FLOP counts)."""
  timers = {case: round_timer(*case) for case in cases()}
  peaks = {p: common.MatmulPeak(dtype=p) for p in _PRECISIONS.value}
  reply = lambda obj: print(_REPLY + json.dumps(obj), flush=True)
  reply('ready')
  for line in sys.stdin:
    command = line.strip()
    if command == 'cycle':
      reply([[*case, timers[case](_REPEATS.value), peaks[case[2]].sample()] for case in timers])
    elif command == 'peak':
      reply({p: peak.sample() for p, peak in peaks.items()})
    elif command == 'flops':
      flops = [[*case, round_flops(*case)] for case in timers]
      reply({'round': flops, 'gemm': {b: gemm_flops(int(b)) for b in _BATCH_SIZES.value}})


class Worker:
  """A running ``worker()`` process of one XLA setting; started when made (it compiles before this returns)."""

  def __init__(self, setting: str):
    env = dict(os.environ, XLA_FLAGS=f'{os.environ.get("XLA_FLAGS", "")} {XLA_SETTINGS[setting]}'.strip())
    flags_ = [a for a in sys.argv[1:] if not a.startswith(('--xla=', '--out=', '--torch'))]
    args = [sys.executable, '-m', 'benchmarks.round_time', '--worker', *flags_]
    self.proc = subprocess.Popen(args, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    self.setting = setting
    self.read()

  def read(self):
    for line in self.proc.stdout:
      if line.startswith(_REPLY):
        return json.loads(line[len(_REPLY) :])
    raise RuntimeError(f'the {self.setting} worker stopped (exit {self.proc.wait()}); its stderr is above')

  def ask(self, command: str):
    self.proc.stdin.write(command + '\n')
    self.proc.stdin.flush()
    return self.read()

  def close(self):
    self.proc.stdin.close()
    self.proc.wait()


def torch_seconds(python: str, precision: str, repeats: int, compiled: bool) -> tuple[dict, str]:
  script = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'torch_round.py')
  args = [python, script, f'--batch_sizes={",".join(_BATCH_SIZES.value)}', f'--methods={",".join(_METHODS.value)}']
  args += [f'--device={_TORCH_DEVICE.value}', f'--repeats={repeats}', f'--precision={precision}']
  args += ['--compile'] if compiled else []
  proc = subprocess.run(args, capture_output=True, text=True, check=True)
  report = json.loads(proc.stdout.strip().splitlines()[-1])
  return {(c['method'], c['batch_size']): c['seconds_per_round'] for c in report['cases']}, report['torch']


def main(argv):
  del argv
  if _WORKER.value:
    return worker()
  unknown = [s for s in _XLA.value if s not in XLA_SETTINGS]
  if unknown:
    raise app.UsageError(f'--xla: unknown {", ".join(unknown)}; choose from {", ".join(XLA_SETTINGS)}')
  workers = [Worker(setting) for setting in _XLA.value]  # one after another: a compile has the cores alone
  torch_modes = ['eager'] + (['compiled'] if _TORCH_COMPILE.value else []) if _TORCH_PYTHON.value else []
  samples, peaks, version = collections.defaultdict(list), collections.defaultdict(list), None
  counted = workers[0].ask('flops')
  for cycle in range(_CYCLES.value):  # interleaved: every figure sees the same machine load
    for w in workers:
      for method, b, precision, seconds, peak in w.ask('cycle'):
        samples[w.setting, method, b, precision].append(seconds)
        peaks[w.setting, precision].append(peak)
    for mode in torch_modes:
      for precision in _PRECISIONS.value:
        seconds, version = torch_seconds(_TORCH_PYTHON.value, precision, _REPEATS.value, mode == 'compiled')
        for (method, b), s in seconds.items():
          samples[f'torch_{mode}', method, b, precision].append(s)
        for p, peak in workers[0].ask('peak').items():
          peaks[workers[0].setting, p].append(peak)
    report = {**summary(samples, peaks, counted, torch_modes), 'cycles_done': cycle + 1}
    if version:
      report['torch'] = version
    if _OUT.value:  # after every cycle: a long run stopped early keeps what it measured
      common.write_report(report, _OUT.value, echo=False)
      with open(os.path.splitext(_OUT.value)[0] + '.md', 'w') as f:
        f.write(markdown(report, torch_modes))
  for w in workers:
    w.close()
  common.write_report(report, None)


def markdown(report: dict, torch_modes: list[str]) -> str:
  """The report's cases as a table: a row per method, batch size, precision and XLA setting."""
  default = next(iter(report['xla_settings']))
  head = ['round', 'precision', 'XLA:CPU', 's/round', 'GFLOP/s (of peak)', f'vs {default}']
  for mode in torch_modes:
    head += [f'PyTorch {mode} s/round', 'adjax speed-up']
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for c in sorted(report['cases'], key=lambda c: (c['batch_size'], c['method'], c['precision'])):
    row = [f'{c["method"].upper()}, batch {c["batch_size"]}', c['precision'], c['xla'], f'{c["seconds_per_round"]:.3f}']
    row += [f'{c["achieved_flops_per_second"] / 1e9:.0f} ({100 * c["fraction_of_matmul_peak"]:.0f} %)']
    row += [f'{c[f"speedup_over_{default}"]:.2f}x']
    for mode in torch_modes:
      row += [f'{c[f"torch_{mode}_seconds_per_round"]:.3f}', f'{c[f"speedup_over_torch_{mode}"]:.2f}x']
    lines.append('| ' + ' | '.join(row) + ' |')
  peaks = ', '.join(f'{p} {v / 1e9:.0f} GFLOP/s' for p, v in report['matmul_peak_flops'].items())
  return '\n'.join(lines) + f'\n\nMatmul peak (2048², median of the best setting): {peaks}.\n'


def summary(samples: dict, peaks: dict, counted: dict, torch_modes: list[str]) -> dict:
  median = {key: statistics.median(v) for key, v in samples.items()}
  peak_by_setting = collections.defaultdict(dict)
  for (setting, precision), v in peaks.items():
    peak_by_setting[setting][precision] = statistics.median(v)
  peak = {p: max(by[p] for by in peak_by_setting.values()) for p in _PRECISIONS.value}
  flops = {(m, b, p): f for m, b, p, f in counted['round']}
  num_updates = sum(UPDATES.values())
  report = {
    'device': jax.devices()[0].device_kind,
    'matmul_peak_flops': peak,
    'matmul_peak_by_setting': peak_by_setting,
    'xla_settings': {s: XLA_SETTINGS[s] for s in _XLA.value},
    'updates_per_round': UPDATES,
    'cycles': _CYCLES.value,
    'repeats': _REPEATS.value,
    'cases': [],
  }
  default = _XLA.value[0]
  for setting in _XLA.value:
    for method, b, precision in cases():
      s, f = median[setting, method, b, precision], flops[method, b, precision]
      case = {
        'method': method,
        'batch_size': b,
        'precision': precision,
        'xla': setting,
        'seconds_per_round': s,
        'seconds_per_cycle': samples[setting, method, b, precision],
        'updates_per_second': num_updates / s,
        'round_flops': f,
        'achieved_flops_per_second': f / s,
        'fraction_of_matmul_peak': f / s / peak[precision],
        f'speedup_over_{default}': median[default, method, b, precision] / s,
      }
      for mode in torch_modes:
        case[f'torch_{mode}_seconds_per_round'] = median[f'torch_{mode}', method, b, precision]
        case[f'speedup_over_torch_{mode}'] = median[f'torch_{mode}', method, b, precision] / s
      report['cases'].append(case)
    for b in map(int, _BATCH_SIZES.value):
      for p in _PRECISIONS.value:
        if {'adib', 'adim'} <= set(_METHODS.value):
          ratio = median[setting, 'adim', b, p] / median[setting, 'adib', b, p]
          report.setdefault('adim_over_adib', {})[f'{setting}/{p}/{b}'] = ratio
          report.setdefault('adim_over_adib_flops', {})[f'{p}/{b}'] = flops['adim', b, p] / flops['adib', b, p]
  report['gemm_flops_per_second'] = counted['gemm']
  return report


if __name__ == '__main__':
  app.run(main)
