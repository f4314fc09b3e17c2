"""Members over devices and hosts, with JAX's own runtime: the mesh, placing and fetching arrays, processes.

A run's members (seeds x sweep points) are split over the ``members`` axis of
a ``jax.sharding.Mesh``; each device runs its share vmapped (``shard_map`` in
``adjax.rounds.compile_fns``). The examples are one replicated copy per device;
a member holds only its indices into them (``adjax.data.Splits``). An
optional ``batch`` axis splits each update's minibatch over devices (data
parallelism inside a member: gradients are averaged with ``lax.pmean``).
Several hosts form one runtime through ``jax.distributed.initialize``; every
process computes, process 0 alone writes (``is_writer``).
"""

import errno
import math
import socket
import time

import jax
from jax.experimental import multihost_utils
import numpy as np

from adjax.errors import ConfigError

MEMBERS, BATCH = 'members', 'batch'
P = jax.sharding.PartitionSpec
# How program data is split (``adjax.game.Data``): the shared pool on every device, a member's indices and means
# with the member.
DATA_SPECS = {'pool': P(), 'index': P(MEMBERS), 'mean': P(MEMBERS)}


MEMBER_LOOPS = ('auto', 'vmap', 'loop')  # mesh.members: how a device runs its members (adjax.rounds.member_loop)


def check(config) -> None:
  """Refuses a mesh the devices or the batch cannot take, naming the field (before any work)."""
  available, m = jax.local_device_count(), config.mesh
  if m.devices < 0 or m.devices > available:
    raise ConfigError(
      f'mesh.devices={m.devices}, but this process sees {available} devices; use 1..{available} (0 = all)'
    )
  if m.batch < 1 or config.batch_size % m.batch:
    raise ConfigError(
      f'mesh.batch={m.batch} data-parallel ways cannot split batch_size={config.batch_size}; '
      f'use a divisor of {config.batch_size}'
    )
  if m.members not in MEMBER_LOOPS:
    raise ConfigError(f'mesh.members={m.members!r}: use one of {", ".join(map(repr, MEMBER_LOOPS))}')
  used = (m.devices or available) * jax.process_count()
  if used % m.batch:
    raise ConfigError(f'mesh.batch={m.batch} must divide the {used} devices used (mesh.devices={m.devices})')


def make_mesh(config, members: int | None = None) -> jax.sharding.Mesh:
  """``members x batch`` over the first ``mesh.devices`` devices of every process, in process order. With
  ``mesh.devices=0``, all of them, but no more members-axis devices than ``members`` needs (a run of one member on
  8 GPUs takes one GPU, not 8 with 7 padding copies)."""
  check(config)
  per_process = config.mesh.devices or jax.local_device_count()
  if not config.mesh.devices and members is not None:
    needed = math.ceil(members / jax.process_count()) * config.mesh.batch
    per_process = max(config.mesh.batch, min(per_process, needed) // config.mesh.batch * config.mesh.batch)
  by_process = {}
  for d in jax.devices():
    by_process.setdefault(d.process_index, []).append(d)
  devices = [d for p in sorted(by_process) for d in by_process[p][:per_process]]
  shape = (len(devices) // config.mesh.batch, config.mesh.batch)
  return jax.sharding.Mesh(np.array(devices).reshape(shape), (MEMBERS, BATCH))


def single_device() -> jax.sharding.Mesh:
  """The mesh of the first device alone (tests and benchmarks that call the programs directly)."""
  return jax.sharding.Mesh(np.array(jax.devices()[:1]).reshape(1, 1), (MEMBERS, BATCH))


def padded(members: int, mesh: jax.sharding.Mesh) -> int:
  """The member count the mesh runs: ``members`` rounded up to a multiple of the members axis."""
  ways = mesh.shape[MEMBERS]
  return math.ceil(members / ways) * ways


def pad(tree, size: int):
  """Host arrays with a leading member axis, padded to ``size`` with copies of member 0 (never reported)."""
  return jax.tree.map(lambda a: np.concatenate([a, np.repeat(a[:1], size - a.shape[0], axis=0)]), tree)


def place(tree, mesh: jax.sharding.Mesh, spec):
  """Host arrays (the same in every process) as global arrays on ``mesh``, split as ``spec`` (a prefix pytree)."""

  def one(s, a):
    a = np.asarray(a)
    return jax.make_array_from_callback(a.shape, jax.sharding.NamedSharding(mesh, s), lambda i: a[i])

  return jax.tree.map(lambda s, t: jax.tree.map(lambda a: one(s, a), t), spec, tree, is_leaf=_is_spec)


def _is_spec(x) -> bool:
  return isinstance(x, P)


def fetch(tree):
  """Global arrays as host numpy arrays, in every process (gathered over processes when there are several)."""
  if jax.process_count() == 1:
    return jax.tree.map(np.asarray, jax.device_get(tree))
  return jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))


