"""Every check of a run that can fail before anything is written, and the checked ``Run`` it yields.

``train_and_evaluate`` and ``finished`` both call ``prepare``, so a finished
run is recognised by exactly what would train it.
"""

import dataclasses
import os

from absl import logging
import ml_collections

from adjax import checkpoint
from adjax import config as config_lib
from adjax import data as data_lib
from adjax import methods
from adjax import parallel
from adjax import workdir as workdir_lib
from adjax.errors import ConfigError
from adjax.run import identity as identity_lib
from adjax.run import setup as setup_lib


@dataclasses.dataclass(frozen=True)
class Run:
  """What one call of ``train_and_evaluate`` works on, checked: the ``Setup``, its workdir and its identity."""

  setup: setup_lib.Setup
  workdir: str
  identity: dict


def prepare(
  config: ml_collections.ConfigDict,
  workdir: str,
  sweep: list[dict] | None,
  data: data_lib.Source | None,
  nets: dict | None,
  optimizers: dict | None,
) -> Run:
  """The checked run: config, players, sweep, then the workdir and rounds (before any data is read), then data,
  outputs and identity (not the resume: ``identity.check_resume``)."""
  nets, optimizers = setup_lib.players_given(nets, optimizers)
  checked = setup_lib.check(config, sweep, nets, optimizers)
  unused = config_lib.unused_options(checked.config) if parallel.is_writer() else []
  if unused:
    c = checked.config
    on = f' on dataset={c.dataset}' if data is None else ''
    logging.warning('not read by a run of method=%s%s (they change nothing): %s', c.method, on, ', '.join(unused))
  parallel.check(checked.config)
  _check_workdir(workdir, checked.config)
  s = setup_lib.with_data(checked, data, nets, optimizers)
  return Run(s, workdir, identity_lib.identity(s.source, s.game, s.splits, optimizers))


def _check_workdir(workdir: str, config: ml_collections.ConfigDict) -> None:
  """A usable workdir, holding no more rounds than ``config.rounds`` (fewer would report later rounds' figures
  under an earlier count)."""
  workdir_lib.check_usable(workdir)
  if config.teacher_cache and methods.METHODS[config.method].frozen:
    workdir_lib.check_directory(config.teacher_cache, 'teacher_cache')
  steps = checkpoint.saved_steps(os.path.join(workdir, 'checkpoints'))
  if steps and max(steps) > config.rounds:
    raise ConfigError(
      f'rounds={config.rounds} but workdir={workdir!r} already holds {max(steps)} rounds of this run; '
      f'set rounds>={max(steps)} to resume or report it, or use a new workdir for a shorter run'
    )
