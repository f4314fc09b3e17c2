"""The names of a run's figures, built and parsed in this one place.

History rows (per round) name a player's validation figure:
``student_val_accuracy``, ``teacher_val_p@3``. A player's ``final`` entry in
``results.json`` names its figures without the player: ``test_accuracy`` (of
the parameters selected on validation), ``val_accuracy`` (the selecting
figure), ``last_test_accuracy`` / ``last_val_accuracy`` (of the last round),
and over seeds ``…_std`` (their standard deviation). The equilibrium
diagnostics of a round (``adjax.diagnostics``) are ``diagnostics/d_gap``, ….
"""

import dataclasses
import re

GENERATORS = ('student', 'teacher')
SPLITS = ('val', 'test')


@dataclasses.dataclass(frozen=True)
class Figure:
  """One figure's name: ``str(Figure('accuracy', 'val', player='student'))`` is ``'student_val_accuracy'``."""

  metric: str
  split: str = 'test'
  player: str | None = None
  last: bool = False
  std: bool = False

  def __str__(self) -> str:
    player = f'{self.player}_' if self.player else ''
    return f'{player}{"last_" if self.last else ""}{self.split}_{self.metric}{"_std" if self.std else ""}'

  @classmethod
  def parse(cls, name: str) -> 'Figure | None':
    """The figure ``name`` names, or None for another scalar (a loss, τ, ``selected_round``)."""
    m = re.fullmatch(rf'(?:({"|".join(GENERATORS)})_)?(last_)?({"|".join(SPLITS)})_(.+?)(_std)?', name)
    if m is None:
      return None
    player, last, split, metric, std = m.groups()
    return cls(metric, split, player, bool(last), bool(std))


def history(player: str, metric: str) -> str:
  """A player's validation ``metric`` in a history row: ``student_val_accuracy``."""
  return str(Figure(metric, 'val', player))


def val(metric: str) -> str:
  """The selecting figure in a player's ``final``: ``val_accuracy``."""
  return str(Figure(metric, 'val'))


def test(metric: str) -> str:
  """The test figure in a player's ``final``: ``test_accuracy``."""
  return str(Figure(metric, 'test'))


DIAGNOSTICS = 'diagnostics/'


def diagnostic(name: str) -> str:
  """An equilibrium diagnostic in a history row (``adjax.diagnostics.NAMES``): ``diagnostics/d_gap``; TensorBoard
  groups them."""
  return DIAGNOSTICS + name
