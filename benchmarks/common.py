"""What the round benchmarks share: the benchmark round's game and data, timing, and the matmul peak.

The benchmark round is ADIB or ADIM on the MNIST models (MLP student, LeNet
teacher and discriminator), ``n_train = 1000``, no augmentation (as the
PyTorch rounds in ``benchmarks/torch_round.py``), k_d = 20, k_t = 10,
k_s = 10 updates.
"""

import json
import statistics
import time

import jax
import jax.numpy as jnp

from adjax import config as config_lib
from adjax import data
from adjax import game as game_lib
from adjax import sweeps
from adjax.run import members as members_lib
from experiments.configs import mnist

UPDATES = {'k_d': 20, 'k_t': 10, 'k_s': 10}


def round_config(method: str, batch_size: int, counts: dict = UPDATES, tiny: bool = False, precision='float32'):
  """The benchmark round's config; ``tiny``: one update per player on 100 examples (the tests run it so it cannot
  rot)."""
  c = mnist.get_config()
  c.method, c.batch_size, c.n_train, c.n_val, c.precision = method, batch_size, 1000, 100, precision
  c.k_d, c.k_t, c.k_s = counts['k_d'], counts['k_t'], counts['k_s']
  if tiny:
    c.n_train, c.k_d, c.k_t, c.k_s = 100, min(1, c.k_d), min(1, c.k_t), min(1, c.k_s)
  c.augment.rotation = c.augment.shift = c.augment.zoom = 0.0  # as the PyTorch round
  return config_lib.validate(c)


def setup(
  method: str, batch_size: int, counts: dict = UPDATES, tiny: bool = False, members: int = 1, precision='float32'
):
  """``(game, state, data)`` of the benchmark round, state and data with a leading axis of ``members`` seeds."""
  c = round_config(method, batch_size, counts, tiny, precision)
  splits = data.load(c)
  game = game_lib.build(c, splits.num_classes)
  train = {'x': jnp.asarray(splits.x_train), 'y': jnp.asarray(splits.y_train)}
  state = members_lib.init_members(game, [sweeps.with_overrides(c, {'seed': i}) for i in range(members)], train)
  one = game_lib.as_data(train)
  return game, state, {**one, 'index': jnp.broadcast_to(one['index'], (members, *one['index'].shape))}


def write_report(report: dict, out: str | None, echo: bool = True) -> None:
  """Prints a benchmark's JSON report (unless not ``echo``), and writes it to ``out`` if given."""
  text = json.dumps(report, indent=1)
  if echo:
    print(text)
  if out:
    with open(out, 'w') as f:
      f.write(text)


def timed(fn) -> float:
  """Seconds of one call of ``fn``, its result ready."""
  t0 = time.perf_counter()
  jax.block_until_ready(fn())
  return time.perf_counter() - t0


def median_seconds(fn, repeats: int) -> float:
  return statistics.median(timed(fn) for _ in range(repeats))


class MatmulPeak:
  """The matmul peak (``dtype``: float32 by default), sampled between the timed rounds (``sample()``) so that it
  sees the same machine load: ``flops()`` is the median of the samples' FLOP/s of an ``n x n`` matmul (each the
  best of ``inner`` calls)."""

  def __init__(self, n: int = 2048, inner: int = 3, dtype='float32'):
    self.n, self.inner, self.samples = n, inner, []
    self.a = jax.random.normal(jax.random.key(0), (n, n), dtype)
    self.f = jax.jit(lambda a: a @ a)
    jax.block_until_ready(self.f(self.a))

  def sample(self) -> float:
    best = min(timed(lambda: self.f(self.a)) for _ in range(self.inner))
    self.samples.append(2 * self.n**3 / best)
    return self.samples[-1]

  def flops(self) -> float:
    if not self.samples:
      self.sample()
    return statistics.median(self.samples)


def peak_resident_bytes() -> int:
  """This process's peak resident set size (``VmHWM``)."""
  with open('/proc/self/status') as f:
    line = next(line for line in f if line.startswith('VmHWM:'))
  return int(line.split()[1]) * 1024


def state_bytes(game, state) -> dict[str, int]:
  """Bytes per member of the state's parts: parameters, optimizer states, best-so-far parameters (the
  generators'), the rest."""
  one = jax.tree.map(lambda a: a[0], state)
  size = lambda tree: sum(a.nbytes for a in jax.tree.leaves(tree))
  players = [p for p in ('student', 'teacher', 'discriminator') if p in one]
  params = sum(size(one[p]['params']) for p in players)
  opt = sum(size(one[p]['opt_state']) for p in players)
  best = sum(size(one[p]['params']) for p in ('student', 'teacher') if p in one)
  return {'params': params, 'optimizer': opt, 'best_params': best, 'total': params + opt + best}
