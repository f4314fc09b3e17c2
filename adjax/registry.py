"""What every registry (methods, weights, distillation terms, estimators, models, datasets) checks on a new entry."""


def is_new(kind: str, table: dict, name: str, entry) -> bool:
  """True for a new name; False for the same entry registered again (a module imported twice: nothing to do).

  Raises ``ValueError`` for a name that is not an identifier (it becomes a
  config value or field) or that another entry holds.
  """
  if not name.isidentifier():
    raise ValueError(f'{kind} name {name!r} must be an identifier (it becomes a config value or field)')
  if name in table and table[name] != entry:
    raise ValueError(
      f'{kind} name {name!r} must be a new identifier: {kind} {name!r} is already registered as something else '
      f'(registered: {", ".join(table)})'
    )
  return name not in table
