"""The documentation covers what it must: every public name and config field is documented and in the reference, and
the README stays a first screen."""

import os
import re
import shlex
import subprocess
import sys

from absl.testing import absltest

import adjax
from adjax import fields

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(*path: str) -> str:
  with open(os.path.join(REPO, *path)) as f:
    return f.read()


class DocsTest(absltest.TestCase):
  def test_every_public_name_has_a_docstring_and_is_in_the_api_reference(self):
    api = _read('docs', 'api.md')
    for name in adjax.__all__:
      if name == '__version__':
        self.assertRegex(adjax.__version__, r'^\d+\.\d+\.\d+$')
        continue
      self.assertTrue((getattr(adjax, name).__doc__ or '').strip(), f'adjax.{name} has no docstring')
      self.assertRegex(api, rf'auto\w+:: adjax\.{re.escape(name)}\b', f'adjax.{name} is not in docs/api.md')

  def test_every_config_field_has_a_doc(self):
    for f in fields.fields().values():
      self.assertGreater(len(f.doc.strip()), 8, f'config field {f.name} has no doc')

  def test_the_version_is_the_packages_and_the_changelogs(self):
    self.assertIn('version = attr: adjax.__version__', _read('setup.cfg'))
    self.assertIn(f'## {adjax.__version__} ', _read('CHANGELOG.md'))

  def test_the_readme_is_a_first_screen_and_links_the_docs(self):
    readme = _read('README.md')
    self.assertLess(len(readme.splitlines()), 200)
    self.assertIn('python -m sphinx -W -b html docs docs/_build/html', readme)
    self.assertIn('python -m sphinx -W -b html docs docs/_build/html', _read('.ci', 'run'))

  def test_the_readmes_entrypoint_commands_take_their_flags(self):
    """Each ``python -m experiments.…`` command the README shows runs with its flags as written, up to the config's
    checks: given one more flag that no data can satisfy, it is refused there, and nothing is written."""
    commands = [
      c.strip()
      for block in re.findall(r'```bash\n(.*?)```', _read('README.md'), re.S)
      for c in block.replace('\\\n', ' ').split('&&')
      if c.strip().startswith('python -m experiments.')
    ]
    self.assertLen(commands, 2)  # the main command and one run
    for command in commands:
      workdir = os.path.join(self.create_tempdir().full_path, 'run')
      args = [a if not a.startswith('--workdir=') else f'--workdir={workdir}' for a in shlex.split(command)[1:]]
      proc = subprocess.run(
        [sys.executable, *args, '--config.n_train=5000'], cwd=REPO, capture_output=True, text=True, timeout=120,
        check=False,
      )  # fmt: skip
      self.assertEqual(proc.returncode, 1, f'{command}: {proc.stderr[-2000:]}')
      self.assertIn('n_val=1000 needs 100 examples of class 0', proc.stderr, command)
      self.assertFalse(os.path.exists(workdir), command)


if __name__ == '__main__':
  absltest.main()
