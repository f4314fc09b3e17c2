"""Checks a run config before anything is loaded, compiled or written."""

import difflib
import math

import ml_collections

from adjax import data
from adjax import estimators
from adjax import fields
from adjax import losses
from adjax import methods
from adjax import models
from adjax import values
from adjax.errors import ConfigError


def _require(ok: bool, message: str) -> None:
  if not ok:
    raise ConfigError(message)


def _one_of(field: str, value, valid) -> None:
  _require(value in valid, f'{field}={value!r} is not valid; choose one of: {", ".join(map(str, valid))}')


def _leaves(tree: dict, prefix: str = ''):
  for key, value in tree.items():
    if isinstance(value, dict):
      yield from _leaves(value, f'{prefix}{key}.')
    else:
      yield f'{prefix}{key}', value


def unused_options(config: ml_collections.ConfigDict) -> list[str]:
  """The fields of a validated config set away from their defaults that the run never reads (each would change
  nothing), as ``field=value``: a declared field whose ``read`` predicate (``adjax.fields``) is false, a
  ``distill_terms`` entry for a term the method does not name, and an option of a registered distillation term
  that the method's term does not take. Sweeps refuse unread weights (``sweeps.check_sweep``)."""
  declared, defaults = fields.fields(), dict(fields.leaves(fields.get_config()))
  unused = [
    f'{name}={value!r}'
    for name, value in fields.leaves(config)
    if name in declared and declared[name].read and value != defaults[name] and not declared[name].read(config)
  ]
  method = methods.METHODS[config.method]
  for term, replacement in (config.game.get('distill_terms') or {}).items():
    if term not in (replacement, method.distill):
      unused.append(f'game.distill_terms.{term}={replacement!r}')
  term = methods.resolved(method, config.game).distill
  read = methods.DISTILLATION[term].options if term else ()
  for name in _term_options():
    if f'game.{name}' not in declared and name in config.game and name not in read:
      unused.append(f'game.{name}={config.game[name]!r}')
  return unused


def _term_options() -> tuple[str, ...]:
  """Every registered distillation term's options (fields of ``game``)."""
  return tuple(dict.fromkeys(o for d in methods.DISTILLATION.values() for o in d.options))


def check_fields(config: ml_collections.ConfigDict) -> None:
  """Refuses a field that is not declared (a misspelling), naming the closest declared one."""
  declared = fields.fields()
  known = {*declared, *(f'game.{o}' for o in _term_options())}
  present = dict(fields.leaves(config))
  missing = [f.name for f in declared.values() if not f.added and f.name not in present]
  if missing:
    raise ConfigError(
      f'the config lacks {", ".join(missing[:5])}{" …" if len(missing) > 5 else ""}: build it with adjax.get_config() '
      '(or a config file) and change fields there, not by replacing a group or making a ConfigDict by hand'
    )
  for name in present:
    if name not in known:
      close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
      hint = f'did you mean {close[0]}? ' if close else ''
      raise ConfigError(
        f'{name} is not a config field; {hint}declare a field of your own with adjax.fields.register_field '
        '(docs: Configuration reference)'
      )


