r"""Where a round's time goes: one ADIM (or ADIB) round under ``jax.profiler``, by category.

  python -m benchmarks.round_profile [--batch_sizes=10,64] [--method=adim] [--rounds=3] [--host_rounds=2] \
      [--out=FILE]

XLA:CPU records every thunk it runs (a fusion, a convolution, a dot, a copy,
a loop) in the profiler's trace, named by its HLO instruction. Each
instruction of the compiled round is put in one category by the HLO it
computes and the JAX name stack in its metadata (``adjax/rounds.py`` and
``adjax/conv.py`` open named scopes for this): convolutions forward /
backward-input / backward-kernel, dense layers forward / backward, the
held-fixed players' batched forward passes, optimizer updates, sampling and
RNG, augmentation, minibatch gathers, copies and transposes, and the rest
(losses, activations, pooling). Self time (a loop's time without its body's
thunks) is summed over the XLA threads, and reported per round as seconds of
thread time and as its share of all thunk time.

Host overhead between rounds: the training loop's seconds per round (the
difference of two in-process ``train_and_evaluate`` runs, ``1`` and
``1 + host_rounds`` rounds: same compiled programs) against the bare round;
the difference is evaluation, selection, logging and the checkpoint (written
in the background while the next round runs, where it still competes for the
cores). A difference of whole runs: meaningful at the benchmark's sizes and
several ``host_rounds``, noise with ``--tiny``.
"""

import collections
import glob
import os
import re
import tempfile

from absl import app
from absl import flags
import jax

from adjax import rounds
from adjax import train as train_lib
from benchmarks import common

CATEGORIES = (
  'conv forward',
  'conv backward-input',
  'conv backward-kernel',
  'dense forward',
  'dense backward',
  'fixed players forward',
  'optimizer',
  'sampling and RNG',
  'augmentation',
  'minibatch gathers',
  'copies and transposes',
  'other (losses, activations, pooling)',
)

_INSTRUCTION = re.compile(r'^\s*(?:ROOT )?%?([\w.\-]+) = (?:\([^=]*?\)|\S+) ([\w\-]+)\((.*)$')
_COMPUTATION = re.compile(r'^(?:ENTRY )?%?([\w.\-]+) .*\{\s*$')
_OP_NAME = re.compile(r'op_name="([^"]*)"')
_CALLS = re.compile(r'calls=%?([\w.\-]+)')


def parse_hlo(text: str) -> tuple[dict, dict]:
  """``(instructions, computations)`` of an HLO module's text: name → ``(opcode, op_name, called computation)``,
  and computation name → its instructions' ``[(opcode, op_name)]``."""
  instructions, computations, current = {}, collections.defaultdict(list), None
  for line in text.splitlines():
    if (m := _COMPUTATION.match(line)) and ' = ' not in line:
      current = m.group(1)
      continue
    if (m := _INSTRUCTION.match(line)) is None:
      continue
    name, opcode, rest = m.groups()
    op_name = (_OP_NAME.search(rest) or [None, ''])[1]
    calls = (_CALLS.search(rest) or [None, None])[1]
    instructions[name] = (opcode, op_name, calls)
    computations[current].append((opcode, op_name))
  return instructions, computations


def categorize(name: str, instructions: dict, computations: dict) -> str:
  """The category of the thunk that runs HLO instruction ``name``."""
  opcode, op_name, calls = instructions.get(name, ('', '', None))
  inner = computations.get(calls, []) if opcode in ('fusion', 'custom-call') else []
  opcodes = {opcode} | {o for o, _ in inner}
  names = ' '.join([op_name] + [n for _, n in inner])
  conv, dot = 'convolution' in opcodes, 'dot' in opcodes
  copies = {'copy', 'transpose', 'bitcast', 'parameter', 'tuple', 'get-tuple-element'}
  rules = (  # the first that holds
    ('optimizer' in names, 'optimizer'),
    ('augment' in names, 'augmentation'),
    ('fixed_players' in names, 'fixed players forward'),
    (conv and 'conv_backward_input' in names, 'conv backward-input'),
    (conv and 'conv_backward_kernel' in names, 'conv backward-kernel'),
    (conv, 'conv forward'),
    (dot and 'transpose(' in names, 'dense backward'),
    (dot, 'dense forward'),
    ('threefry' in names or 'random_bits' in names or 'rng' in opcodes, 'sampling and RNG'),
    ('draw_batches' in names or bool(opcodes & {'gather', 'dynamic-slice'}), 'minibatch gathers'),
    (opcodes <= copies or 'copy' in name, 'copies and transposes'),
    ('gumbel' in names, 'sampling and RNG'),
  )
  return next((category for hit, category in rules if hit), 'other (losses, activations, pooling)')


