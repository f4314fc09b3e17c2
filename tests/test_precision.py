"""Mixed precision (``config.precision``): networks compute in bfloat16, everything else stays float32."""

import functools

from absl.testing import absltest
from absl.testing import parameterized
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from adjax import config as config_lib
from adjax import data
from adjax import game as game_lib
from adjax import models
from adjax import rounds
from adjax.errors import ConfigError
from adjax.run import identity
from tests.test_train import tiny_config


def _game(method='adim', precision='bfloat16', model='mlp', estimator=None):
  """A tiny game (the teacher and discriminator ``model``), its initial state and training split."""
  c = tiny_config(method, precision=precision)
  c.teacher.model = c.discriminator.model = model
  if estimator:
    c.game.estimator = estimator
  c = config_lib.validate(c)
  splits = data.load(c)
  game = game_lib.build(c, splits.num_classes)
  train = splits.split('train')
  return game, game_lib.init_state(game, jax.random.key(0), train), train


def _dtypes_of(primitive: str, closed_jaxpr) -> set[str]:
  """The operand dtypes of every ``primitive`` equation, nested jaxprs included."""
  out = set()

  def visit(jaxpr):
    for eqn in jaxpr.eqns:
      if eqn.primitive.name == primitive:
        out.update(str(v.aval.dtype) for v in eqn.invars)
      for sub in jax.core.jaxprs_in_params(eqn.params):
        visit(sub)

  visit(closed_jaxpr.jaxpr)
  return out


class ComputeInTest(absltest.TestCase):
  def test_casts_floats_and_leaves_integers(self):
    tree = {'w': jnp.ones(3, jnp.float32), 'tokens': jnp.arange(3), 'already': jnp.ones(2, jnp.bfloat16)}
    cast = models.compute_in('bfloat16', tree)
    self.assertEqual({k: str(v.dtype) for k, v in cast.items()}, {'w': 'bfloat16', 'tokens': 'int32', 'already':
                     'bfloat16'})  # fmt: skip

  def test_an_unknown_precision_is_refused_naming_the_valid_ones(self):
    with self.assertRaisesRegex(ConfigError, r"precision='float16' is not valid; choose one of: float32, bfloat16"):
      config_lib.validate(tiny_config(precision='float16'))


class NetworksTest(parameterized.TestCase):
  @parameterized.parameters(('adib', 'mlp'), ('adim', 'lenet'))
  def test_networks_compute_in_bfloat16_and_give_float32_scores_close_to_float32(self, method, model):
    game16, state, train = _game(method, model=model)
    game32, _, _ = _game(method, precision='float32', model=model)
    for player in game16.method.present:
      x = game_lib.view(player, train)
      params = state[player]['params']
      apply16 = functools.partial(game16.apply, player)
      scores16, scores32 = apply16(params, x), game32.apply(player, params, x)
      self.assertEqual(scores16.dtype, jnp.float32)
      self.assertEqual(scores16.shape, scores32.shape)
      # bfloat16 keeps 8 bits of mantissa: the scores agree to about 1 % of their scale, not to float32's 1e-6.
      scale = float(jnp.max(jnp.abs(scores32)))
      error = float(jnp.max(jnp.abs(scores16 - scores32)))
      self.assertLess(error, 0.03 * scale, player)
      self.assertGreater(error, 1e-6 * scale, f'{player}: the same as float32, so not computed in bfloat16')
      products = _dtypes_of('dot_general', jax.make_jaxpr(apply16)(params, x))
      products |= _dtypes_of('conv_general_dilated', jax.make_jaxpr(apply16)(params, x))
      self.assertEqual(products, {'bfloat16'}, player)

  def test_float32_programs_are_those_without_the_field(self):
    """precision=float32 adds no operation: its round's jaxpr is the one of a config written before the field."""
    game, state, train = _game(precision='float32')
    old = tiny_config()
    del old['precision']  # an older config: validate fills in the default
    old = config_lib.validate(old)
    self.assertEqual(old.precision, 'float32')
    game_old = game_lib.build(old, game.num_classes)
    round_ = lambda g: str(jax.make_jaxpr(functools.partial(rounds.play_round, g))(state, game_lib.as_data(train)))
    self.assertEqual(round_(game), round_(game_old))
    self.assertNotIn('bf16', round_(game))


