"""A run's figures: the validation figure that selects parameters, evaluation per member, a round's scalars, and
``results.json`` (per seed, and mean and standard deviation over seeds or per sweep point)."""

import json

import ml_collections
import numpy as np

from adjax import config as config_lib
from adjax import data as data_lib
from adjax import fields
from adjax import figures
from adjax import ranking
from adjax.errors import ConfigError
from adjax.figures import GENERATORS


def select_metric(config: ml_collections.ConfigDict, splits: data_lib.Splits) -> str:
  """The validation figure that selects parameters: ``select_metric``, checked against what the data gives."""
  multi_label = splits.pool['y'].ndim == 2
  if multi_label and not 1 <= config.rank_k <= splits.num_classes:
    raise ConfigError(f'rank_k={config.rank_k} must be in 1..{splits.num_classes} (the number of tags)')
  valid = ranking.names(config.rank_k) if multi_label else ('accuracy',)
  chosen = config.select_metric or valid[0]
  if chosen not in valid:
    kind = 'multi-label tags' if multi_label else 'class labels'
    hint = f' (or set rank_k={chosen.split("@")[1]})' if multi_label and '@' in chosen else ''
    raise ConfigError(
      f'select_metric={chosen!r} is not a figure of {kind} at rank_k={config.rank_k}; choose one of '
      f'{", ".join(valid)}{hint}'
    )
  return chosen


def selected_figure(results: dict) -> str | None:
  """The figure a run's results were selected on (``accuracy``; ``p@3`` … for tags); None if every member
  diverged."""
  for final in (results['final'] or {}).values():
    for name in final or ():
      f = figures.Figure.parse(name)
      if f is not None and f.split == 'val' and not (f.last or f.std):
        return f.metric
  return None


def params(state) -> dict:
  """The generators' parameters in a state."""
  return {p: state[p]['params'] for p in GENERATORS if p in state}


def evaluate(accuracy, params: dict, data, members) -> dict[str, dict | None]:
  """Per-member figures ``{metric: [S]}`` of each generator in ``params`` on a split (each sees its own view)."""
  return {p: members.get(accuracy(p, params[p], data)) if p in params else None for p in GENERATORS}


def round_scalars(metrics: dict, val: dict, seed_index: int, diagnostics: dict | None = None) -> dict[str, float]:
  """One seed's scalars of a round: validation figures, tau, each player's mean loss/reward/grad norm, and the
  equilibrium ``diagnostics`` (``{name: [S]}``) if measured."""
  scalars = {figures.history(p, m): float(a[seed_index]) for p, v in val.items() if v is not None for m, a in v.items()}
  scalars.update({figures.diagnostic(n): float(a[seed_index]) for n, a in (diagnostics or {}).items()})
  if 'tau' in metrics:
    scalars['tau'] = float(metrics['tau'][seed_index])
  for player, m in metrics.items():
    if isinstance(m, dict):
      for name, value in m.items():
        if (player, name) != ('discriminator', 'reward'):  # 0 by construction (it descends no reward)
          scalars[f'{player}_{name}'] = float(value[seed_index])
  return scalars


def build(run, members, meta: dict, test: dict, metric: str) -> dict:
  """``results.json``: ``test`` holds each generator's per-member test figures ``(selected, last)``."""
  config, sweep, overrides = run.setup.config, run.setup.sweep, run.setup.overrides
  key = figures.val(metric)
  per_seed = []
  for i, c in enumerate(run.setup.configs):
    entry = {'seed': c.seed, **({'overrides': overrides[i]} if sweep else {})}
    if meta['diverged'][i] is not None:  # its figures would be those of a broken run: none are reported
      per_seed.append({**entry, 'diverged_round': meta['diverged'][i], 'final': None, 'history': meta['history'][i]})
      continue
    final = {p: None for p in GENERATORS}
    for p, (selected, last) in test.items():
      final[p] = {
        **{figures.test(m): float(a[i]) for m, a in selected.items()},
        key: meta['best'][i][p][key],
        'selected_round': meta['best'][i][p]['round'],
        **{str(figures.Figure(m, 'test', last=True)): float(a[i]) for m, a in last.items()},
        str(figures.Figure(metric, 'val', last=True)): meta['history'][i][-1][figures.history(p, metric)],
      }
    per_seed.append({**entry, 'final': final, **_diagnostics(meta, i), 'history': meta['history'][i]})
  return {
    'method': config.method,
    'dataset': run.setup.source.name,
    'n_train': config.n_train,
    'n_val': int(members.splits.index['val'].shape[-1]),
    'n_test': int(members.splits.index['test'].shape[-1]),
    'seed': config.seed,
    'num_seeds': run.setup.num_seeds,
    'rounds': config.rounds,
    'seconds_round_0': meta['seconds'][0],  # the frozen teacher, pretraining and the first compilations
    'seconds_per_round': meta['seconds'][1:],
    # One seed: its figures; several: mean and std over the seeds that did not diverge (each under per_seed).
    **_group(per_seed, run.setup.num_seeds, sweep),
    'per_seed': per_seed,
    'config': json.loads(config.to_json()),
    # Fields of the config the run did not read: set away from their defaults but unread, and the learning rate and
    # weight decay of a player given its own optimizer.
    'unread_fields': [
      *config_lib.unused_options(config),
      *(f'{p}.{f}' for p in run.identity['optimizers'] for f in fields.player_hyperparameters()),
    ],
    'identity': run.identity,
  }


