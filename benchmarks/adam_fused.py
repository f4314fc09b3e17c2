r"""Adam in the round: optax's chain against hand-fused updates.

  python -m benchmarks.adam_fused [--method=adim] [--steps=20] [--repeats=5] [--cycles=3] [--out=FILE]

At batch 10 the optimizer is about a third of a round's thread time
(``benchmarks/round_profile.py``). Adam is memory-bound: an update must read
the parameter, its gradient and both moments and write the parameter and the
moments back, 28 bytes per float32 parameter. This times ``steps`` updates of
the method's discriminator parameters (ADIM's two LeNets: the round's largest
player) inside one ``lax.scan``, as a round does, three ways:

- ``optax``: the round's own optimizer (``game.make_optimizer``: coupled
  weight decay, then ``optax.adam``, hyperparameters injected) and
  ``optax.apply_updates``;
- ``fused``: the same arithmetic written as one expression per leaf that
  returns the new parameter and both moments (one pass, if XLA fuses it so);
- ``fused_scalars_first``: the same with the bias corrections and the
  learning rate folded into per-step scalars (one division and one square
  root an element instead of three divisions and a root).

Reported: seconds per update, GB/s at 28 bytes per parameter, each way's
speed-up over optax's, and the largest difference
of each fused way's parameters from optax's after the scan (float rounding).
Interleaved over ``cycles`` (median of ``repeats`` each; median over cycles).
"""

import statistics

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import optax

from adjax import game as game_lib
from benchmarks import common

_METHOD = flags.DEFINE_string('method', 'adim', 'Whose discriminator parameters to update (adib, adim).')
_STEPS = flags.DEFINE_integer('steps', 20, 'Updates per scan (the round updates the discriminator k_d = 20 times).')
_REPEATS = flags.DEFINE_integer('repeats', 5, 'Timed scans per way and cycle (median).')
_CYCLES = flags.DEFINE_integer('cycles', 3, 'Interleaved measurement cycles (median over them).')
_OUT = flags.DEFINE_string('out', None, 'Also write the JSON here.')

BYTES_PER_PARAMETER = 28  # read p, g, m, v; write p, m, v (float32)
B1, B2, EPS = 0.9, 0.999, 1e-8  # optax.adam's defaults


def fused_adam(learning_rate: float, weight_decay: float, scalars_first: bool = False):
  """``step(p, g, m, v, t) -> (p, m, v)``: ``make_optimizer``'s Adam with coupled weight decay, one expression.

  ``scalars_first``: the bias corrections and the learning rate folded into two scalars per step, so that an
  element costs one division and one square root (optax's order divides three times); equal up to rounding."""

  def leaf(p, g, m, v, t):
    g = g + weight_decay * p
    m = B1 * m + (1 - B1) * g
    v = B2 * v + (1 - B2) * g * g
    if scalars_first:
      return p - (learning_rate / (1 - B1**t)) * m / (jnp.sqrt(v * (1 / (1 - B2**t))) + EPS), m, v
    m_hat = m / (1 - B1**t)
    v_hat = v / (1 - B2**t)
    return p - learning_rate * m_hat / (jnp.sqrt(v_hat) + EPS), m, v

  def step(p, g, m, v, t):
    out = jax.tree.map(lambda *a: leaf(*a, t), p, g, m, v)
    return tuple(jax.tree.map(lambda o, i=i: o[i], out, is_leaf=lambda o: isinstance(o, tuple)) for i in range(3))

  return step


def programs(params, steps: int, learning_rate: float = 1e-3, weight_decay: float = 1e-4):
  """``{way: jitted scan(params) -> params}`` and the gradients they use (fixed, scaled per step)."""
  grads = jax.tree.map(lambda p, k: 1e-3 * jax.random.normal(k, p.shape), params, _keys(params))
  optimizer = game_lib.make_optimizer(learning_rate, weight_decay)
  scale = jnp.linspace(0.5, 1.5, steps)

  def with_optax(p):
    def body(carry, s):
      p, state = carry
      updates, state = optimizer.update(jax.tree.map(lambda g: s * g, grads), state, p)
      return (optax.apply_updates(p, updates), state), None

    return jax.lax.scan(body, (p, optimizer.init(p)), scale)[0][0]

  def with_fused(p, fused):
    def body(carry, inputs):
      p, m, v = carry
      s, t = inputs
      return fused(p, jax.tree.map(lambda g: s * g, grads), m, v, t), None

    zeros = jax.tree.map(jnp.zeros_like, p)
    return jax.lax.scan(body, (p, zeros, zeros), (scale, jnp.arange(1, steps + 1, dtype=jnp.float32)))[0][0]

  return {
    'optax': jax.jit(with_optax),
    'fused': jax.jit(lambda p: with_fused(p, fused_adam(learning_rate, weight_decay))),
    'fused_scalars_first': jax.jit(lambda p: with_fused(p, fused_adam(learning_rate, weight_decay, True))),
  }


def _keys(tree):
  leaves, treedef = jax.tree.flatten(tree)
  return jax.tree.unflatten(treedef, list(jax.random.split(jax.random.key(0), len(leaves))))


def measure(method: str, steps: int, repeats: int, cycles: int) -> dict:
  _, state, _ = common.setup(method, 10, tiny=True)
  params = jax.tree.map(lambda a: a[0], state['discriminator']['params'])
  n = sum(a.size for a in jax.tree.leaves(params))
  ways = programs(params, steps)
  outs = {w: jax.block_until_ready(f(params)) for w, f in ways.items()}  # compiled, and the results compared
  diff = {
    w: max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree.leaves(outs['optax']), jax.tree.leaves(outs[w])))
    for w in ('fused', 'fused_scalars_first')
  }
  samples = {w: [] for w in ways}
  for _ in range(cycles):
    for w, f in ways.items():
      samples[w].append(common.median_seconds(lambda f=f: jax.block_until_ready(f(params)), repeats) / steps)
  seconds = {w: statistics.median(s) for w, s in samples.items()}
  return {
    'method': method,
    'parameters': n,
    'steps': steps,
    'seconds_per_update': seconds,
    'gb_per_s': {w: BYTES_PER_PARAMETER * n / s / 1e9 for w, s in seconds.items()},
    'speedup_over_optax': {w: seconds['optax'] / s for w, s in seconds.items()},
    'max_abs_difference_from_optax': diff,
    'samples': samples,
  }


def main(argv):
  del argv
  common.write_report(measure(_METHOD.value, _STEPS.value, _REPEATS.value, _CYCLES.value), _OUT.value)


if __name__ == '__main__':
  app.run(main)