def is_writer() -> bool:
  """Only process 0 writes results, tables, plots, TensorBoard and the teacher cache (checkpoints are saved by all
  processes together)."""
  return jax.process_index() == 0


def any_process(flag: bool) -> bool:
  """Whether ``flag`` holds in any process (every process gets the same answer; no communication in one)."""
  if jax.process_count() == 1:
    return flag
  return bool(np.asarray(multihost_utils.process_allgather(np.array(flag))).any())


def initialize(coordinator_address: str, num_processes: int | None, process_id: int | None, timeout_s: int) -> None:
  """Joins the processes of a multi-host run into one JAX runtime (``jax.distributed.initialize``).

  Empty ``coordinator_address`` with no counts: JAX detects the cluster
  (SLURM, TPU pods, …) itself. On CPU the processes talk through gloo. An
  address that cannot be reached fails within ``timeout_s`` seconds.
  """
  if num_processes is not None and num_processes < 1:
    raise ConfigError(f'num_processes={num_processes} must be at least 1')
  if process_id is not None and num_processes is not None and not 0 <= process_id < num_processes:
    raise ConfigError(
      f'process_id={process_id} is out of range for num_processes={num_processes}: use 0..{num_processes - 1}'
    )
  if coordinator_address:
    host, _, port = coordinator_address.rpartition(':')
    if not host or not port.isdigit():
      raise ConfigError(f'coordinator_address={coordinator_address!r} must be HOST:PORT, e.g. 10.0.0.1:1234')
    if process_id == 0:  # process 0 runs the coordinator there
      _check_bindable(host, int(port), coordinator_address)
    elif process_id is not None:  # the others must reach it
      _wait_for(host, int(port), timeout_s, coordinator_address)
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  try:
    jax.distributed.initialize(coordinator_address or None, num_processes, process_id, initialization_timeout=timeout_s)
  except (ValueError, RuntimeError) as e:
    raise ConfigError(
      f'jax.distributed.initialize could not start ({str(e).splitlines()[0][:200]}); give --coordinator_address, '
      '--num_processes and --process_id, or run under a cluster JAX detects (SLURM, a TPU slice)'
    ) from None


def _check_bindable(host: str, port: int, address: str) -> None:
  """Process 0 serves the coordinator at ``address``: it must be this machine's, and the port free."""
  with socket.socket() as s:
    try:
      s.bind((host, port))
    except OSError as e:
      why = 'is in use' if e.errno == errno.EADDRINUSE else 'is not an address of this machine'
      raise ConfigError(
        f'coordinator_address={address!r} {why} ({e.strerror}); process 0 serves the coordinator there: give '
        "process 0's own host and a free port"
      ) from None


def _wait_for(host: str, port: int, timeout_s: int, address: str) -> None:
  """Fails with a one-line error when nothing listens at the coordinator within ``timeout_s`` seconds."""
  deadline = time.monotonic() + timeout_s
  while True:
    try:
      with socket.create_connection((host, port), timeout=2):
        return
    except OSError as e:
      if time.monotonic() > deadline:
        raise ConfigError(
          f'coordinator_address={address!r} could not be reached in {timeout_s} s ({e}); start process 0 '
          'there first, or check the address'
        ) from None
      time.sleep(0.5)
