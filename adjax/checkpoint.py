"""The one place adjax touches orbax: save and restore a run's arrays and its JSON metadata.

Every checkpoint proves itself: its metadata records the layout (path, shape, dtype) and a SHA-256 of every saved
array, and a digest of the metadata itself. ``restore`` checks all three, so a checkpoint whose bytes changed on disk
is reported as ``Damaged`` (the run falls back to the one before), and one written for another state as
``OtherLayout`` (a refusal), never restored silently.

In a run of one process, a save hashes and writes in a background thread while the next round computes, from a
copy of the arrays (the next ``save``, ``wait`` or ``close`` raises its error, so a failed write still stops the
run); a state larger than ``BACKGROUND_FRACTION`` of the memory it lives in is written in the foreground.
"""

from concurrent import futures
import ctypes
import hashlib
import json
import logging as py_logging  # a record's level is Python's, not absl's
import os
import shutil
import sys

from absl import logging
import jax
from jax.experimental import multihost_utils
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from adjax import workdir as workdir_lib

INTEGRITY = '_integrity'
BACKGROUND_FRACTION = 0.1  # of physical memory: the largest host copy a background save may hold


class Damaged(Exception):
  """A checkpoint whose files cannot be read or whose contents no longer match their digests."""


class OtherLayout(Exception):
  """A checkpoint of a state with other arrays (another version of adjax, or another config)."""


def _not_orbax(record) -> bool:
  """Drops orbax's INFO lines (one per save); its warnings and errors pass."""
  return '/orbax/' not in record.pathname or record.levelno > py_logging.INFO


def _late_tensorstore_callback(unraisable) -> bool:
  """After a failed read, tensorstore completes its other futures on orbax's closed event loop, and asyncio raises
  'Event loop is closed' in a callback: harmless (the failed read is reported), so not printed as a traceback."""
  tb = unraisable.exc_traceback
  while tb is not None and tb.tb_next is not None:
    tb = tb.tb_next
  return (
    isinstance(unraisable.exc_value, RuntimeError)
    and str(unraisable.exc_value) == 'Event loop is closed'
    and tb is not None
    and 'asyncio' in tb.tb_frame.f_code.co_filename
  )


def _install_unraisable_filter() -> None:
  previous = sys.unraisablehook
  if getattr(previous, 'adjax_filter', False):
    return

  def hook(unraisable):
    if not _late_tensorstore_callback(unraisable):
      previous(unraisable)

  hook.adjax_filter = True
  sys.unraisablehook = hook


def _release_freed_memory() -> None:
  """Hands memory that tensorstore's writer threads freed back to the system (glibc keeps it in per-thread arenas:
  measured, 1.5 GB after each save of an 8-member ADIM sweep); a no-op elsewhere."""
  try:
    ctypes.CDLL('libc.so.6').malloc_trim(0)
  except (OSError, AttributeError):
    pass


def _memory_of(arrays) -> int:
  """Bytes of the memory ``arrays`` live in: their device's limit where it reports one (accelerators), else the
  machine's physical memory."""
  first = jax.tree.leaves(arrays)[0]
  if isinstance(first, jax.Array):
    stats = next(iter(first.devices())).memory_stats() or {}
    if 'bytes_limit' in stats:
      return stats['bytes_limit']
  return os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE')


def _host(tree):
  return jax.tree.map(np.asarray, jax.device_get(tree))


def layout(tree) -> dict[str, list]:
  """``{path: [shape, dtype]}`` of every leaf (arrays or ShapeDtypeStructs)."""
  return {jax.tree_util.keystr(p): [list(a.shape), str(a.dtype)] for p, a in jax.tree_util.tree_leaves_with_path(tree)}


def digests(tree) -> dict[str, str]:
  """``{path: sha256}`` of every leaf's bytes (host arrays)."""
  out = {}
  for path, a in jax.tree_util.tree_leaves_with_path(tree):
    out[jax.tree_util.keystr(path)] = hashlib.sha256(np.ascontiguousarray(a).view(np.uint8)).hexdigest()
  return out


def _meta_digest(meta: dict) -> str:
  return hashlib.sha256(json.dumps(meta, sort_keys=True, allow_nan=False).encode()).hexdigest()


