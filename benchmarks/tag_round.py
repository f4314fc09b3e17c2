r"""Seconds per ADIM round on the tag task, and the share of it spent in the LSTM text encoder.

  python -m benchmarks.tag_round [--batch_sizes=32,64] [--repeats=5] [--out=FILE]

One ADIM round (``experiments/configs/tags.py``: k_d = 20, k_t = 10, k_s = 10
updates; the teacher and both discriminator networks read the caption with
an LSTM) is timed as the run compiles it, and again with the LSTM replaced
by the mean of the caption's word embeddings (everything else the same),
interleaved, medians of ``--repeats``. The LSTM's share of the round is
``1 - mean_encoder / lstm``. The LSTM is ``nn.RNN`` (a ``lax.scan`` over the
words, not a Python loop), and a network encodes an example's text once per
forward pass, whatever the number of tags it scores.
"""

import functools
import json
import statistics
import time
from unittest import mock

from absl import app
from absl import flags
import jax
import jax.numpy as jnp

from adjax import config as config_lib
from adjax import data as data_lib
from adjax import game as game_lib
from adjax import models
from adjax import rounds
from experiments.configs import tags

_BATCH_SIZES = flags.DEFINE_list('batch_sizes', ['32', '64'], 'Minibatch sizes.')
_REPEATS = flags.DEFINE_integer('repeats', 5, 'Timed rounds per case (median).')
_OUT = flags.DEFINE_string('out', None, 'Also write the JSON here.')


class MeanEncoder(models.TextEncoder):
  """The LSTM's stand-in: the mean word embedding of the non-padding words, projected to the hidden size."""

  @models.nn.compact
  def __call__(self, tokens_BxL):
    words_BxLxE = models.nn.Embed(self.vocab_size, self.embed_dim)(tokens_BxL)
    used_BxLx1 = (tokens_BxL > 0)[..., None]
    mean_BxE = jnp.sum(words_BxLxE * used_BxLx1, 1) / jnp.maximum(jnp.sum(used_BxLx1, 1), 1)
    return models.nn.Dense(self.hidden)(mean_BxE)


def _round(batch_size: int, mean_encoder: bool):
  """A compiled ADIM round (one member, not vmapped) and its state and data."""
  c = tags.get_config()
  c.batch_size = batch_size
  c = config_lib.validate(c)
  splits = data_lib.load(c)
  patch = mock.patch.object(models, 'TextEncoder', MeanEncoder) if mean_encoder else None
  if patch:
    patch.start()
  try:
    game = game_lib.build(c, splits.num_classes, vocab_size=splits.vocab_size)
    state = game_lib.init_state(game, jax.random.key(0), splits.split('train'))
    data = game_lib.as_data(splits.split('train'))
    play = jax.jit(functools.partial(rounds.play_round, game), donate_argnums=(0,))
    state, _ = play(state, data)  # compiles (traced with the patch on)
    jax.block_until_ready(state)
  finally:
    if patch:
      patch.stop()
  return play, {'state': state}, data


def _timed(play, holder, data) -> float:
  t0 = time.perf_counter()
  holder['state'], metrics = play(holder['state'], data)
  jax.block_until_ready(metrics)
  return time.perf_counter() - t0


def main(argv):
  del argv
  report = {'device': jax.devices()[0].device_kind, 'method': 'adim', 'cases': []}
  for batch_size in map(int, _BATCH_SIZES.value):
    cases = {name: _round(batch_size, name == 'mean_encoder') for name in ('lstm', 'mean_encoder')}
    seconds = {name: [] for name in cases}
    for _ in range(_REPEATS.value):  # interleaved: the machine's drift hits both alike
      for name, (play, holder, data) in cases.items():
        seconds[name].append(_timed(play, holder, data))
    lstm, mean = statistics.median(seconds['lstm']), statistics.median(seconds['mean_encoder'])
    case = {
      'batch_size': batch_size,
      'seconds_per_round': lstm,
      'mean_encoder_seconds': mean,
      'lstm_share': 1 - mean / lstm,
    }
    report['cases'].append(case)
    print(json.dumps(case), flush=True)
  if _OUT.value:
    with open(_OUT.value, 'w') as f:
      json.dump(report, f, indent=1)


if __name__ == '__main__':
  app.run(main)
