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


def log_round(round_: int, rounds: int, scalars: dict[str, float], seconds: float) -> None:
  shown = ' '.join(f'{k}={v:.4g}' for k, v in scalars.items() if v is not None and not k.endswith('grad_norm'))
  logging.info('round %d/%d (%.2fs) %s', round_, rounds, seconds, shown)
