"""What every registry (methods, weights, distillation terms, estimators, discriminator kinds, models, datasets)
checks on a new entry, and its lookup by name."""


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


def lookup(kind: str, table: dict, name: str):
  """``table[name]``; ``ValueError`` naming the registered ones otherwise."""
  if name not in table:
    raise ValueError(f'unknown {kind} {name!r}; valid: {", ".join(table)}')
  return table[name]
