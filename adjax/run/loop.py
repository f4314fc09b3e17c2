"""One run's host loop: round 0 (or the newest intact checkpoint), then each round of Algorithm 1 with evaluation
on validation, divergence marking, selection, logging and a checkpoint.

``meta`` (JSON, saved with each checkpoint) holds each member's history, its
best round per generator, its diverged round (None while healthy) and the
seconds of each round.
"""

import os
import time

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from adjax import checkpoint
from adjax import diagnostics
from adjax import figures
from adjax import game as game_lib
from adjax import metric_writer
from adjax import parallel
from adjax import rounds
from adjax import workdir as workdir_lib
from adjax.errors import ConfigError
from adjax.run import identity as identity_lib
from adjax.run import members as members_lib
from adjax.run import results as results_lib
from adjax.run import teacher as teacher_lib


class Loop:
  """What every round of a run needs (programs, data on the device, writers) and the round itself."""

  def __init__(self, run, programs: rounds.Programs, members: members_lib.Members, sigterm):
    self.run, self.game, self.programs, self.members, self.sigterm = run, run.setup.game, programs, members, sigterm
    self.train, self.val = members.data('train'), members.data('val')
    count = run.setup.config.diagnostics  # the examples of each split the diagnostics measure
    self.measured = [game_lib.spread(d, count) for d in (self.val, self.train)] if count else []
    self.metric = run.setup.metric  # what selects parameters on validation
    self.key = figures.val(self.metric)
    self.ckpt = checkpoint.Checkpoints(os.path.join(run.workdir, 'checkpoints'))
    self.record = identity_lib.run_json(run.setup.config, run.setup.sweep, run.identity)
    logdir, count = os.path.join(run.workdir, 'tensorboard'), members.count
    runs = [os.path.join(logdir, self.tag(i)) for i in range(count)] + (
      [os.path.join(logdir, 'mean')] if count > 1 else []
    )
    self.writers = [metric_writer.MetricWriter(r, enabled=parallel.is_writer()) for r in runs]

  def close(self) -> None:
    for w in self.writers:
      w.close()
    self.ckpt.close()

  def _write(self, round_: int, scalars: list[dict]) -> None:
    """Each live member's scalars to its TensorBoard run, and their mean to ``mean`` (several members)."""
    for i, s in scalars:
      self.writers[i].write_scalars(round_, s)
    if len(self.writers) > 1 and scalars:
      names = scalars[0][1]
      self.writers[-1].write_scalars(round_, {k: float(np.mean([s[k] for _, s in scalars])) for k in names})

  def tag(self, i: int) -> str:
    """Member ``i``'s name in the log and its TensorBoard run (directories): its sweep point and seed."""
    run = self.run
    names = [f'{k}={v:g}' for k, v in run.setup.overrides[i].items()]
    names += [f'seed_{run.setup.configs[i].seed}'] if run.setup.num_seeds > 1 else []
    return ''.join(n + '/' for n in names)

  def _stop_if_preempted(self, round_: int) -> None:
    if parallel.any_process(self.sigterm.is_set()):  # all processes stop after the same round
      self.ckpt.wait()  # with the round's checkpoint on disk
      raise workdir_lib.Preempted(
        f'SIGTERM: stopped after the checkpoint of round {round_}; run the same command again to resume'
      )

  def _save(self, round_: int, state, best, meta) -> None:
    tree = self.members.checkpointable({'state': state, 'best': best})
    self.ckpt.save(round_, tree, meta)  # written while the next round runs
    self._stop_if_preempted(round_)

  def start(self):
    """``(state, best, meta)``: the newest intact checkpoint's, or round 0's (frozen teacher, pretraining)."""
    run, members = self.run, self.members
    example = {k: a[:1] for k, a in members.splits.pool.items()}
    one = members_lib.init_member(self.game, run.setup.configs[0], example)
    stacked = lambda a: jax.ShapeDtypeStruct((members.count, *np.shape(a)), np.asarray(a).dtype)
    restored = _restore_latest(
      self.ckpt, jax.tree.map(stacked, {'state': one, 'best': results_lib.params(one)}), run.workdir
    )
    if restored is not None:
      arrays, meta = restored
      meta.setdefault('diverged', [None] * members.count)
      meta[identity_lib.RECORD] = self.record  # checked against the record it had (or config.json) already
      arrays = members.put(arrays)
      return arrays['state'], arrays['best'], meta
    t0 = time.perf_counter()
    if parallel.is_writer():
      frozen = 'the frozen teacher, then ' if self.game.method.frozen else ''
      count = f'{members.count} member' + ('s' if members.count > 1 else '')
      print(f'round 0: compiling, then {frozen}pretraining ({count})', flush=True)
    state = run.setup.init()
    state = teacher_lib.frozen(run, state, members, self.programs, self.metric)
    state, metrics = self.programs.pretrain(state, self.train, False, 0)
    val = results_lib.evaluate(self.programs.accuracy, results_lib.params(state), self.val, members)
    best = {p: jax.tree.map(jnp.copy, a) for p, a in results_lib.params(state).items()}
    metrics, diagnosed = members.get(metrics), self._diagnose(state)
    history = [[{'round': 0, **results_lib.round_scalars(metrics, val, i, diagnosed)}] for i in range(members.count)]
    params_finite_S = members.get(_all_finite(best))
    finite = [not _nonfinite(history[i][0]) and bool(params_finite_S[i]) for i in range(members.count)]
    meta = {
      identity_lib.RECORD: self.record,
      'history': [h if ok else [] for h, ok in zip(history, finite)],
      'best': [{p: {'round': 0, self.key: float(val[p][self.metric][i])} for p in best} for i in range(members.count)],
      'diverged': [None if ok else 0 for ok in finite],
      'seconds': [time.perf_counter() - t0],
    }
    _check_members(meta, history, 0, self.tag, stop_when_all=not run.setup.sweep)
    self._write(0, [(i, history[i][0]) for i in np.flatnonzero(finite)])
    if parallel.is_writer():  # the pretrained players' figures: round 0 may be the one selected
      metric_writer.log_round(0, run.setup.config.rounds, [history[i][0] for i in np.flatnonzero(finite)],
                              meta['seconds'], self.metric)  # fmt: skip
    self._save(0, state, best, meta)
    return state, best, meta

  def _diagnose(self, state) -> dict | None:
    """Each member's equilibrium diagnostics on ``config.diagnostics`` examples of validation, and (``train_…``) of
    its training examples, the ones its players update on: ``{name: [S]}`` (None when it is 0)."""
    if not self.measured:
      return None
    val, train = self.members.get([self.programs.diagnostics(state, d) for d in self.measured])  # one fetch
    return {**val, **{f'{diagnostics.TRAIN}{k}': v for k, v in train.items()}}

  def _frozen_figures(self, meta) -> dict:
    """A frozen player's validation figures: those of round 0 (it is not evaluated again)."""
    out = {}
    for p in self.game.method.frozen:
      first = next((h[0] for h in meta['history'] if h), {})
      names = [
        f.metric for f in map(figures.Figure.parse, first) if f is not None and f.player == p and f.split == 'val'
      ]
      out[p] = {
        m: np.array([h[0][figures.history(p, m)] if h else np.nan for h in meta['history']], np.float32) for m in names
      }
    return out

  def play(self, round_: int, state, best, meta):
    """Round ``round_``: play it (diverged members frozen), evaluate, mark divergence, select, log, save."""
    members = self.members
    t0 = time.perf_counter()
    active = np.array([d is None for d in meta['diverged']])
    state, metrics = self.programs.play_round(state, self.train, members.put(active))
    trained = {p: v for p, v in results_lib.params(state).items() if p not in self.game.method.frozen}
    val = {**results_lib.evaluate(self.programs.accuracy, trained, self.val, members), **self._frozen_figures(meta)}
    metrics, diagnosed = members.get(metrics), self._diagnose(state)
    finite = metrics.pop('finite')
    history = [
      [{'round': round_, **results_lib.round_scalars(metrics, val, i, diagnosed)}] for i in range(members.count)
    ]
    for i in np.flatnonzero(active):
      if not finite[i] or _nonfinite(history[i][0]):
        meta['diverged'][i] = round_
    _check_members(meta, history, round_, self.tag, stop_when_all=not self.run.setup.sweep)
    live = np.array([d is None for d in meta['diverged']])
    for i in np.flatnonzero(live):
      meta['history'][i].append(history[i][0])
    self._write(round_, [(i, history[i][0]) for i in np.flatnonzero(live)])
    for p in best:
      score = val[p][self.metric]
      improved_S = live & np.array([score[i] > meta['best'][i][p][self.key] for i in range(members.count)])
      for i in np.flatnonzero(improved_S):
        meta['best'][i][p] = {'round': round_, self.key: float(score[i])}
      if improved_S.any():
        best[p] = members.select(improved_S, state[p]['params'], best[p])
    meta['seconds'].append(time.perf_counter() - t0)
    live_last = [meta['history'][i][-1] for i in np.flatnonzero(live)]
    if parallel.is_writer():
      metric_writer.log_round(round_, self.run.setup.config.rounds, live_last, meta['seconds'], self.metric)
    self._save(round_, state, best, meta)
    return state, best

  def test(self, state, best) -> dict:
    """Each generator's per-member test figures ``(selected on validation, last round)``."""
    test = self.members.data('test')
    selected = results_lib.evaluate(self.programs.accuracy, best, test, self.members)
    last = results_lib.evaluate(self.programs.accuracy, results_lib.params(state), test, self.members)
    return {p: (selected[p], last[p]) for p in best}


