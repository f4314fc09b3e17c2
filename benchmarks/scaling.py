r"""Members per second against the number of devices, and the cost of sharding against plain vmap.

  python -m benchmarks.scaling --members=8 --cpu_devices=4 --out=results/scaling.json

One process; ``--cpu_devices`` simulated CPU devices (on a machine with
accelerators, leave it 0: every accelerator is used). Per setting, ADIM rounds
of ``--members`` members: plain ``jit(vmap(round))`` on one device, and the
run's sharded program (``shard_map`` over the ``members`` mesh axis) on 1, 2,
4, … devices. Settings are interleaved, each timed ``--repeats`` times (the
median counts), so that the machine's drift hits them alike. On a 2-core CPU
simulated devices share the cores: expect no speed-up there, only the
overhead of sharding (sharded on 1 device / plain vmap).
"""

import functools
import json
import os
import time

from absl import app
from absl import flags
import jax

_CPU_DEVICES = flags.DEFINE_integer('cpu_devices', 0, 'Simulated CPU devices (0: the real devices).')
_MEMBERS = flags.DEFINE_integer('members', 8, 'Members (sweep points x seeds) per program.')
_ROUNDS = flags.DEFINE_integer('rounds', 2, 'Rounds per timing.')
_REPEATS = flags.DEFINE_integer('repeats', 3, 'Timings per setting (interleaved; the median is reported).')
_TINY = flags.DEFINE_bool('tiny', False, 'MLP players and few updates (the tests run it so that it cannot rot).')
_OUT = flags.DEFINE_string('out', 'scaling.json', 'JSON output.')


def _config():
  from experiments.configs import mnist

  c = mnist.get_config()
  c.n_train, c.n_val = 1000, 100
  c.augment.rotation = c.augment.shift = c.augment.zoom = 0.0
  if _TINY.value:
    c.student.model = c.teacher.model = c.discriminator.model = 'mlp'
    c.k_d = c.k_t = c.k_s = 2
  return c


def main(argv):
  del argv
  if _CPU_DEVICES.value:
    jax.config.update('jax_num_cpu_devices', _CPU_DEVICES.value)
  import numpy as np

  from adjax import config as config_lib
  from adjax import data as data_lib
  from adjax import game as game_lib
  from adjax import parallel
  from adjax import rounds
  from adjax import sweeps
  from adjax.run import members as members_lib

  config = config_lib.validate(_config())
  splits = data_lib.load(config)
  game = game_lib.build(config, splits.num_classes)
  k = _MEMBERS.value
  configs = [sweeps.with_overrides(config, {'game.nu': float(nu)}) for nu in np.geomspace(0.1, 10, k)]
  initial = jax.device_get(members_lib.init_members(game, configs, splits.split('train')))
  train_split = splits.split('train')
  counts = [d for d in (1, 2, 4, 8, 16, 32, 64) if d <= len(jax.devices()) and k % d == 0]

  settings = {}
  plain = jax.jit(
    jax.vmap(functools.partial(rounds.guarded_round, game), in_axes=(0, game_lib.DATA_AXES, None)),
    donate_argnums=(0,),
  )
  settings['vmap'] = (plain, lambda: (jax.device_put(initial), game_lib.as_data(train_split, members=k)))
  for d in counts:
    config.mesh.devices = d
    mesh = parallel.make_mesh(config)
    program = rounds.compile_fns(game, mesh).play_round
    members = parallel.P(parallel.MEMBERS)

    def setup(mesh=mesh, members=members):
      data = game_lib.as_data(train_split, members=k)
      placed = {
        'pool': parallel.place(data['pool'], mesh, parallel.P()),
        'index': parallel.place(data['index'], mesh, members),
        'mean': {},
      }
      return parallel.place(initial, mesh, members), placed

    settings[f'sharded_{d}'] = (program, setup)

  def timed(name):
    program, setup = settings[name]
    state, data = setup()
    t0 = time.perf_counter()
    for _ in range(_ROUNDS.value):
      state, _ = program(state, data, None)
    jax.block_until_ready(state)
    return (time.perf_counter() - t0) / _ROUNDS.value

  for name in settings:  # compile
    timed(name)
  seconds = {name: [] for name in settings}
  for _ in range(_REPEATS.value):
    for name in settings:
      seconds[name].append(timed(name))
  median = {name: float(np.median(s)) for name, s in seconds.items()}
  results = {
    'device_kind': jax.devices()[0].device_kind,
    'devices': len(jax.devices()),
    'members': k,
    'tiny': _TINY.value,
    'seconds_per_round': median,
    'members_per_second': {name: k / s for name, s in median.items()},
    'sharding_overhead_1_device': median['sharded_1'] / median['vmap'] - 1,
    'speedup_vs_1_device': {f'sharded_{d}': median['sharded_1'] / median[f'sharded_{d}'] for d in counts},
  }
  print(json.dumps(results, indent=1), flush=True)
  os.makedirs(os.path.dirname(os.path.abspath(_OUT.value)), exist_ok=True)
  with open(_OUT.value, 'w') as f:
    json.dump(results, f, indent=1)


if __name__ == '__main__':
  app.run(main)