class Checkpoints:
  """Per-round checkpoints of a pytree of arrays plus a JSON-able dict, keeping the last two.

  Two, because the newest may turn out damaged and the run then resumes from
  the one before it (one round recomputed).
  """

  def __init__(self, directory: str, background: bool | None = None):
    """``background``: write in a background thread (default: when this is the only process, orbax's collective
    saves of a multi-process run staying in the main thread, and the arrays' copy is at most
    ``BACKGROUND_FRACTION`` of the machine's memory)."""
    handler = logging.get_absl_handler()
    if _not_orbax not in handler.filters:
      handler.addFilter(_not_orbax)
    _install_unraisable_filter()
    self.directory = os.path.abspath(directory)
    options = ocp.CheckpointManagerOptions(max_to_keep=2, create=True, enable_async_checkpointing=False)
    # At most 1 GB of arrays in flight at once: a big sweep's state is written in parts, not copied whole.
    handlers = {'arrays': ocp.StandardCheckpointHandler(save_concurrent_gb=1), 'meta': ocp.JsonCheckpointHandler()}
    self._manager = ocp.CheckpointManager(self.directory, options=options, item_handlers=handlers)
    self.background = jax.process_count() == 1 if background is None else background
    self._fraction = None if background else BACKGROUND_FRACTION  # None: no limit
    self._executor = futures.ThreadPoolExecutor(1, thread_name_prefix='adjax-checkpoint') if self.background else None
    self._pending: futures.Future | None = None

  def all_steps(self) -> list[int]:
    """Saved steps, newest first."""
    return sorted(self._manager.all_steps(), reverse=True)

  def save(self, step: int, arrays, meta: dict) -> None:
    """Saves ``arrays`` (jax arrays of one device, or host arrays) and ``meta`` as ``step``; in the background, it
    returns once they are copied (the device buffers are donated to the next round, and the caller goes on
    changing ``meta``)."""
    self.wait()
    size = sum(a.nbytes for a in jax.tree.leaves(arrays))
    if self._executor is None or (self._fraction is not None and size > self._fraction * _memory_of(arrays)):
      self._write(step, arrays, meta)
    else:
      snapshot = jax.tree.map(lambda a: jnp.copy(a) if isinstance(a, jax.Array) else np.array(a), arrays)
      self._pending = self._executor.submit(self._write, step, snapshot, json.loads(json.dumps(meta)))

  def _write(self, step: int, arrays, meta: dict) -> None:
    host = _host(arrays)  # on a CPU, views of the arrays' own memory
    meta = {**meta, INTEGRITY: {'layout': layout(host), 'arrays': digests(host), 'meta': _meta_digest(meta)}}
    # orbax writes jax arrays with less memory and time than host arrays (measured, 1 GB on a CPU: 1.1x vs 1.9x the
    # arrays' size in flight, 2.2 s vs 5.9 s).
    self._manager.save(
      step, args=ocp.args.Composite(arrays=ocp.args.StandardSave(arrays), meta=ocp.args.JsonSave(meta)), force=True
    )
    self._manager.wait_until_finished()
    _release_freed_memory()

  def wait(self) -> None:
    """Waits for the save in progress, if any; raises its error."""
    pending, self._pending = self._pending, None
    if pending is not None:
      pending.result()

  def restore(self, step: int, like):
    """Arrays shaped like ``like`` (a pytree of arrays or ShapeDtypeStructs), and the metadata.

    Raises ``Damaged`` or ``OtherLayout``.
    """
    try:
      meta = self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))['meta']
    except Exception as e:  # orbax and tensorstore raise many types for unreadable files
      raise Damaged(f'its metadata cannot be read ({type(e).__name__}: {_first_line(e)})') from None
    if not isinstance(meta, dict):
      raise Damaged('its metadata is not a JSON object')
    integrity = meta.pop(INTEGRITY, None)
    if integrity is None:  # written before adjax checked integrity: restored as it is, with a warning
      logging.warning('checkpoint %d has no integrity record (an older adjax wrote it); restored unchecked', step)
    else:
      if not isinstance(integrity, dict) or integrity.get('meta') != _meta_digest(meta):
        raise Damaged('its metadata does not match its digest')
      if integrity['layout'] != layout(like):
        saved, now = integrity['layout'], layout(like)
        diff = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
        raise OtherLayout(
          f'{len(diff)} arrays differ, e.g. {diff[0]}: saved {saved.get(diff[0])}, now {now.get(diff[0])}'
        )
    abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), like)
    try:
      arrays = self._manager.restore(step, args=ocp.args.Composite(arrays=ocp.args.StandardRestore(abstract)))
    except ValueError as e:
      if integrity is None:  # no layout on record: orbax's tree mismatch is the only sign
        raise OtherLayout(_first_line(e)) from None
      raise Damaged(f'its arrays cannot be read ({_first_line(e)})') from None
    except Exception as e:
      raise Damaged(f'its arrays cannot be read ({type(e).__name__}: {_first_line(e)})') from None
    arrays = _host(arrays['arrays'])
    if integrity is not None:
      bad = [k for k, d in digests(arrays).items() if integrity['arrays'].get(k) != d]
      if bad:
        raise Damaged(f'{len(bad)} arrays do not match their digests, e.g. {bad[0]}')
    return arrays, meta

  def set_aside(self, step: int, where: str) -> str:
    """Moves a (damaged) step out of the manager's directory into ``where``; nothing is deleted. In a multi-process
    run every process calls it (each found the step damaged); process 0 moves it."""
    target = os.path.join(where, str(step))
    if jax.process_index() == 0:
      os.makedirs(where, exist_ok=True)
      target = workdir_lib.move_aside(os.path.join(self.directory, str(step)), target)
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices(f'adjax set aside {step}')
    self._manager.reload()
    return target

  def close(self) -> None:
    try:
      self.wait()
    finally:
      if self._executor is not None:
        self._executor.shutdown()
      self._manager.close()


