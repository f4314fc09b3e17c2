"""The functional core under ``train_and_evaluate``, public for a loop of one's own (as optax and flax users write).

``setup`` checks a config (with the data, networks and optimizers given from
Python) and gives a ``Setup``: the static ``game``, one config per member
(``num_seeds`` seeds times the sweep's points), the split data, and the
pieces the trainer runs — ``init()`` (the members' stacked initial states),
``data(split)`` (a split as the programs read it) and ``programs()`` (the
jitted ``pretrain``, ``play_round``, ``accuracy`` and ``diagnostics`` over a
leading member axis, from ``adjax.rounds.compile_fns``). ``train_and_evaluate`` calls the
same functions; the docs' "Your own loop" shows a loop that reproduces it::

  s = adjax.setup(config)
  pretrain, play_round, accuracy, diagnostics = s.programs()
  state, train, val = s.init(), s.data('train'), s.data('val')
  state, _ = pretrain(state, train, False)
  for r in range(config.rounds):
    state, metrics = play_round(state, train)
    print(r + 1, accuracy('student', state['student']['params'], val)['accuracy'])
"""

import dataclasses
import functools
from typing import NamedTuple

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections

from adjax import augment
from adjax import config as config_lib
from adjax import data as data_lib
from adjax import fields
from adjax import game as game_lib
from adjax import methods
from adjax import parallel
from adjax import rounds
from adjax import sweeps
from adjax.errors import ConfigError
from adjax.run import members as members_lib
from adjax.run import results as results_lib


@dataclasses.dataclass(frozen=True)
class Setup:
  """A checked config and what it trains: the game, the members' configs, the data."""

  config: ml_collections.ConfigDict  # validated (the method's default weights filled in)
  sweep: list[dict] | None
  configs: list[ml_collections.ConfigDict]  # one per member
  overrides: list[dict]  # each member's sweep point
  num_seeds: int
  source: data_lib.Source
  splits: data_lib.Splits  # every member's indices into the one pool of examples
  game: game_lib.Game  # the config's, with the user's networks and optimizers

  def init(self):
    """The members' initial states stacked on a leading member axis, placed on ``mesh`` as the trainer's round 0."""
    example = {k: a[:1] for k, a in self.splits.pool.items()}
    return self.members.put_each(lambda i: members_lib.init_member(self.game, self.configs[i], example))

  @functools.cached_property
  def mesh(self) -> jax.sharding.Mesh:
    """The devices the members run on, as the trainer chooses them (``mesh`` fields; one device on a CPU)."""
    parallel.check(self.config)
    return parallel.make_mesh(self.config, len(self.configs))

  @functools.cached_property
  def members(self) -> members_lib.Members:
    """The members on ``mesh``, as the trainer places them (the pool placed once)."""
    return members_lib.Members(self.mesh, len(self.configs), self.splits)

  def data(self, split: str) -> game_lib.Data:
    """``train``, ``val`` or ``test`` as the programs read it: the pool (on the device, placed once) and the
    members' indices into it."""
    if split not in self.splits.index:
      raise ValueError(f'split {split!r} is not one of {", ".join(self.splits.index)}')
    return self.members.data(split)

  def programs(self) -> rounds.Programs:
    """The jitted ``(pretrain, play_round, accuracy)`` over the members on ``mesh`` (``rounds.compile_fns``: the
    trainer's programs, compiled once per game and mesh)."""
    return rounds.compile_fns(self.game, self.mesh)

  @functools.cached_property
  def metric(self) -> str:
    """The validation figure that selects parameters (``select_metric``; ``accuracy`` for class labels)."""
    return results_lib.select_metric(self.config, self.splits)


class Checked(NamedTuple):
  """What ``check`` finds without data: the validated config, and each member's config and sweep point."""

  config: ml_collections.ConfigDict
  configs: list[ml_collections.ConfigDict]
  overrides: list[dict]
  sweep: list[dict] | None  # the points, a sum_to_one group's unswept weights completed (sweeps.complete_omegas)


def check(config: ml_collections.ConfigDict, sweep: list[dict] | None, nets: dict, optimizers: dict) -> Checked:
  """Every check that needs no data: the config, the players given, the sweep."""
  config = config_lib.validate(config)
  if sweep is not None and not (isinstance(sweep, list | tuple) and all(isinstance(p, dict) for p in sweep)):
    raise ConfigError(f"sweep must be a list of {{field: value}} points, e.g. [{{'game.nu': 0.1}}]; got {sweep!r:.80}")
  game_lib.check_players(config, nets, optimizers)
  sweep = [sweeps.complete_omegas(config.method, p) for p in sweep] if sweep else None
  points = sweeps.check_sweep(config, sweep, optimizers) if sweep else [config]
  seeds = [config.seed + i for i in range(config.num_seeds)]
  configs = [sweeps.with_overrides(c, {'seed': seed}) for c in points for seed in seeds]
  return Checked(config, configs, [point for point in (sweep or [{}]) for _ in seeds], sweep)


