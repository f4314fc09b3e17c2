"""Runs of tests/test_parallel.py that need 4 CPU devices (set before JAX starts): ``python -m tests.sharded_runs OUT``.

Writes OUT (JSON): the results of the same runs on 1 and on 4 devices, the
device bytes that 16 members' data take, and data-parallel runs.
"""

import json
import sys
import tempfile

import jax

from adjax import sweeps
from adjax.run import members as members_lib

jax.config.update('jax_num_cpu_devices', 4)

from adjax import data as data_lib  # noqa: E402
from adjax import parallel  # noqa: E402
from adjax import train  # noqa: E402
from tests.test_train import DIAGNOSED  # noqa: E402
from tests.test_train import tiny_config  # noqa: E402

SWEEP = [{'game.nu': 0.5}, {'game.nu': 2.0}]


def _run(config, sweep=None):
  return train.train_and_evaluate(config, tempfile.mkdtemp(), sweep)


def _data_bytes(members: int) -> dict:
  """Device bytes of the training data of ``members`` members placed as a run places them, and what one copy is."""
  c = tiny_config('adim', num_seeds=members, n_train=3000, n_val=1000)
  configs = [sweeps.with_overrides(c, {'seed': s}) for s in range(members)]
  splits = members_lib.load_members(configs, data_lib.read(c))
  mesh = parallel.make_mesh(c)
  placed = members_lib.Members(mesh, members, splits).data('train')
  held = sum(s.data.nbytes for a in jax.tree.leaves(placed) for s in a.addressable_shards)
  pool = sum(a.nbytes for a in splits.pool.values())
  stacked = sum(v.nbytes for v in splits.split('train').values())  # what a copy per member would take
  index = splits.index['train'].nbytes
  return {'held': held, 'pool': pool, 'index': index, 'devices': len(mesh.devices.flat), 'stacked_copies': stacked}


def _split_baseline() -> dict:
  """The batch-mean baseline of a minibatch split over 2 devices of the ``batch`` axis, and the whole one's mean."""
  import jax.numpy as jnp

  from adjax import estimators

  c = tiny_config('adim', batch_size=10)
  c.mesh.devices, c.mesh.batch = 2, 2
  mesh = parallel.make_mesh(c)
  reward_B = jnp.arange(10.0) ** 2
  split = jax.shard_map(
    lambda r: estimators.baseline_value('batch_mean', r, 0.0, parallel.BATCH),
    mesh=mesh,
    in_specs=parallel.P(parallel.BATCH),
    out_specs=parallel.P(),
  )
  return {'split': float(split(reward_B)), 'whole': float(jnp.mean(reward_B))}


def main(out: str) -> None:
  assert len(jax.devices()) == 4, jax.devices()
  results = {}
  sweep_config = tiny_config('adim', num_seeds=3, rounds=1, diagnostics=DIAGNOSED)  # diagnostics: padded members too
  for devices in (1, 4):  # 2 points x 3 seeds = 6 members: on 4 devices, 2 padding members
    sweep_config.mesh.devices = devices
    results[f'sweep_{devices}'] = _run(sweep_config, SWEEP)
  for method, batches in (('student', (1, 2)), ('adim', (2,))):  # data parallelism: each minibatch over 2 devices
    for batch in batches:
      c = tiny_config(method, num_seeds=2, batch_size=10, rounds=1)
      c.mesh.devices, c.mesh.batch = 4, batch
      results[f'{method}_batch_{batch}'] = _run(c)
  results['bytes_16'] = _data_bytes(16)
  results['baseline'] = _split_baseline()
  with open(out, 'w') as f:
    json.dump(results, f)


if __name__ == '__main__':
  main(sys.argv[1])
