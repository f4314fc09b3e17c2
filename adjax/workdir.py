"""A run's directory: one writer at a time, strict JSON files, and a clean stop on SIGTERM."""

import contextlib
import errno
import fcntl
import json
import os
import shutil
import signal
import threading

import jax

from adjax.errors import ConfigError

LOCK = '.lock'


class Preempted(Exception):
  """SIGTERM arrived; the run stopped after its last checkpoint (a scheduler's preemption)."""

  exit_code = 143  # 128 + SIGTERM, what a shell reports for a job ended by SIGTERM


def check_usable(workdir: str) -> None:
  """Refuses a workdir that cannot be written or whose parts are not what adjax writes there (``checkpoints`` or
  ``tensorboard`` as files), or whose ``config.json`` is unreadable, before anything is loaded."""
  check_directory(workdir, 'workdir')
  for part in ('checkpoints', 'tensorboard'):
    path = os.path.join(workdir, part)
    if os.path.exists(path) and not os.path.isdir(path):
      raise ConfigError(f'workdir={workdir!r} holds a file {part!r} where adjax writes a directory; move it out')
  path = os.path.join(workdir, 'config.json')
  if os.path.exists(path):
    read_json(path, f'workdir={workdir!r}')


def check_directory(path: str, field: str) -> None:
  """Refuses a directory adjax would write in (``field=path``) that is empty, a file, or not writable (nor its
  nearest existing parent, where it would be made)."""
  if not isinstance(path, str | os.PathLike):
    raise ConfigError(f'{field}={path!r} must be a path (a str), got {type(path).__name__}')
  if not os.fspath(path):
    raise ConfigError(f'{field} is empty; give a directory (new, or one adjax wrote)')
  if os.path.exists(path) and not os.path.isdir(path):
    raise ConfigError(f'{field}={path!r} is a file, not a directory; choose a directory (new, or one adjax wrote)')
  existing = os.path.abspath(path)
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing) or not os.access(existing, os.W_OK | os.X_OK):
    where = 'it' if existing == os.path.abspath(path) else f'{existing!r}, where it would be made,'
    raise ConfigError(f'{field}={path!r} cannot be written: {where} is not writable; choose another directory')


def read_json(path: str, owner: str) -> dict:
  """A JSON object from ``path``, or a one-line ``ConfigError`` naming ``owner`` and the file."""
  try:
    with open(path) as f:
      obj = json.load(f)
  except (OSError, ValueError) as e:
    raise ConfigError(
      f'{owner} holds an unreadable {os.path.basename(path)} ({type(e).__name__}: {str(e)[:120]}); '
      'it is not a run adjax can resume: use a new workdir, or remove that file if the run is yours to restart'
    ) from None
  if not isinstance(obj, dict):
    raise ConfigError(f'{owner} holds a {os.path.basename(path)} that is not a JSON object; use a new workdir')
  return obj


def write_json(path: str, obj) -> None:
  """Atomically, and strict JSON: a NaN or inf is an error, never a bare ``NaN`` token."""
  text = json.dumps(obj, indent=1, allow_nan=False)
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    f.write(text)
  os.replace(tmp, path)


@contextlib.contextmanager
def exclusive(workdir: str):
  """Holds an exclusive lock on ``workdir`` (created if needed) for the block: one writer per workdir.

  ``flock`` on ``workdir/.lock``: the kernel releases it when the process dies,
  so a killed run never leaves a stale lock. A second run is refused with the
  holder's pid. In a multi-process run process 0 alone takes it (it alone writes).
  """
  os.makedirs(workdir, exist_ok=True)
  if jax.process_index() != 0:
    yield
    return
  fd = os.open(os.path.join(workdir, LOCK), os.O_RDWR | os.O_CREAT, 0o644)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
        raise
      holder = os.pread(fd, 32, 0).decode(errors='replace').strip() or 'unknown'
      raise ConfigError(
        f'workdir={workdir!r} is in use by another adjax run (pid {holder}); wait for it to end, or use another workdir'
      ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f'{os.getpid()}\n'.encode(), 0)
    yield
  finally:
    os.close(fd)  # releases the lock


@contextlib.contextmanager
def stop_on_sigterm():
  """Within the block, SIGTERM sets the returned event instead of killing the process.

  The run loop checks it after each checkpoint and raises ``Preempted``, so a
  preempted job loses at most the round in progress. Outside the main thread
  (where signals cannot be handled) the event is never set.
  """
  event = threading.Event()
  if threading.current_thread() is not threading.main_thread():
    yield event
    return
  previous = signal.signal(signal.SIGTERM, lambda signum, frame: event.set())
  try:
    yield event
  finally:
    signal.signal(signal.SIGTERM, previous)


def move_aside(path: str, target: str) -> str:
  """Moves ``path`` to ``target`` (``target.1``, ``target.2``, … if taken): damaged files are kept, never deleted."""
  free, suffix = target, 0
  while os.path.exists(free):
    suffix += 1
    free = f'{target}.{suffix}'
  shutil.move(path, free)
  return free