def with_data(checked: Checked, data: data_lib.Source | None, nets: dict, optimizers: dict) -> Setup:
  """``check``'s output with the data read and split, the inputs and the networks' outputs checked and the game
  built."""
  config, configs, overrides, sweep = checked
  if data is not None and not isinstance(data, data_lib.Source):
    raise ConfigError(
      f'data must be an adjax.data.Source (adjax.from_arrays(x_train, y_train, ...)), got {type(data).__name__}'
    )
  source = data_lib.labelled(data if data is not None else data_lib.read(config), config.multi_label)
  if not (source.builtin or config.augment.user_data or augment.is_identity(config.augment)):
    config, configs = _unaugmented(config, configs, source)
  game_lib.check_inputs(config, source, tuple(nets))
  splits = members_lib.load_members(configs, source)
  _check_outputs({p: n for p, n in nets.items() if p in methods.METHODS[config.method].present}, splits)
  game = game_lib.build(config, splits.num_classes, nets, optimizers, splits.vocab_size)
  setup = Setup(config, sweep, configs, overrides, config.num_seeds, source, splits, game)
  setup.metric  # noqa: B018  (checked here: select_metric against what the data gives)
  return setup


def _unaugmented(config: ml_collections.ConfigDict, configs: list, source: data_lib.Source):
  """A user's data is not augmented unless ``augment.user_data`` asks: the configs then say no augmentation (what
  the run computes); augmentation set away from its defaults is named in a warning."""
  default = fields.get_config().augment
  set_here = [f'augment.{k}={v}' for k, v in config.augment.items() if k != 'user_data' and v != default[k]]
  note = logging.warning if set_here else logging.info
  note('%s is not augmented (a user\'s data; augment.user_data=True augments it)%s', source.name,
       f': {", ".join(set_here)} not applied' if set_here else '')  # fmt: skip
  off = {'augment.rotation': 0.0, 'augment.shift': 0.0, 'augment.zoom': 0.0, 'augment.flip': False}
  return sweeps.with_overrides(config, off), [sweeps.with_overrides(c, off) for c in configs]


def setup(
  config: ml_collections.ConfigDict,
  sweep: list[dict] | None = None,
  *,
  data: data_lib.Source | None = None,
  nets: dict | None = None,
  optimizers: dict | None = None,
) -> Setup:
  """The checked ``Setup`` of a config; the arguments are ``train_and_evaluate``'s (without a workdir)."""
  nets, optimizers = players_given(nets, optimizers)
  return with_data(check(config, sweep, nets, optimizers), data, nets, optimizers)


def players_given(nets, optimizers) -> tuple[dict, dict]:
  """``nets`` and ``optimizers`` as dicts (None: none given)."""
  out = []
  for name, given in (('nets', nets), ('optimizers', optimizers)):
    if given is not None and not isinstance(given, dict):
      raise ConfigError(f'{name} must be a dict {{player: ...}} (or None), got {type(given).__name__}')
    out.append(dict(given or {}))
  return out[0], out[1]


def _shapes(x) -> str:
  return ' and '.join(str(tuple(a.shape)) for a in jax.tree.leaves(x))


def _check_outputs(nets: dict, splits: data_lib.Splits) -> None:
  """A user's network must give ``[B, num_classes]`` scores: refused here, before anything is compiled or written."""
  for player, net in nets.items():
    x = jax.tree.map(lambda a: jax.ShapeDtypeStruct((2, *a.shape[1:]), a.dtype), game_lib.view(player, splits.pool))
    try:
      params = jax.eval_shape(lambda x, net=net: net.init(jax.random.key(0), x), x)
    except Exception as e:
      raise ConfigError(
        f'nets[{player!r}] fails on inputs of shape {_shapes(x)} ({type(e).__name__}: {str(e).splitlines()[0][:200]})'
      ) from None
    try:  # as the programs apply it: no mutable collections, no rngs
      out = jax.eval_shape(net.apply, params, x)
    except Exception as e:
      raise ConfigError(
        f'nets[{player!r}] cannot be applied as apply(params, x) ({type(e).__name__}: {str(e).splitlines()[0][:160]});'
        ' adjax trains a network without mutable state or rngs: BatchNorm(use_running_average=True) or LayerNorm, '
        'Dropout(deterministic=True)'
      ) from None
    if not hasattr(out, 'shape') or tuple(out.shape) != (2, splits.num_classes):
      raise ConfigError(
        f'nets[{player!r}] gives outputs of shape {getattr(out, "shape", type(out))} for 2 examples; '
        f'it must give [B, num_classes] = [B, {splits.num_classes}] scores'
      )
    if not jnp.issubdtype(out.dtype, jnp.floating):
      raise ConfigError(f'nets[{player!r}] gives {out.dtype} outputs; scores must be floats (no gradient flows else)')
