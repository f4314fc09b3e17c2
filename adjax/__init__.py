"""adjax: adversarial distillation (ADIB, ADIM) in JAX and Flax.

The public API, for a script of one's own::

  import adjax

  config = adjax.get_config()                       # every field: adjax.describe_config(config)
  data = adjax.from_arrays(x_train, y_train, x_test, y_test)
  results = adjax.train_and_evaluate(config, workdir, data=data, nets={'student': MyModule()})

Underneath it, the functional core for a loop of one's own: ``adjax.setup(config, data=..., nets=...)``
gives the game, ``init()``, ``data(split)`` and the jitted ``programs()`` that ``train_and_evaluate`` runs
(``adjax.run.setup``).

Importing it pulls in no ``experiments``, torch, tensorboardX or matplotlib (``tests/test_registry.py``).

Extension points (each a dict plus a ``register_*`` function): methods and
their weight fields (``adjax.methods``), distillation terms, estimators
(``adjax.estimators``), discriminator kinds (``adjax.values``), models
(``adjax.models``) and datasets (``adjax.data``). Config fields are declared
in ``adjax.fields``.
"""

from adjax.data import Source
from adjax.data import from_arrays
from adjax.data import register_dataset
from adjax.default_config import describe as describe_config
from adjax.default_config import get_config
from adjax.estimators import Estimator
from adjax.estimators import register_estimator
from adjax.methods import Distillation
from adjax.methods import Method
from adjax.methods import register_distillation
from adjax.methods import register_method
from adjax.methods import register_weight
from adjax.models import register_model
from adjax.run.setup import Setup
from adjax.run.setup import setup
from adjax.train import finished
from adjax.train import train_and_evaluate
from adjax.values import DiscriminatorKind
from adjax.values import register_discriminator_kind

__version__ = '0.3.0'  # also the package's (setup.cfg reads it); CHANGELOG.md says what changed

__all__ = [
  'DiscriminatorKind',
  'Distillation',
  'Estimator',
  'Method',
  'Setup',
  'Source',
  '__version__',
  'describe_config',
  'finished',
  'from_arrays',
  'get_config',
  'register_dataset',
  'register_discriminator_kind',
  'register_distillation',
  'register_estimator',
  'register_method',
  'register_model',
  'register_weight',
  'setup',
  'train_and_evaluate',
]