def _diagnostics(meta: dict, i: int) -> dict:
  """Member ``i``'s equilibrium diagnostics at its selected round (the student's, else the first generator's) and at
  the last, ``{'diagnostics': {'round', 'selected', 'last'}}``; nothing when they were not measured."""
  history, best = meta['history'][i], meta['best'][i]
  prefix = figures.DIAGNOSTICS
  rows = {h['round']: {k.removeprefix(prefix): v for k, v in h.items() if k.startswith(prefix)} for h in history}
  if not history or not rows[history[-1]['round']]:
    return {}
  selected = best['student' if 'student' in best else next(iter(best))]['round']
  return {'diagnostics': {'round': selected, 'selected': rows.get(selected, {}), 'last': rows[history[-1]['round']]}}


def _summary(per_seed_final: list[dict]) -> dict:
  """Mean and standard deviation over seeds of each final figure (the population's: ``numpy.std``, ddof 0), and the
  selected round of each seed."""
  out = {}
  for p in GENERATORS:
    if per_seed_final[0][p] is None:
      out[p] = None
      continue
    out[p] = {}
    for name in per_seed_final[0][p]:
      values = np.array([f[p][name] for f in per_seed_final], np.float64)
      if name == 'selected_round':  # a round per seed, not a mean
        out[p][name] = [int(v) for v in values]
        continue
      out[p][name], out[p][f'{name}_std'] = float(values.mean()), float(values.std())
  return out


def _group(per_seed: list[dict], num_seeds: int, sweep: list[dict] | None) -> dict:
  """``final`` and ``history`` over the seeds of a run; for a sweep, ``sweep``: those of each point.

  Diverged members are left out of the figures and listed in ``diverged``
  (``{seed, round}``); a point whose every seed diverged has ``final`` None.
  """
  groups = []
  for j in range(len(per_seed) // num_seeds):
    members = per_seed[j * num_seeds : (j + 1) * num_seeds]
    healthy = [m for m in members if m.get('diverged_round') is None]
    group = {
      'final': None
      if not healthy
      else healthy[0]['final']
      if num_seeds == 1
      else _summary([m['final'] for m in healthy]),
      **_diagnostics_summary(healthy, num_seeds),
      'history': members[0]['history'] if num_seeds == 1 else _mean_history(healthy or members),
    }
    diverged = [{'seed': m['seed'], 'round': m['diverged_round']} for m in members if m not in healthy]
    groups.append({**group, **({'diverged': diverged} if diverged else {})})
  if not sweep:
    return groups[0]
  return {'sweep': [{'overrides': point, **group} for point, group in zip(sweep, groups)]}


def _diagnostics_summary(healthy: list[dict], num_seeds: int) -> dict:
  """The diagnostics at the selected and the last round over the healthy seeds: a run of one seed its own, several
  their mean and ``_std`` (as ``final``)."""
  measured = [m['diagnostics'] for m in healthy if 'diagnostics' in m]
  if not measured or len(measured) != len(healthy):
    return {}
  if num_seeds == 1:
    return {'diagnostics': measured[0]}
  out = {'round': [d['round'] for d in measured]}
  for when in ('selected', 'last'):
    out[when] = {}
    for name in measured[0][when]:
      values = np.array([d[when].get(name, np.nan) for d in measured], np.float64)
      out[when][name], out[when][f'{name}_std'] = float(values.mean()), float(values.std())
  return {'diagnostics': out}


def _mean_history(per_seed: list[dict]) -> list[dict]:
  """Per round, the mean over seeds of each scalar (over the seeds that reached that round)."""
  out = []
  for r in range(max(len(s['history']) for s in per_seed)):
    hs = [s['history'][r] for s in per_seed if len(s['history']) > r]
    out.append({k: float(np.mean([h[k] for h in hs])) for k in hs[0]})
  return out
