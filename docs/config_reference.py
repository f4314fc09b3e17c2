"""The configuration reference, written from ``adjax.fields``' declarations when the docs build (never by hand)."""

import json
import os

from adjax import fields

ROLES = {
  'sweepable': 'sweepable',
  'place': 'where, not what (a resume ignores it)',
  'resumable': 'may change on resume',
}


def _cell(text: str) -> str:
  return str(text).replace('|', '\\|').replace('\n', ' ')


def _default(value) -> str:
  if isinstance(value, dict):
    return '`' + json.dumps(value) + '`'
  return f'`{value!r}`' if value not in ('', None) else ('`""`' if value == '' else "`None` (the method's)")


def markdown() -> str:
  """Every field of the default config, top-level ones first, then each group's: default, meaning and roles."""
  groups = {'': 'Fields at the top level of the config.'}
  rows: dict[str, list[str]] = {'': []}
  for d in fields.declarations():
    if isinstance(d, fields.Group):
      groups[d.name] = _cell(d.doc)[:1].upper() + _cell(d.doc)[1:] + '.'
      rows.setdefault(d.name, [])
      continue
    roles = [text for role, text in ROLES.items() if getattr(d, role)]
    if not d.compiled and not d.sweepable and not d.place:
      roles.append('host-side (not compiled)')
    group = d.name.rpartition('.')[0]
    rows.setdefault(group, []).append(
      f'| `{d.name}` | {_cell(_default(d.default))} | {_cell(d.doc)} | {", ".join(roles)} |'
    )
  lines = []
  for name, doc in groups.items():
    lines += [f'## `{name}`' if name else '## Top level', '', doc, '']
    lines += ['| field | default | meaning | roles |', '|---|---|---|---|', *rows[name], '']
  return '\n'.join(lines)


def write(directory: str) -> None:
  os.makedirs(directory, exist_ok=True)
  path = os.path.join(directory, 'config_fields.md')
  text = markdown()
  if os.path.exists(path):
    with open(path) as f:
      if f.read() == text:  # unchanged: Sphinx keeps its pages
        return
  with open(path, 'w') as f:
    f.write(text)