def thunk_self_times(xplane_path: str) -> dict[str, float]:
  """Seconds of self time per HLO instruction over the XLA threads of a trace (nested thunks subtracted)."""
  totals = collections.Counter()
  for plane in jax.profiler.ProfileData.from_file(xplane_path).planes:
    for line in plane.lines:
      if not line.name.startswith('tf_XLA'):
        continue
      events = sorted(
        ((e.start_ns, e.duration_ns, e.name) for e in line.events if not e.name.startswith('ThunkExecutor')),
        key=lambda e: (e[0], -e[1]),
      )
      stack = []  # (end, name) of the enclosing thunks
      for start, duration, name in events:
        while stack and stack[-1][0] <= start:
          stack.pop()
        if stack:
          totals[stack[-1][1]] -= duration
        totals[name] += duration
        stack.append((start + duration, name))
  return {k: v / 1e9 for k, v in totals.items()}


def profile_round(method: str, batch_size: int, num_rounds: int, tiny: bool, members: int = 1) -> dict:
  """Seconds per round (median, untraced) and thread seconds per category of one traced round."""
  game, state, data = common.setup(method, batch_size, tiny=tiny, members=members)
  play_round = rounds.compile_fns(game).play_round
  hlo = play_round.jitted.lower(state, data, None).compile().as_text()
  instructions, computations = parse_hlo(hlo)
  holder = {'state': play_round(state, data)[0]}

  def one_round():
    holder['state'], metrics = play_round(holder['state'], data)
    return metrics

  seconds = common.median_seconds(one_round, max(3, num_rounds))
  with tempfile.TemporaryDirectory() as trace_dir:
    with jax.profiler.trace(trace_dir):
      for _ in range(num_rounds):
        common.timed(one_round)
    (path,) = glob.glob(os.path.join(trace_dir, '**', '*.xplane.pb'), recursive=True)
    times = thunk_self_times(path)
  by_category, top = collections.Counter(), collections.defaultdict(list)
  for name, t in sorted(times.items(), key=lambda item: -item[1]):
    category = categorize(name, instructions, computations)
    by_category[category] += t / num_rounds
    if len(top[category]) < 3:  # the category's largest thunks, to see what it is made of
      top[category].append(
        {'instruction': name, 'op_name': instructions.get(name, ('', ''))[1], 'thread_seconds': t / num_rounds}
      )
  total = sum(by_category.values())
  return {
    'seconds_per_round': seconds,
    'thunk_thread_seconds_per_round': total,
    'categories': {
      c: {'thread_seconds': by_category[c], 'share': by_category[c] / total if total else 0.0, 'top': top[c]}
      for c in CATEGORIES
    },
  }


def host_overhead(method: str, batch_size: int, host_rounds: int, tiny: bool, round_seconds: float) -> dict:
  """The training loop's seconds per round against the bare round's (see the module docstring)."""
  config = common.round_config(method, batch_size, tiny=tiny)
  config.n_val = 1000 if not tiny else 100

  def run(num_rounds: int, workdir: str):
    config.rounds = num_rounds
    return common.timed(lambda: train_lib.train_and_evaluate(config, workdir))

  with tempfile.TemporaryDirectory() as tmp:
    run(1, os.path.join(tmp, 'warm'))  # compiles every program
    t1 = run(1, os.path.join(tmp, 'one'))
    tn = run(1 + host_rounds, os.path.join(tmp, 'more'))
  loop = (tn - t1) / host_rounds
  return {
    'loop_seconds_per_round': loop,
    'bare_round_seconds': round_seconds,
    'host_overhead_seconds': loop - round_seconds,
    'n_val': config.n_val,
  }


def _define_flags() -> None:
  """The flags, defined only when this runs as a program: tests import its functions beside other modules' flags."""
  flags.DEFINE_list('batch_sizes', ['10', '64'], 'Minibatch sizes to profile.')
  flags.DEFINE_enum('method', 'adim', ['adib', 'adim'], 'The method whose round is profiled.')
  flags.DEFINE_integer('members', 1, 'Members (seeds) in the profiled program.')
  flags.DEFINE_integer('rounds', 3, 'Profiled rounds per batch size (the figures are per round).')
  flags.DEFINE_integer('host_rounds', 2, 'Rounds of the training loop timed for host overhead (0: skip).')
  flags.DEFINE_bool('tiny', False, 'One update per player on 100 examples (the tests run it so it cannot rot).')
  flags.DEFINE_string('out', None, 'Also write the JSON here.')


def main(argv):
  del argv
  f = flags.FLAGS
  report = {'device': jax.devices()[0].device_kind, 'method': f.method, 'members': f.members}
  report['updates_per_round'] = {k: 1 if f.tiny else v for k, v in common.UPDATES.items()}
  for b in map(int, f.batch_sizes):
    case = profile_round(f.method, b, f.rounds, f.tiny, f.members)
    if f.host_rounds:
      case['host'] = host_overhead(f.method, b, f.host_rounds, f.tiny, case['seconds_per_round'])
    report[f'batch_{b}'] = case
  common.write_report(report, f.out)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
