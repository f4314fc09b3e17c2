"""From a config to ``results.json``: the checks, then under the workdir's lock round 0 (or the newest checkpoint),
the rounds, the test figures. The pieces live in ``adjax.run``: ``preflight`` (every check before anything is
written), ``identity`` (what the run computes), ``members`` (where members live), ``teacher`` (the frozen teacher),
``loop`` (a round) and ``results``."""

import json
import os

from absl import logging
import ml_collections

from adjax import data as data_lib
from adjax import parallel
from adjax import sweeps
from adjax import workdir as workdir_lib
from adjax.run import identity as identity_lib
from adjax.run import loop as loop_lib
from adjax.run import plots
from adjax.run import preflight
from adjax.run import results as results_lib
from adjax.run import setup as setup_lib


def train_and_evaluate(
  config: ml_collections.ConfigDict,
  workdir: str,
  sweep: list[dict] | None = None,
  *,
  data: data_lib.Source | None = None,
  nets: dict | None = None,
  optimizers: dict | None = None,
) -> dict:
  """Trains ``num_seeds`` seeds, times each ``sweep`` point, as one vmapped program; resumes from ``workdir``.

  Args:
    config: a run config (``adjax.default_config.get_config()`` and overrides).
    workdir: where checkpoints, TensorBoard files and ``results.json`` go; a
      run started again with the same workdir resumes.
    sweep: points ``{dotted field: value}`` over ``adjax.fields.sweepable()``
      (e.g. ``[{'game.nu': 0.1}, {'game.nu': 1.0}]``); members are ordered
      point-major: point 0's seeds, then point 1's, … Sweeping some weights
      of a group that sums to 1 gives the others equal parts of the rest.
    data: the run's arrays (``adjax.data.from_arrays(...)``) instead of
      ``config.dataset``; validation is drawn from its training arrays. It is
      not augmented unless ``config.augment.user_data``; ``[N, K]`` labels
      are tags only with ``config.multi_label`` (one-hot rows are classes).
    nets: ``{player: flax.linen.Module}`` replacing ``config.<player>.model``
      (outputs ``[B, num_classes]``; for ADIM the discriminator's heads wrap
      it).
    optimizers: ``{player: optax.GradientTransformation}`` replacing the
      default Adam (then that player's ``learning_rate`` and ``weight_decay``
      are not read, and cannot be swept).

  Returns:
    The contents of ``results.json``; ``identity`` names the data (and its
    fingerprint), the networks and optimizers given from Python. Without a
    sweep, ``final`` holds each generator's figures (several seeds: means and
    ``_std``); with one, there is no top-level ``final``: ``sweep[i]`` holds
    point ``i``'s ``overrides``, ``final`` and ``history``. ``per_seed`` lists
    every member.

  A workdir holding another run (other config, data, networks or optimizers,
  as its checkpoints and finished ``results.json`` record it; ``config.json``
  is a copy for people) is refused: to start afresh there, move its
  ``checkpoints/``, ``results.json`` and ``config.json`` out. The same call
  on a finished workdir returns its stored results.

  A member whose round goes non-finite is frozen and reported as diverged
  (``diverged_round`` in its ``per_seed`` entry, no figures); the others
  finish. A run of one member, or a run without ``sweep`` whose every member
  diverged, raises ``FloatingPointError`` instead, keeping its last good
  checkpoint. SIGTERM ends the run after the current round's checkpoint
  (``workdir.Preempted``). Only one process may run in a workdir at a time.
  """
  run = preflight.prepare(config, workdir, sweep, data, nets, optimizers)
  identity_lib.check_resume(workdir, run.setup.config, run.setup.sweep, run.identity)
  with workdir_lib.exclusive(workdir), workdir_lib.stop_on_sigterm() as sigterm:
    # Again, under the lock: another run may have started meanwhile.
    identity_lib.check_resume(workdir, run.setup.config, run.setup.sweep, run.identity)
    if parallel.is_writer():  # every record of the workdir has been checked against this run: the copy is rewritten
      record = identity_lib.run_json(run.setup.config, run.setup.sweep, run.identity)
      workdir_lib.write_json(os.path.join(workdir, 'config.json'), record)
    stored = identity_lib.stored_results(workdir)
    if stored is not None and stored.get('rounds') == run.setup.config.rounds:
      logging.info('workdir=%r holds the finished results of this run; returned as stored', workdir)
      return stored
    return _run(run, sigterm)


def _run(run: preflight.Run, sigterm) -> dict:
  """The run, under the workdir lock: start (round 0) or resume, the rounds, the results."""
  members = run.setup.members
  loop = loop_lib.Loop(run, run.setup.programs(), members, sigterm)
  try:
    state, best, meta = loop.start()
    for r in range(int(members.get(state['round'])[0]), run.setup.config.rounds):
      state, best = loop.play(r + 1, state, best, meta)
    results = results_lib.build(run, members, meta, loop.test(state, best), loop.metric)
    loop.ckpt.wait()  # the last round's checkpoint is on disk before the results are
    if parallel.is_writer():
      workdir_lib.write_json(os.path.join(run.workdir, 'results.json'), results)
      plots.write(results, os.path.join(run.workdir, 'diagnostics.png'))
    return results
  finally:
    loop.close()


def finished(
  workdir: str,
  config: ml_collections.ConfigDict,
  sweep: list[dict] | None = None,
  *,
  data: data_lib.Source | None = None,
  nets: dict | None = None,
  optimizers: dict | None = None,
) -> dict | None:
  """The results in ``workdir`` if that run finished with exactly this config, sweep, data, nets, optimizers."""
  results = identity_lib.stored_results(workdir)
  if results is None or 'config' not in results:
    return None
  saved, points = (
    identity_lib.what_is_computed(results['config']),
    [p.get('overrides') for p in results.get('sweep', [])],
  )
  differ = {k for k, v in identity_lib.what_is_computed(json.loads(config.to_json())).items() if saved.get(k) != v}
  completed = [sweeps.complete_omegas(config.method, p) for p in sweep or []]
  if points != completed or differ - {'augment'}:  # augment: a user's data runs without it (setup says)
    return None
  s = setup_lib.setup(config, sweep, data=data, nets=nets, optimizers=optimizers)  # no mesh, workdir or option checks
  same = saved == identity_lib.what_is_computed(json.loads(s.config.to_json()))
  if same and 'identity' in results:
    same = results['identity'] == identity_lib.identity(s.source, s.game, s.splits, dict(optimizers or {}))
  return results if same else None
