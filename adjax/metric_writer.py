"""Scalar metrics to TensorBoard event files (tensorboardX: no TensorFlow needed) and the log."""

from absl import logging
import tensorboardX


class MetricWriter:
  """``write_scalars(step, {name: value})`` to event files under ``logdir``."""

  def __init__(self, logdir: str):
    self._writer = tensorboardX.SummaryWriter(logdir)

  def write_scalars(self, step: int, scalars: dict[str, float]) -> None:
    for name, value in scalars.items():
      if value is not None:
        self._writer.add_scalar(name, value, step)
    self._writer.flush()

  def close(self) -> None:
    self._writer.close()


def log_round(round_: int, rounds: int, per_seed: list[dict[str, float]], seconds: float) -> None:
  """The progress line of a round: each scalar's mean over seeds (grad norms left out)."""
  if not per_seed:
    logging.info('round %d/%d (%.2fs): every member has diverged', round_, rounds, seconds)
    return
  names = [k for k in per_seed[0] if k != 'round' and not k.endswith('grad_norm')]
  shown = ' '.join(f'{k}={sum(s[k] for s in per_seed) / len(per_seed):.4g}' for k in names)
  seeds = f', mean of {len(per_seed)} seeds' if len(per_seed) > 1 else ''
  logging.info('round %d/%d (%.2fs%s) %s', round_, rounds, seconds, seeds, shown)