def validate(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Returns a copy with the method's default weights filled in, or raises ``ConfigError``."""
  if not isinstance(config, ml_collections.ConfigDict):
    raise ConfigError(
      f'config must be an ml_collections.ConfigDict (adjax.get_config() and changes), got {type(config).__name__}'
    )
  check_fields(config)
  c = ml_collections.ConfigDict(config.to_dict())
  for f in fields.fields().values():  # a config built before a field was added computes its default
    *groups, leaf = f.name.split('.')
    node = c
    for g in groups:
      if g not in node:
        node[g] = ml_collections.ConfigDict()
      node = node[g]
    if leaf not in node and f.added:
      node[leaf] = f.default
  for field, value in _leaves(c.to_dict()):  # inf / nan in any float field: every check below would pass it
    if isinstance(value, float):
      _require(math.isfinite(value), f'{field}={value} must be finite (a number, not inf or nan)')
  _one_of('method', c.method, tuple(methods.METHODS))
  _one_of('dataset', c.dataset, tuple(data.DATASETS))
  g = c.game
  _one_of('game.estimator', g.estimator, estimators.ESTIMATORS)
  _one_of('game.generator_reward', g.generator_reward, tuple(values.GENERATOR_REWARDS))
  method = methods.METHODS[c.method]
  estimator = method.estimator or g.estimator  # a method may force its own
  _require(  # only where both are read: with a discriminator
    not (g.generator_reward == 'non_saturating' and estimator == 'authors' and method.discriminator),
    "game.generator_reward=non_saturating does not go with game.estimator=authors (the authors' update has its own "
    "loss of the discriminator's probability); use generator_reward=minimax, or another estimator",
  )
  _require(isinstance(g.divide_by_batch, bool), f'game.divide_by_batch={g.divide_by_batch!r} must be True or False')
  _require(0 < g.noisy_keep <= 1, f'game.noisy_keep={g.noisy_keep} must be in (0, 1]')
  for term, replacement in g.distill_terms.items():
    _one_of(f'game.distill_terms: the term {term!r}', term, tuple(methods.DISTILLATION))
    _one_of(f'game.distill_terms.{term}', replacement, tuple(methods.DISTILLATION))
    old, new = methods.DISTILLATION[term], methods.DISTILLATION[replacement]
    _require(
      (old.weights, old.reads) == (new.weights, new.reads),
      f'game.distill_terms.{term}={replacement!r} reads other weight fields than {term!r}; valid replacements: '
      + ', '.join(n for n, d in methods.DISTILLATION.items() if (d.weights, d.reads) == (old.weights, old.reads)),
    )
  term = methods.resolved(method, g).distill
  for option in methods.DISTILLATION[term].options if term else ():
    _require(option in g, f'method={c.method} uses distillation term {term!r}, whose option game.{option} this '
             'config lacks: register the term before building the config, or give the field')  # fmt: skip
  _one_of('game.baseline', g.baseline, estimators.BASELINES)
  _one_of('game.distillation', g.distillation, losses.DISTILLATION_FORMS)
  _one_of('game.heads', g.heads, (2, 3))
  _one_of('precision', c.precision, models.PRECISIONS)
  for player in methods.PLAYERS:
    _one_of(f'{player}.model', c[player].model, tuple(models.MODELS))
    _require(c[player].learning_rate > 0, f'{player}.learning_rate={c[player].learning_rate} must be > 0')
    _require(c[player].weight_decay >= 0, f'{player}.weight_decay={c[player].weight_decay} must be >= 0')
  _require(isinstance(c.seed, int) and c.seed >= 0, f'seed={c.seed!r} must be an integer >= 0 (seeds draw data)')
  integers = ('n_train', 'n_val', 'batch_size', 'num_seeds', 'eval_chunk', 'rounds', 'k_d', 'k_t', 'k_s', 'diagnostics')
  for field in integers:
    _require(isinstance(c[field], int) and not isinstance(c[field], bool), f'{field}={c[field]!r} must be an integer')
  for field in ('n_train', 'n_val', 'batch_size', 'num_seeds', 'eval_chunk'):
    _require(c[field] >= 1, f'{field}={c[field]} must be a positive integer')
  for field in ('rounds', 'k_d', 'k_t', 'k_s', 'diagnostics'):
    _require(c[field] >= 0, f'{field}={c[field]} must be >= 0')
  for name in ('student', 'teacher', 'discriminator', 'frozen_teacher'):
    _require(c.pretrain[name] >= 0, f'pretrain.{name}={c.pretrain[name]} must be >= 0')
  for name in ('rotation', 'shift', 'zoom'):
    _require(c.augment[name] >= 0, f'augment.{name}={c.augment[name]} must be >= 0')
  _require(c.augment.zoom < 1, f'augment.zoom={c.augment.zoom} must be < 1')
  for name in ('flip', 'user_data'):
    _require(isinstance(c.augment[name], bool), f'augment.{name}={c.augment[name]!r} must be True or False')
  t = c.tau
  _require(t.tau0 > 0, f'tau.tau0={t.tau0} must be > 0 (a concrete temperature)')
  _require(t.tau_min > 0, f'tau.tau_min={t.tau_min} must be > 0 (a concrete temperature)')
  _require(
    t.tau_min <= t.tau0,
    f'tau.tau_min={t.tau_min} must be <= tau.tau0={t.tau0} (the schedule decays from tau0 down to tau_min)',
  )
  _require(0 < t.decay <= 1, f'tau.decay={t.decay} must be in (0, 1]')
  _require(t.every >= 1, f'tau.every={t.every} must be >= 1')
  _require(
    g.kd_temperature is None or g.kd_temperature > 0, f'game.kd_temperature={g.kd_temperature} must be > 0 or unset'
  )
  _require(0 <= g.distn_alpha <= 1, f'game.distn_alpha={g.distn_alpha} must be in [0, 1]')
  _require(g.noisy_sigma >= 0, f'game.noisy_sigma={g.noisy_sigma} must be >= 0')
  _require(0 <= g.baseline_decay < 1, f'game.baseline_decay={g.baseline_decay} must be in [0, 1)')
  for name in (*method.weight_fields(), *method.defaults, *method.sum_to_one):
    _require(name in g, f'method={c.method} reads game.{name}, which this config lacks: build the config '
             '(adjax.get_config) after registering the weight')  # fmt: skip
  for name, default in method.defaults.items():
    if g[name] is None:
      g[name] = default
  for name in method.weight_fields():
    _require(g[name] is not None, f'method={c.method} reads game.{name}, which is unset and has no default')
  for name in methods.WEIGHTS:
    value = g.get(name)
    _require(value is None or value >= 0, f'game.{name}={value} is negative; weights must be >= 0')
  if method.sum_to_one:
    total = sum(g[name] for name in method.sum_to_one)
    _require(
      math.isclose(total, 1.0, abs_tol=1e-6),
      f'method={c.method} needs ' + ' + '.join(f'game.{n}' for n in method.sum_to_one) + ' = 1, got '
      + ' + '.join(str(g[n]) for n in method.sum_to_one) + f' = {total}',
    )  # fmt: skip
  return c