def newest_meta(directory: str) -> tuple[int, dict] | None:
  """``(step, metadata)`` of the newest checkpoint whose metadata is intact, read without opening the directory."""
  for step in sorted(saved_steps(directory), reverse=True):
    try:
      with open(os.path.join(directory, str(step), 'meta', 'metadata')) as f:
        meta = json.load(f)
      if meta.pop(INTEGRITY)['meta'] == _meta_digest(meta):
        return step, meta
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
      pass
  return None


def saved_steps(directory: str) -> list[int]:
  """The steps a checkpoint directory holds, without opening (or creating) it."""
  return [int(d) for d in os.listdir(directory) if d.isdigit()] if os.path.isdir(directory) else []


def _first_line(e: Exception) -> str:
  return (str(e).splitlines() or [''])[0][:200]


DIGESTS = 'adjax_digests.json'


def _this_process_only() -> ocp.options.MultiprocessingOptions:
  """A single tree is written by one process (process 0) and read by each on its own: no barriers with the others."""
  return ocp.options.MultiprocessingOptions(primary_host=jax.process_index(), active_processes={jax.process_index()})


def save_tree(path: str, tree) -> None:
  """One pytree of arrays to ``path``, with its digests inside; written beside it and renamed into place, so a
  reader sees all of it or nothing, and a second writer of the same path (another process) leaves the first's."""
  host = _host(tree)
  tmp = f'{os.path.abspath(path)}.tmp-{os.getpid()}'
  checkpointer = ocp.StandardCheckpointer(multiprocessing_options=_this_process_only())
  checkpointer.save(tmp, host)
  checkpointer.wait_until_finished()
  checkpointer.close()
  with open(os.path.join(tmp, DIGESTS), 'w') as f:
    json.dump({'layout': layout(host), 'arrays': digests(host)}, f)
  try:
    os.rename(tmp, path)
  except OSError:  # another process put the same tree there first
    shutil.rmtree(tmp, ignore_errors=True)


def load_tree(path: str, like):
  """The pytree saved at ``path``, shaped like ``like``; ``Damaged`` if its bytes changed or a part is missing."""
  try:
    with open(os.path.join(path, DIGESTS)) as f:
      record = json.load(f)
  except (OSError, ValueError) as e:
    raise Damaged(f'{path}: its digests cannot be read ({type(e).__name__})') from None
  if record.get('layout') != layout(like):
    raise OtherLayout(f'{path} holds other arrays than this run needs')
  abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), like)
  checkpointer = ocp.StandardCheckpointer(multiprocessing_options=_this_process_only())
  try:
    tree = _host(checkpointer.restore(os.path.abspath(path), abstract))
  except Exception as e:
    raise Damaged(f'{path}: its arrays cannot be read ({type(e).__name__}: {_first_line(e)})') from None
  finally:
    checkpointer.close()
  if digests(tree) != record.get('arrays'):
    raise Damaged(f'{path}: its arrays do not match their digests')
  return tree
