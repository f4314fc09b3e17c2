"""Digests of the lowered programs (a round and pretraining of ADIM, ADIB, DISTN, NGAN, CODIS at the default config),
without debug information: equal digests at two commits mean the compiled programs are the same, so a refactor
cannot have slowed the round. Run it at each commit (``git worktree``) and compare the JSON.

  python -m benchmarks.program_digests > digests.json
"""

import functools
import hashlib
import json
import sys

import jax

from adjax import config as config_lib
from adjax import data as data_lib
from adjax import game as game_lib
from adjax import rounds
from experiments.configs import mnist

METHODS = ('adim', 'adib', 'distn', 'mimic', 'noisy', 'ngan', 'codis', 'student')


def digests() -> dict[str, str]:
  out = {}
  for method in METHODS:
    c = mnist.get_config()
    c.method = method
    c = config_lib.validate(c)
    splits = data_lib.load(c)
    split = splits.split('train')
    game = game_lib.build(c, splits.num_classes)
    state = game_lib.init_state(game, jax.random.key(0), split)
    data = game_lib.as_data(split)
    for name, fn in (('round', rounds.play_round), ('pretrain', rounds.pretrain)):
      text = jax.jit(functools.partial(fn, game)).lower(state, data).as_text(debug_info=False)
      out[f'{method}/{name}'] = hashlib.sha256(text.encode()).hexdigest()[:16]
  return out


if __name__ == '__main__':
  json.dump(digests(), sys.stdout, indent=1)
  print()
