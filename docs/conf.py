"""Sphinx configuration of adjax's documentation: ``python -m sphinx -W -b html docs docs/_build/html``.

The configuration reference is generated from ``adjax.fields``' declarations at build time
(``_generated/config_fields.md``); the tutorials are MyST notebooks executed when the docs build (cached by content
in ``docs/_build/.jupyter_cache``).
"""

import os
import sys

DOCS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(DOCS))  # the repository: adjax, experiments
sys.path.insert(0, DOCS)

import config_reference  # noqa: E402

import adjax  # noqa: E402

project = 'adjax'
author = 'the adjax authors'
copyright = '2026, the adjax authors'
version = release = adjax.__version__

extensions = [
  'myst_nb',
  'sphinx.ext.autodoc',
  'sphinx.ext.napoleon',
  'sphinx.ext.mathjax',
  'sphinx_copybutton',
  'sphinx-mathjax-offline',  # MathJax served with the pages: the math renders without the internet
]
myst_enable_extensions = ['dollarmath', 'colon_fence']
myst_heading_anchors = 3
exclude_patterns = ['_build', '_generated/*.md', 'README.md']
nb_execution_mode = 'cache'
nb_execution_cache_path = os.path.join(DOCS, '_build', '.jupyter_cache')
nb_execution_timeout = 900
nb_execution_raise_on_error = True
nb_merge_streams = True
autodoc_member_order = 'bysource'
autodoc_typehints = 'none'
napoleon_google_docstring = True
napoleon_numpy_docstring = False
html_theme = 'sphinx_book_theme'
html_title = f'adjax {version}'
html_theme_options = {'show_toc_level': 2, 'home_page_in_toc': True}
copybutton_prompt_text = r'\$ '
copybutton_prompt_is_regexp = True


def setup(app):
  app.connect('builder-inited', lambda app: config_reference.write(os.path.join(DOCS, '_generated')))
