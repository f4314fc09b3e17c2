"""Scalar metrics to TensorBoard event files (tensorboardX: no TensorFlow needed), the log and a progress line."""

import sys

from absl import logging

from adjax import figures


class MetricWriter:
  """``write_scalars(step, {name: value})`` to event files under ``logdir``; nothing when not ``enabled`` (the
  processes of a multi-host run other than process 0)."""

  def __init__(self, logdir: str, enabled: bool = True):
    self._writer = None
    if enabled:
      import tensorboardX  # imported here: it imports torch when torch is installed, and adjax must not need it

      self._writer = tensorboardX.SummaryWriter(logdir)

  def write_scalars(self, step: int, scalars: dict[str, float]) -> None:
    if self._writer is None:
      return
    for name, value in scalars.items():
      if value is not None:  # TensorBoard's names take no '@' (p@3 is shown as p_at_3)
        self._writer.add_scalar(name.replace('@', '_at_'), value, step)
    self._writer.flush()

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()


def _clock(seconds: float) -> str:
  minutes, s = divmod(round(seconds), 60)
  h, m = divmod(minutes, 60)
  return f'{h}:{m:02d}:{s:02d}' if h else f'{m}:{s:02d}'


def log_round(
  round_: int, rounds: int, per_seed: list[dict[str, float]], seconds: list[float], metric: str = 'accuracy'
) -> None:
  """A round's progress: one plain line on stdout for a person (round, time, ETA, the mean validation ``metric``),
  and every scalar's mean over seeds in the absl log for machines. ``seconds``: every round's so far (round 0
  first)."""
  last = seconds[-1]
  if not per_seed:
    logging.info('round %d/%d (%.2fs): every member has diverged', round_, rounds, last)
    return
  names = [k for k in per_seed[0] if k != 'round' and not k.endswith('grad_norm')]
  mean = {k: sum(s[k] for s in per_seed) / len(per_seed) for k in names}
  seeds = f', mean (range) of {len(per_seed)} members' if len(per_seed) > 1 else ''
  # In a terminal the progress line below is what a person reads; the full line goes to the log at DEBUG there, and
  # at INFO when stderr is a file (a batch job's log, for machines).
  level = logging.DEBUG if sys.stderr.isatty() else logging.INFO
  scalars = ' '.join(f'{k}={v:.4g}' for k, v in mean.items())
  logging.log(level, 'round %d/%d (%.2fs%s) %s', round_, rounds, last, seeds, scalars)
  recent = seconds[2:][-5:]  # round 1 compiles the round: not what the others take
  eta = _clock((rounds - round_) * sum(recent) / len(recent)) if recent else ('0:00' if round_ == rounds else '…')
  shown_figures = '  '.join(
    f'{p} {mean[k]:.4f}' + (f' ({min(s[k] for s in per_seed):.4f}–{max(s[k] for s in per_seed):.4f})' if seeds else '')
    for p in figures.GENERATORS
    if (k := figures.history(p, metric)) in mean
  )
  shown = '' if metric == 'accuracy' else f' {metric}'
  print(
    f'round {round_}/{rounds}  {last:.2f} s  ETA {eta}  val{shown}: {shown_figures}{seeds}',
    file=sys.stdout,
    flush=True,
  )
