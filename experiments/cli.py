"""What every entrypoint shares: flag parsing and failures as one line each, exit codes a scheduler reads.

Exit status: 0 done; 1 a refusal (bad config, bad data, busy workdir), a
run whose every member diverged, or a file that could not be written (disk
full, a size limit, permissions); 2 a flag that cannot be parsed; 130 stopped
by Ctrl-C; 143 stopped by SIGTERM after a checkpoint. After 1 (a write), 130
or 143 the run's last complete checkpoint is kept: run the same command again
to resume.
"""

import contextlib
import re
import sys

from absl import app
from absl import flags

from adjax import config as config_lib
from adjax import workdir as workdir_lib


def _flag_error(argv: list[str], e: Exception) -> str:
  text = str(e.args[0]) if e.args else str(e)
  if m := re.search(r'Did you mean "([\w.]+)" instead of "([\w.]+)"', text):
    wrong = next((a.split('=')[0] for a in argv if re.search(rf'[.]{re.escape(m[2])}(=|$)', a.split('=')[0])), m[2])
    return f'{wrong}: the config has no field {m[2]!r}; did you mean {m[1]!r}?'
  if isinstance(e, KeyError | AttributeError):
    name = text.strip('\'"').splitlines()[0].strip('\\\'"')
    wrong = next((a.split('=')[0] for a in argv if a.startswith('--config.') and name in a), name)
    return f'{wrong}: the config has no field {name!r} (--print_config lists them)'
  return text.splitlines()[0] if text else type(e).__name__


def _help(argv: list[str]) -> None:
  """The entrypoint's docstring and its own flags (absl's ``--help`` leaves out those defined here), exit 0."""
  main = sys.modules['__main__']
  print((main.__doc__ or '').strip() + '\n')
  for text in (flags.FLAGS.main_module_help(), flags.FLAGS.module_help(__name__)):
    print('\n'.join(line for line in text.splitlines() if line.startswith(' ')))
  print('\n  --config.FIELD=VALUE: set any config field; --print_config lists them with their meaning.')
  print("  --helpfull: every flag, absl's and orbax's included.")
  sys.exit(0)


def parse_flags(argv: list[str]) -> list[str]:
  """absl's parsing, but a bad flag or ``--config.FIELD`` is one line on stderr and exit status 2."""
  if any(a in ('--help', '-h', '-?', '--helpshort') for a in argv[1:]):
    _help(argv)
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    print(f'adjax: {e}', file=sys.stderr)
  except (AttributeError, KeyError, TypeError, ValueError) as e:  # ml_collections: an override it cannot apply
    print(f'adjax: {_flag_error(argv, e)}', file=sys.stderr)
  sys.exit(2)


def define_config(default: str | None = None, help_text: str = 'Config file (a get_config() module).'):
  """``config_flags.DEFINE_config_file`` whose ``--config.FIELD`` errors are one line and exit status 2.

  With a default file, ml_collections applies the command line's overrides as
  the flag is defined, so a typo fails here, not in ``parse_flags``.
  """
  from ml_collections import config_flags

  try:
    return config_flags.DEFINE_config_file('config', default, help_text, lock_config=True)
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    print(f'adjax: {_flag_error(sys.argv, e)}', file=sys.stderr)
    sys.exit(2)


_PRINT_CONFIG = flags.DEFINE_bool('print_config', False, 'Print every config field, its value and its meaning; exit.')
_DISTRIBUTED = flags.DEFINE_bool(
  'distributed',
  False,
  'Join a multi-process run (jax.distributed): with no address, JAX detects the cluster (SLURM, TPU).',
)
_COORDINATOR = flags.DEFINE_string('coordinator_address', '', "Multi-process run: process 0's HOST:PORT.")
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None, 'Multi-process run: how many processes.')
_PROCESS_ID = flags.DEFINE_integer('process_id', None, "Multi-process run: this process's index, 0..num_processes-1.")
_INIT_TIMEOUT = flags.DEFINE_integer(
  'initialization_timeout', 60, 'Multi-process run: seconds to wait for the coordinator and the other processes.'
)


def _join_processes() -> None:
  """``jax.distributed.initialize`` when any multi-process flag is given (before anything touches a device)."""
  given = _DISTRIBUTED.value or _COORDINATOR.value or _NUM_PROCESSES.value is not None or _PROCESS_ID.value is not None
  if given:
    from adjax import parallel

    with reported():
      parallel.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value, _INIT_TIMEOUT.value)


def flag_or_config(flag: str, field: str):
  """The value of ``--flag`` if given; else ``--config.field``'s if given; else the flag's default.

  An entrypoint flag that shadows a config field (``--n_train`` and
  ``--config.n_train``) then overrides only what the user did not set.
  """
  if flags.FLAGS[flag].present:
    return flags.FLAGS[flag].value
  if any(a.split('=')[0] == f'--config.{field}' for a in sys.argv[1:]):
    return flags.FLAGS.config[field]
  return flags.FLAGS[flag].value


def run(main) -> None:
  """``app.run(main)`` with ``parse_flags``; ``--print_config`` prints the config (after overrides) instead."""

  def main_or_print(argv):
    if _PRINT_CONFIG.value:
      from adjax import default_config

      print(default_config.describe(flags.FLAGS.config))
      return
    missing = [name for name in ('workdir',) if name in flags.FLAGS and flags.FLAGS[name].value is None]
    if missing:
      print(f'adjax: --{missing[0]} is required (--helpfull lists the flags)', file=sys.stderr)
      sys.exit(2)
    _join_processes()
    main(argv)

  app.run(main_or_print, flags_parser=parse_flags)


@contextlib.contextmanager
def reported():
  """Refusals, divergence and preemption as one line on stderr with their exit status, not a traceback."""
  try:
    yield
  except config_lib.ConfigError as e:
    sys.exit(f'adjax: {e}')
  except FloatingPointError as e:
    sys.exit(f'adjax: diverged: {e}')
  except workdir_lib.Preempted as e:
    print(f'adjax: {e}', file=sys.stderr, flush=True)
    sys.exit(workdir_lib.Preempted.exit_code)
  except KeyboardInterrupt:
    print('adjax: interrupted (Ctrl-C); run the same command again to resume from the last checkpoint',
          file=sys.stderr, flush=True)  # fmt: skip
    sys.exit(130)
  except OSError as e:  # a write failed: disk full, a file-size limit, permissions
    where = f' {e.filename!r}' if getattr(e, 'filename', None) else ''
    sys.exit(f'adjax: could not write{where} ({type(e).__name__}: {e.strerror or e}); free space or fix '
             'permissions, then run the same command again: it resumes from the last checkpoint, if any')  # fmt: skip
