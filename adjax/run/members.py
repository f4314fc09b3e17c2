"""Where a run's members live: their initial states, their data (one shared pool, each member's indices) and their
arrays on the mesh (padded to a multiple of its ``members`` axis with copies of member 0, never reported).
Checkpoints hold only the real members (``Members.get``), so a run resumes on another number of devices."""

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from adjax import data as data_lib
from adjax import game as game_lib
from adjax import parallel


def init_member(game: game_lib.Game, config: ml_collections.ConfigDict, data: game_lib.Split):
  """One member's initial state (its seed's key, its swept values) as host arrays."""
  return jax.device_get(game_lib.init_state(game, jax.random.key(config.seed), data, config))


def init_members(game: game_lib.Game, configs: list[ml_collections.ConfigDict], data: game_lib.Split):
  """Each config's initial state (its seed's key, its swept values), stacked on a leading member axis as host
  arrays (``data``: examples shaped as the players see them). Filled one member at a time: the stack and one
  member's state are in memory, not every member's state twice."""
  stacked = None
  for i, c in enumerate(configs):
    one = init_member(game, c, data)
    if stacked is None:
      stacked = jax.tree.map(lambda a: np.empty((len(configs), *np.shape(a)), np.asarray(a).dtype), one)
    jax.tree.map(lambda out, a: out.__setitem__(i, a), stacked, one)
  return stacked


def load_members(configs: list[ml_collections.ConfigDict], source: data_lib.Source) -> data_lib.Splits:
  """Each member's indices (and means), stacked on a leading axis, into the one shared pool of examples (seeds draw
  different subsamples; a seed's are drawn once)."""
  by_seed = {}
  for c in configs:
    if c.seed not in by_seed:
      by_seed[c.seed] = data_lib.load(c, source)
  per_member = [by_seed[c.seed] for c in configs]
  first = per_member[0]
  return data_lib.Splits(
    first.pool,
    {k: np.stack([sp.index[k] for sp in per_member]) for k in first.index},
    first.num_classes,
    {k: np.stack([sp.mean[k] for sp in per_member]) for k in first.mean},
  )


class Members:
  """A run's members on a mesh: their count (padded to a multiple of the mesh's ``members`` axis), and moving
  their arrays there and back."""

  def __init__(self, mesh: jax.sharding.Mesh, count: int, splits: data_lib.Splits):
    self.mesh, self.count, self.size = mesh, count, parallel.padded(count, mesh)
    self.splits = splits
    self._pool = None

  def put(self, tree):
    """Host arrays ``[count, ...]`` as arrays ``[size, ...]`` split over the mesh's members axis."""
    host = jax.tree.map(np.asarray, tree)
    return parallel.place(parallel.pad(host, self.size), self.mesh, parallel.P(parallel.MEMBERS))

  def put_each(self, member):
    """``put`` of the members' trees ``member(i)``, made one at a time: on one device of one process each is
    written in place into the stacked arrays, so the members' stack never exists on the host as well."""
    if jax.process_count() > 1 or self.mesh.devices.size > 1:
      return self.put(jax.tree.map(lambda *a: np.stack(a), *(member(i) for i in range(self.count))))
    first = member(0)
    sharding = jax.sharding.NamedSharding(self.mesh, parallel.P(parallel.MEMBERS))
    zeros = lambda: jax.tree.map(lambda a: jnp.zeros((self.size, *np.shape(a)), np.asarray(a).dtype), first)
    stacked = jax.jit(zeros, out_shardings=sharding)()
    for i in range(self.count):
      stacked = _set_member(stacked, first if i == 0 else member(i), i)
    return stacked

  def checkpointable(self, tree):
    """``tree`` as the checkpoint takes it: the arrays themselves on one device of one process (orbax writes them
    with the least memory), else the real members on the host."""
    if jax.process_count() == 1 and self.mesh.devices.size == 1:
      return tree
    return self.get(tree)

  def get(self, tree):
    """The real members' arrays ``[count, ...]`` on the host (every process)."""
    return jax.tree.map(lambda a: a[: self.count], parallel.fetch(tree))

  def data(self, split: str) -> game_lib.Data:
    """A split as the programs read it: the pool (one copy per device, placed once), the members' indices."""
    if self._pool is None:
      self._pool = parallel.place(self.splits.pool, self.mesh, parallel.P())
    data = self.splits.data(split)
    return {'pool': self._pool, **self.put({'index': data['index'], 'mean': data['mean']})}

  def select(self, pick_S: np.ndarray, new, old):
    """Per member: ``new``'s arrays where ``pick_S``, else ``old``'s (leading member axis)."""
    return _where(self.put(pick_S), new, old)


@jax.jit
def _where(pick_S, new, old):
  return jax.tree.map(lambda n, o: jnp.where(pick_S.reshape(-1, *[1] * (n.ndim - 1)), n, o), new, old)


@functools.partial(jax.jit, donate_argnums=0)
def _set_member(stacked, one, i):
  return jax.tree.map(lambda s, o: jax.lax.dynamic_update_index_in_dim(s, o, i, 0), stacked, one)
