"""Sweep specifications: values of swept fields, and the points (configs) they make.

A sweep field is one of ``adjax.fields.sweepable()`` (arrays in the state, so all
points compile once); its values are ``a,b,c``, ``lin:START:STOP:NUM`` or
``log:START:STOP:NUM`` (log-spaced). ``adjax.train.train_and_evaluate`` runs a
list of points as members of one vmapped program.
"""

import difflib
import itertools

import ml_collections
import numpy as np

from adjax import config as config_lib
from adjax import fields as fields_lib
from adjax import methods as methods_lib
from adjax.errors import ConfigError


def check_field(field: str) -> None:
  """Refuses a field that is not a config field, or not an array in the state (it would change the compiled
  program)."""
  if field not in fields_lib.fields():
    close = difflib.get_close_matches(field, fields_lib.sweepable(), n=1, cutoff=0.6)
    raise ConfigError(
      f'{field} is not a config field{f"; did you mean {close[0]}?" if close else ""} '
      f'(sweepable fields: {", ".join(fields_lib.sweepable())})'
    )
  if field not in fields_lib.sweepable():
    raise ConfigError(
      f'{field} cannot be swept in one program: it is static (it changes shapes or code); '
      f'sweepable fields: {", ".join(fields_lib.sweepable())}. Run separate jobs for other values'
    )


def parse_values(field: str, spec: str) -> list[float]:
  """``a,b,c`` | ``lin:START:STOP:NUM`` | ``log:START:STOP:NUM`` as a list of floats."""
  try:
    if spec.startswith(('lin:', 'log:')):
      kind, start, stop, num = spec.split(':')
      start, stop, num = float(start), float(stop), int(num)
      if num < 1 or (kind == 'log' and (start <= 0 or stop <= 0)):
        raise ValueError
      space = np.linspace if kind == 'lin' else np.geomspace
      return [float(v) for v in space(start, stop, num)]
    return [float(v) for v in spec.split(',')]
  except ValueError:
    raise ConfigError(
      f'--sweep={field}={spec}: VALUES must be a,b,c or lin:START:STOP:NUM or log:START:STOP:NUM '
      '(log: both ends > 0; NUM >= 1)'
    ) from None


def parse_sweeps(specs: list[str]) -> dict[str, list[float]]:
  """``['game.nu=log:1e-3:1e3:7', …]`` → ``{'game.nu': [...], …}``; unknown or static fields are refused."""
  fields = {}
  for spec in specs:
    field, sep, values = spec.partition('=')
    if not sep:
      raise ConfigError(f'--sweep={spec} must be FIELD=VALUES, e.g. game.nu=log:1e-3:1e3:7')
    check_field(field)
    if field in fields:
      raise ConfigError(f'--sweep gives {field} twice')
    fields[field] = parse_values(field, values)
  return fields


def complete_omegas(method: str, point: dict) -> dict:
  """Gives the unswept weights of a method's ``sum_to_one`` group (ADIB, ADIM: the ω's) equal parts of what the
  swept ones leave of 1."""
  constrained = [f'game.{name}' for name in methods_lib.METHODS[method].sum_to_one]
  swept = [f for f in constrained if f in point]
  rest = [f for f in constrained if f not in point]
  if not swept or not rest:
    return point
  share = (1.0 - sum(point[f] for f in swept)) / len(rest)
  return {**point, **{f: share for f in rest}}


def sweep_points(fields: dict[str, list[float]], combine: str, method: str) -> list[tuple[str | None, dict]]:
  """``(axis, point)`` pairs: ``axis`` is the field the point varies (``None`` for grid points)."""
  if combine == 'axes':
    raw = [(f, {f: v}) for f, values in fields.items() for v in values]
  else:
    raw = [(None, dict(zip(fields, combo))) for combo in itertools.product(*fields.values())]
  return [(axis, complete_omegas(method, point)) for axis, point in raw]


def chunks(points: list, most: int) -> list[tuple[list, int]]:
  """Points in the fewest groups of at most ``most``, all of one size (the last padded by repeating its last
  point, so every group runs the same compiled program): ``(group, number real)``."""
  count = -(-len(points) // most)
  size = -(-len(points) // count)
  out = []
  for start in range(0, len(points), size):
    group = points[start : start + size]
    out.append((group + [group[-1]] * (size - len(group)), len(group)))
  return out


def with_overrides(config: ml_collections.ConfigDict, overrides: dict) -> ml_collections.ConfigDict:
  """A copy of ``config`` with dotted fields (``{'game.nu': 0.1, 'seed': 3}``) set."""
  c = ml_collections.ConfigDict(config.to_dict())
  for field, value in overrides.items():
    *groups, name = field.split('.')
    node = c
    for g in groups:
      node = node[g]
    node[name] = value
  return c


def check_sweep(
  config: ml_collections.ConfigDict, sweep: list[dict], optimizers: dict | None = None
) -> list[ml_collections.ConfigDict]:
  """Each sweep point's validated config; a field that would change the compiled program is refused, and so is a
  field the method does not read, or a learning rate or weight decay of a player whose optimizer the user gave
  (adjax does not set it)."""
  configs = []
  method = methods_lib.METHODS[config.method]
  for point in sweep:
    for field in point:
      check_field(field)
      player, _, name = field.partition('.')
      unread = (
        (player == 'game' and name not in method.weight_fields())
        or (player in methods_lib.PLAYERS and player not in method.present)
        or (field == 'tau.tau0' and method.discriminator is None)
      )
      if unread:
        reads = [f'game.{w}' for w in method.weight_fields()] + [f'{p}.*' for p in method.present]
        raise ConfigError(
          f'{field} is not read by method={config.method}: every point would train the same model; '
          f'it reads {", ".join(reads + (["tau.tau0"] if method.discriminator else []))}'
        )
      if player in (optimizers or {}) and name in fields_lib.player_hyperparameters():
        raise ConfigError(
          f'{field} cannot be swept: the {player} has its own optimizer, whose hyperparameters adjax does not set'
        )
    configs.append(config_lib.validate(with_overrides(config, point)))
  return configs