def _restore_latest(ckpt: checkpoint.Checkpoints, like, workdir: str):
  """The newest intact checkpoint's ``(arrays, meta)``, or None if there is none.

  A damaged checkpoint is reported and moved to ``workdir/damaged_checkpoints``
  (kept, not deleted); the one before it is tried next. One written for
  another state is refused: resuming it would be another run.
  """
  for step in ckpt.all_steps():
    try:
      arrays, meta = ckpt.restore(step, like)
    except checkpoint.OtherLayout as e:
      raise ConfigError(
        f"workdir={workdir!r} holds a round-{step} checkpoint of another layout than this run's state ({e}); "
        'another version of adjax (or another setup) wrote it: use a new workdir'
      ) from None
    except checkpoint.Damaged as e:
      moved = ckpt.set_aside(step, os.path.join(workdir, 'damaged_checkpoints'))
      logging.warning('checkpoint of round %d is damaged (%s); moved to %s, trying the one before', step, e, moved)
      continue
    logging.info('resumed %s at round %d', workdir, step)
    return arrays, meta
  return None


def _nonfinite(scalars: dict) -> list[str]:
  """The scalars of a round that are not finite; the diagnostics are measurements, not training: never counted."""
  return [k for k, v in scalars.items() if not np.isfinite(v) and not k.startswith(figures.DIAGNOSTICS)]


@jax.jit
def _all_finite(tree):
  """Per member: every parameter finite (one program over the member axis)."""
  return jax.vmap(rounds.all_finite)(tree)


def _check_members(meta: dict, history: list[list[dict]], round_: int, tag, stop_when_all: bool) -> None:
  """Logs newly diverged members; raises when a run of one member diverged, or (``stop_when_all``) all of them.

  A chunk of a sweep whose every point diverged still finishes: its points are reported as diverged.
  """
  diverged = [i for i, d in enumerate(meta['diverged']) if d == round_]
  for i in diverged:
    bad = _nonfinite(history[i][0]) or ['parameters']
    logging.warning('member %s diverged in round %d (non-finite: %s); it is frozen', tag(i) or 0, round_, bad)
  every = all(d is not None for d in meta['diverged'])
  if diverged and every and (stop_when_all or len(meta['diverged']) == 1):
    i = diverged[0]
    raise FloatingPointError(
      f'non-finite metrics in round {round_}, member {tag(i) or 0}: {history[i][0]}'
      + (f' (every one of {len(meta["diverged"])} members has diverged)' if len(meta['diverged']) > 1 else '')
      + (f'; the checkpoint of round {round_ - 1} is kept' if round_ > 0 else '; nothing was saved')
    )
