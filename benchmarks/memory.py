r"""Peak memory of a run against the number of vmapped members, and what a member costs beyond its state.

  python -m benchmarks.memory [--members=1,4,16] [--method=adim] [--rounds=1] [--out=FILE]

Each count runs in its own process: ``train_and_evaluate`` of that many
seeds (the benchmark round's config, ``benchmarks/common.py``: MNIST
models, batch 10, n_train = 1000, n_val = 1000) for ``rounds`` rounds,
checkpoints included; the process reports its peak resident memory (Linux
``VmHWM``) and XLA's memory analysis of the round program (arguments,
temporaries). The report gives per count the peak, the marginal memory per
member (the slope between consecutive counts) and, per member, the
theoretical state: parameters, the two Adam moments and the best-so-far
parameters of every player, and its share of the data (its indices; the
examples are held once).
"""

import itertools
import json
import os
import subprocess
import sys
import tempfile

from absl import app
from absl import flags
import jax

from adjax import rounds
from adjax import train as train_lib
from benchmarks import common

_MEMBERS = flags.DEFINE_list('members', ['1', '4', '16'], 'Member counts to measure.')
_METHOD = flags.DEFINE_enum('method', 'adim', ['adib', 'adim'], 'The method.')
_ROUNDS = flags.DEFINE_integer('rounds', 1, 'Rounds of each run (after pretraining).')
_TINY = flags.DEFINE_bool('tiny', False, 'One update per player on 100 examples (the tests run it so it cannot rot).')
_OUT = flags.DEFINE_string('out', None, 'Also write the JSON here.')
_CHILD = flags.DEFINE_integer('child', 0, 'Internal: measure this member count in this process.')


def child(members: int) -> dict:
  """One run of ``members`` seeds in this process: its peak memory and XLA's view of the round program."""
  config = common.round_config(_METHOD.value, 10, tiny=_TINY.value)
  config.n_val, config.rounds, config.num_seeds = 100 if _TINY.value else 1000, _ROUNDS.value, members
  game, one, data = common.setup(_METHOD.value, 10, tiny=_TINY.value)
  # The program's memory for ``members`` members, from shapes alone (their arrays would take the memory measured).
  state = jax.tree.map(lambda a: jax.ShapeDtypeStruct((members, *a.shape[1:]), a.dtype), one)
  data = {**data, 'index': jax.ShapeDtypeStruct((members, *data['index'].shape[1:]), data['index'].dtype)}
  analysis = rounds.compile_fns(game).play_round.jitted.lower(state, data, None).compile().memory_analysis()
  sizes = common.state_bytes(game, one)
  del one, data
  with tempfile.TemporaryDirectory() as workdir:
    train_lib.train_and_evaluate(config, workdir)
  return {
    'members': members,
    'peak_resident_bytes': common.peak_resident_bytes(),
    'round_program': {
      'argument_bytes': analysis.argument_size_in_bytes,
      'temp_bytes': analysis.temp_size_in_bytes,
      'output_bytes': analysis.output_size_in_bytes,
      'alias_bytes': analysis.alias_size_in_bytes,
    },
    'state_bytes_per_member': sizes,
    'data_index_bytes_per_member': 4 * (config.n_train + config.n_val),
  }


def main(argv):
  del argv
  if _CHILD.value:
    print(json.dumps(child(_CHILD.value)))
    return
  cases = []
  for k in map(int, _MEMBERS.value):
    args = [sys.executable, '-m', 'benchmarks.memory', f'--child={k}', f'--method={_METHOD.value}']
    args += [f'--rounds={_ROUNDS.value}'] + (['--tiny'] if _TINY.value else [])
    proc = subprocess.run(args, capture_output=True, text=True, check=True, env=os.environ)
    cases.append(json.loads(proc.stdout.strip().splitlines()[-1]))
  for before, after in itertools.pairwise(cases):
    slope = (after['peak_resident_bytes'] - before['peak_resident_bytes']) / (after['members'] - before['members'])
    after['bytes_per_added_member'] = slope
    per_member_state = after['state_bytes_per_member']['total'] + after['data_index_bytes_per_member']
    after['per_member_over_state'] = slope / per_member_state
  report = {'method': _METHOD.value, 'rounds': _ROUNDS.value, 'cases': cases}
  common.write_report(report, _OUT.value)


if __name__ == '__main__':
  app.run(main)