class LossesStayFloat32Test(parameterized.TestCase):
  # The sampled estimators (REINFORCE on concrete samples, plain REINFORCE) and the authors' update: each
  # differentiates log-probabilities of the scores; the pathwise ones differentiate the samples themselves.
  @parameterized.parameters(('adim', 'concrete_reinforce'), ('adim_ngs', 'reinforce'), ('ngan', 'authors'))
  def test_a_round_at_logits_of_1e4_is_finite_and_updates_float32_states(self, method, estimator):
    game, state, train = _game(method, estimator=estimator)
    # Every player's last layer scaled up: scores of magnitude about 1e4, in bfloat16 (whose largest finite value
    # is 3e38: no overflow; its 8-bit mantissa makes them coarse, which log-space math must survive).
    state = {p: _scaled(s, 2e4) if p in game.method.present else s for p, s in state.items()}
    for player in game.method.present:
      scores = game.apply(player, state[player]['params'], game_lib.view(player, train))
      self.assertGreater(float(jnp.max(jnp.abs(scores))), 5e3, player)
    new, metrics = jax.jit(functools.partial(rounds.play_round, game))(state, game_lib.as_data(train))
    for leaf in jax.tree.leaves((new, metrics)):
      if jnp.issubdtype(leaf.dtype, jnp.floating):
        self.assertTrue(np.all(np.isfinite(leaf)))
    for player in game.method.present:
      dtypes = {str(a.dtype) for a in jax.tree.leaves(new[player]) if jnp.issubdtype(a.dtype, jnp.floating)}
      self.assertEqual(dtypes, {'float32'}, player)
      moved = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), new[player]['params'], state[player]['params'])
      self.assertTrue(any(jax.tree.leaves(moved)), f'{player} did not move')


def _scaled(player_state, factor):
  """The last Dense layer of each network in ``player_state['params']`` times ``factor``."""

  def scale(path, a):
    names = [getattr(k, 'key', '') for k in path]
    return a * factor if 'Dense_2' in names else a

  return {**player_state, 'params': jax.tree_util.tree_map_with_path(scale, player_state['params'])}


class IdentityTest(absltest.TestCase):
  def test_precision_is_part_of_what_a_run_computes_and_an_older_run_was_float32(self):
    c32 = config_lib.validate(tiny_config())
    c16 = config_lib.validate(tiny_config(precision='bfloat16'))
    run = lambda c: identity.what_is_computed(identity.run_json(c, None))
    self.assertNotEqual(run(c32), run(c16))
    older = identity.run_json(c32, None)
    del older['precision']  # a workdir written before the field: it ran float32
    self.assertEqual(identity.what_is_computed(older), run(c32))
    self.assertNotEqual(identity.what_is_computed(older), run(c16))


class UserModuleTest(absltest.TestCase):
  def test_a_users_module_computes_in_bfloat16_without_a_dtype_field(self):
    class Mine(nn.Module):
      @nn.compact
      def __call__(self, x):
        return nn.Dense(10)(nn.tanh(nn.Dense(32)(x.reshape(x.shape[0], -1))))

    c = config_lib.validate(tiny_config('student', precision='bfloat16'))
    splits = data.load(c)
    game = game_lib.build(c, splits.num_classes, nets={'student': Mine()})
    x = splits.split('train')['x']
    params = game.nets['student'].init(jax.random.key(0), x[:1])
    self.assertEqual({str(a.dtype) for a in jax.tree.leaves(params)}, {'float32'})
    apply = functools.partial(game.apply, 'student')
    self.assertEqual(_dtypes_of('dot_general', jax.make_jaxpr(apply)(params, x)), {'bfloat16'})
    self.assertEqual(apply(params, x).dtype, jnp.float32)
    grads = jax.grad(lambda p: jnp.sum(apply(p, x) ** 2))(params)
    self.assertEqual({str(a.dtype) for a in jax.tree.leaves(grads)}, {'float32'})


if __name__ == '__main__':
  absltest.main()
