"""pytest runs the absltest cases; absl's flags (test_tmpdir) must count as parsed.

Many tests compile the same programs (tiny configs, a run and its resumed twin, the subprocesses' runs): the session
shares JAX's persistent compilation cache among its processes (the xdist workers and every subprocess inherit the
variable), in a fresh directory removed at the end. A program's cache key is its HLO, compile options and jax
version, so a hit is the executable the compiler would have built. An entry that cannot be read (one written
half by a process a test kills) is a warning and a compile, not an error. A directory set beforehand is used and
kept; a session that is itself killed leaves its directory (``adjax-test-jax-cache-*`` in the temp dir).

The tests' programs are tiny and compiling is most of their time: XLA:CPU's backend optimisation level 0 (appended
to any ``XLA_FLAGS`` of the caller's) compiles them about a third faster. It changes the machine code and with it
the float rounding, not what is computed; so the one test that compares runs bit for bit with results stored at the
default level runs them in a subprocess at that level (``default_level_env``).
"""

import os
import shutil
import tempfile

from absl import flags
from absl.testing import absltest  # noqa: F401  (defines test_tmpdir)

if not flags.FLAGS.is_parsed():
  flags.FLAGS.mark_as_parsed()

_CACHE = 'JAX_COMPILATION_CACHE_DIR'
_OWN_CACHE = None
if _CACHE not in os.environ:  # the controller (or a run without xdist): before any worker or JAX starts
  _OWN_CACHE = os.environ[_CACHE] = tempfile.mkdtemp(prefix='adjax-test-jax-cache-')
  os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')

FAST_COMPILE = '--xla_backend_optimization_level=0'
if FAST_COMPILE not in os.environ.get('XLA_FLAGS', ''):  # set once, by the controller: its processes inherit it
  os.environ['XLA_FLAGS'] = f'{os.environ.get("XLA_FLAGS", "")} {FAST_COMPILE}'.strip()


def default_level_env() -> dict:
  """The environment for a subprocess that must compile as a user's run does (XLA's default optimisation level):
  one that reproduces results stored bit for bit."""
  return {**os.environ, 'XLA_FLAGS': os.environ['XLA_FLAGS'].replace(FAST_COMPILE, '').strip()}


def pytest_unconfigure(config):
  del config
  if _OWN_CACHE is not None:
    shutil.rmtree(_OWN_CACHE, ignore_errors=True)
