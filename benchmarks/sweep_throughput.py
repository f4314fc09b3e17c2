"""Sweep throughput: K configurations as one vmapped program against the same K run one after another.

  python -m benchmarks.sweep_throughput --out=FILE.json [--ks=1,4,16,64 --rounds=2]

The K configurations differ in ν (log-spaced over 1e-2..1e2, arrays in the
state), on the config's models and data (default: ADIM, mnist5k, n=100).
Vmapped: one state with K members, ``--rounds`` rounds of the compiled
program. Sequential: K one-member states, each run for ``--rounds`` rounds by
the one-member program, one after another. Both compile before timing and
are timed to ``block_until_ready`` in the same process. Writes the seconds
and the speed-up (sequential / vmapped) per K as JSON.
"""

import json
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import ml_collections
from ml_collections import config_flags
import numpy as np

from adjax import config as config_lib
from adjax import data as data_lib
from adjax import game as game_lib
from adjax import rounds
from adjax import sweeps
from adjax.run import members as members_lib

_OUT = flags.DEFINE_string('out', None, 'JSON output file.', required=True)
_KS = flags.DEFINE_list('ks', ['1', '4', '16', '64'], 'Numbers of configurations.')
_ROUNDS = flags.DEFINE_integer('rounds', 2, 'Timed rounds per configuration.')
_CONFIG = config_flags.DEFINE_config_file('config', 'experiments/configs/mnist.py', 'Base config.')


def timed_rounds(play_round, state, data, rounds: int) -> tuple[float, object]:
  t0 = time.perf_counter()
  for _ in range(rounds):
    state, _ = play_round(state, data, None)
  jax.block_until_ready(state)
  return time.perf_counter() - t0, state


def main(argv):
  del argv
  config = config_lib.validate(ml_collections.ConfigDict(_CONFIG.value.to_dict()))
  splits = data_lib.load(config)
  game = game_lib.build(config, splits.num_classes)
  play_round = rounds.compile_fns(game).play_round
  train = {k: jnp.asarray(v) for k, v in splits.split('train').items()}
  data_1 = train  # shapes for the initial states
  results = {'device_kind': jax.devices()[0].device_kind, 'method': config.method, 'n_train': config.n_train,
             'batch_size': config.batch_size, 'rounds': _ROUNDS.value, 'ks': {}}  # fmt: skip
  for k in (int(v) for v in _KS.value):
    configs = [sweeps.with_overrides(config, {'game.nu': float(nu)}) for nu in np.geomspace(1e-2, 1e2, k)]
    data_k = game_lib.as_data(train, members=k)
    state = members_lib.init_members(game, configs, data_1)
    _, state = timed_rounds(play_round, state, data_k, 1)  # compiles
    vmapped, _ = timed_rounds(play_round, state, data_k, _ROUNDS.value)
    del state
    data_one = game_lib.as_data(train, members=1)
    timed_rounds(play_round, members_lib.init_members(game, configs[:1], data_1), data_one, 1)  # compiles (once)
    sequential = 0.0
    for c in configs:
      seconds, _ = timed_rounds(play_round, members_lib.init_members(game, [c], data_1), data_one, _ROUNDS.value)
      sequential += seconds
    results['ks'][k] = {'vmapped_s': vmapped, 'sequential_s': sequential, 'speedup': sequential / vmapped}
    print(f'K={k}: vmapped {vmapped:.2f} s, sequential {sequential:.2f} s, speed-up {sequential / vmapped:.2f}x',
          flush=True)  # fmt: skip
  with open(_OUT.value, 'w') as f:
    json.dump(results, f, indent=1)


if __name__ == '__main__':
  app.run(main)
