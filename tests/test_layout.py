"""The package's shape: no import circles, imports at the top, small host-side modules, every config field declared
once, and the roles the old hand-kept lists gave each field derived from those declarations."""

import ast
import pathlib

from absl.testing import absltest

from adjax import fields
from adjax import methods

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / 'adjax'
# Imports a function may make: optional or slow third-party packages that only one feature needs.
LAZY = {'tensorboardX', 'tensorflow_datasets', 'mlxtend', 'matplotlib'}
# Lines a module may have: the host side (the trainer, adjax.run, checkpoints, the workdir, metrics) is held to 300,
# the rest to 500.
HOST = ('adjax.train', 'adjax.run', 'adjax.checkpoint', 'adjax.workdir', 'adjax.metric_writer')
HOST_BUDGET, BUDGET = 300, 500
# The config's fields when their roles moved from hand-kept lists into declarations (game weights: the registry's).
MIGRATED = {
  *(f'augment.{n}' for n in ('flip', 'rotation', 'shift', 'zoom')),
  *(f'{p}.{n}' for p in ('student', 'teacher', 'discriminator') for n in ('model', 'learning_rate', 'weight_decay')),
  *(f'game.{n}' for n in ('omega_r', 'omega_s', 'omega_t', 'nu', 'mu', 'upsilon')),  # the built-in weights
  *(f'game.{n}' for n in ('baseline', 'baseline_decay', 'distill_terms', 'distillation', 'distn_alpha')),
  *(f'game.{n}' for n in ('divide_by_batch', 'estimator', 'generator_reward', 'heads', 'kd_temperature')),
  *(f'game.{n}' for n in ('noisy_keep', 'noisy_sigma')),
  *(f'mesh.{n}' for n in ('batch', 'devices', 'members')),
  *(f'pretrain.{n}' for n in ('discriminator', 'frozen_teacher', 'student', 'teacher')),
  *(f'tau.{n}' for n in ('decay', 'every', 'tau0', 'tau_min')),
  *(f'text.{n}' for n in ('embed_dim', 'embeddings', 'hidden', 'width')),
  *(f'tfds.{n}' for n in ('data_dir', 'download', 'name', 'test_split', 'train_split')),
  'batch_size', 'data_file', 'dataset', 'eval_chunk', 'k_d', 'k_s', 'k_t', 'method', 'n_train', 'n_val', 'num_seeds',
  'rank_k', 'rounds', 'seed', 'select_metric', 'subtract_pixel_mean', 'teacher_cache',
}  # fmt: skip


# The architecture, bottom up: a module imports only modules of its own layer or below (WORKSPACE.md, "Layers").
LAYERS = {
  'base': ('errors', 'registry', 'figures'),
  'theory': ('discriminators', 'losses', 'values', 'estimators', 'ranking'),
  'nets': ('conv', 'models', 'augment'),
  'data': ('data', 'scenes', 'yfcc'),
  'config': ('methods', 'fields', 'default_config', 'config', 'sweeps'),
  'program': ('parallel', 'game', 'objectives', 'diagnostics', 'rounds', 'gradients', 'kvote'),
  'host': ('checkpoint', 'workdir', 'metric_writer', 'train', 'run'),
}


def _layer(module: str) -> int:
  name = module.removeprefix('adjax.').split('.')[0]
  if module == 'adjax':
    return len(LAYERS)  # the public API sits on top
  return next(i for i, names in enumerate(LAYERS.values()) if name in names)


def _modules() -> dict[str, pathlib.Path]:
  out = {}
  for path in sorted(PACKAGE.rglob('*.py')):
    parts = path.relative_to(PACKAGE.parent).with_suffix('').parts
    out['.'.join(parts[:-1] if parts[-1] == '__init__' else parts)] = path
  return out


