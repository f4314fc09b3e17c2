"""The documentation covers what it must: every public name and config field is documented and in the reference, and
the README stays a first screen."""

import os
import re

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


if __name__ == '__main__':
  absltest.main()