def _imports(tree: ast.Module, module: str, modules) -> list[tuple[str, ast.AST]]:
  """``(imported adjax module, node)`` of each import in ``tree`` (``from adjax import x`` names a module or not)."""
  out = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      out += [(a.name, node) for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module:
      for a in node.names:
        full = f'{node.module}.{a.name}'
        out.append((full if full in modules else node.module, node))
  return [(name, node) for name, node in out if name in modules and name != module]


class LayoutTest(absltest.TestCase):
  def test_no_import_cycle_among_adjax_modules(self):
    modules = _modules()
    graph = {
      m: {name for name, _ in _imports(ast.parse(p.read_text()), m, modules) if name != 'adjax'}
      for m, p in modules.items()
    }
    state = {}

    def visit(m, path):
      state[m] = 'open'
      for n in sorted(graph[m]):
        if state.get(n) == 'open':
          self.fail('import cycle: ' + ' -> '.join([*path[path.index(n) :], n]))
        if n not in state:
          visit(n, [*path, n])
      state[m] = 'done'

    for m in modules:
      if m not in state:
        visit(m, [m])

  def test_every_module_imports_only_its_layer_or_below(self):
    modules, upward = _modules(), []
    for module, path in modules.items():
      for name, node in _imports(ast.parse(path.read_text()), module, modules):
        if name != 'adjax' and _layer(name) > _layer(module):
          upward.append(f'{module}:{node.lineno} imports {name}')
    self.assertEqual(upward, [])

  def test_imports_are_at_the_top_but_optional_packages(self):
    inner = []
    for module, path in _modules().items():
      tree = ast.parse(path.read_text())
      top = {id(node) for node in tree.body}
      for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in top:
          names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
          if not all(n.split('.')[0] in LAZY for n in names):
            inner.append(f'{module}:{node.lineno} imports {names}')
    self.assertEqual(inner, [])

  def test_tests_use_no_private_name_of_the_project(self):
    project, private = ('adjax', 'experiments', 'benchmarks', 'tests'), []
    for path in sorted(pathlib.Path(__file__).resolve().parent.glob('*.py')):
      tree = ast.parse(path.read_text())
      aliases = set()
      for node in ast.walk(tree):
        if isinstance(node, ast.Import):
          aliases |= {(a.asname or a.name).split('.')[0] for a in node.names if a.name.startswith(project)}
        elif isinstance(node, ast.ImportFrom) and (node.module or '').startswith(project):
          aliases |= {a.asname or a.name for a in node.names}
          private += [f'{path.name}:{node.lineno} imports {a.name}' for a in node.names if a.name.startswith('_')]
      for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
          if node.attr.startswith('_') and not node.attr.startswith('__'):
            private.append(f'{path.name}:{node.lineno} uses {node.value.id}.{node.attr}')
    self.assertEqual(private, [])

  def test_modules_within_their_line_budget(self):
    over = {}
    for module, path in _modules().items():
      lines = len(path.read_text().splitlines())
      if lines > (HOST_BUDGET if module.startswith(HOST) else BUDGET):
        over[module] = lines
    self.assertEqual(over, {})

  def test_every_config_field_is_declared_once(self):
    declared = [d.name for d in fields.declarations()]
    self.assertEqual(len(declared), len(set(declared)))
    self.assertEqual({name for name, _ in fields.leaves(fields.get_config())}, set(fields.fields()))
    self.assertTrue(all(d.doc for d in fields.declarations()))

  def test_roles_derived_from_the_declarations_are_those_the_old_lists_gave(self):
    # Pinned once, for the migration from hand-kept lists to declarations: what each list said, expanded to the
    # fields of that time (a field declared later is left out, whatever its roles).
    self.assertLessEqual(MIGRATED, set(fields.fields()))  # the pinned fields are all still declared
    all_fields = MIGRATED
    role = lambda **roles: set(fields.names(**roles)) & MIGRATED
    in_groups = lambda *names: {f for f in all_fields if f in names or f.split('.')[0] in names}
    self.assertLessEqual(role(sweepable=True), role(compiled=False))  # arrays in the state: not in the program
    self.assertEqual(
      role(compiled=False) - role(sweepable=True), {'seed', 'num_seeds', 'rounds', 'data_file', 'teacher_cache'}
    )
    self.assertEqual(
      role(sweepable=True),
      ({*(f'game.{w}' for w in methods.WEIGHTS), 'tau.tau0'} & MIGRATED)
      | {f'{p}.{h}' for p in methods.PLAYERS for h in ('learning_rate', 'weight_decay')},
    )
    self.assertEqual(fields.player_hyperparameters(), ('learning_rate', 'weight_decay'))
    self.assertEqual(role(resumable=True), {'rounds'})
    self.assertEqual(role(place=True), {'teacher_cache', 'mesh.devices', 'mesh.members'})
    self.assertEqual(
      role(added=True),
      in_groups('mesh', 'text', 'select_metric', 'rank_k')
      | {'game.generator_reward', 'game.divide_by_batch', 'game.noisy_keep', 'game.distill_terms'},
    )
    not_teacher = in_groups(
      'method', 'game', 'student', 'discriminator', 'k_d', 'k_t', 'k_s', 'rounds', 'num_seeds', 'seed', 'tau',
      'teacher_cache', 'pretrain', 'mesh',
    )  # fmt: skip
    teacher = (all_fields - not_teacher) | {'game.divide_by_batch', 'pretrain.frozen_teacher'}
    self.assertEqual(role(teacher=True), teacher)

  def test_a_field_not_declared_counts_as_compiled_and_as_training_the_teacher(self):
    c = fields.get_config()
    c.my_field = 3
    self.assertEqual(fields.computed(c, compiled=False)['my_field'], 3)
    self.assertEqual(fields.computed(c, teacher=False)['my_field'], 3)
    self.assertNotIn('seed', fields.computed(c, compiled=False))
    self.assertNotIn('game.nu', fields.computed(c, compiled=False))


if __name__ == '__main__':
  absltest.main()
