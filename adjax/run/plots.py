"""Figures of the equilibrium diagnostics: a run's ``diagnostics.png`` (``write``: each quantity per round, members
thin, their mean bold, one colour per sweep point, beside the generators' validation figure) and several runs'
means side by side (``compare``: one colour per run, e.g. a method under two schedules)."""

import numpy as np

from adjax import diagnostics
from adjax import figures
from adjax import methods as methods_lib


def series(results: dict) -> dict[str, list[np.ndarray]]:
  """Per panel (``diagnostics/…`` names, then each generator's validation figure), each member's values per round
  (``[rounds, 2]``: round, value); members of no value (diverged at round 0) are left out."""
  metric = next((f.metric for f in map(figures.Figure.parse, _names(results)) if f and f.split == 'val'), None)
  panels = [figures.diagnostic(p + n) for n in diagnostics.NAMES for p in ('', diagnostics.TRAIN)]
  panels += [figures.history(p, metric) for p in figures.GENERATORS] if metric else []
  out = {}
  for name in panels:
    curves = [
      np.array([(h['round'], h[name]) for h in m['history'] if name in h], np.float64).reshape(-1, 2)
      for m in results['per_seed']
    ]
    if any(len(c) for c in curves):
      out[name] = curves
  return out


def _train(name: str) -> str:
  """The name of a diagnostic measured on the training examples."""
  return figures.diagnostic(diagnostics.TRAIN + name.removeprefix(figures.DIAGNOSTICS))


def _mean(curves: list[np.ndarray]) -> tuple[np.ndarray, list[float]]:
  """Rounds and the mean over the members that reached each."""
  rounds = np.unique(np.concatenate([c[:, 0] for c in curves]))
  return rounds, [float(np.mean([c[c[:, 0] == r, 1][0] for c in curves if r in c[:, 0]])) for r in rounds]


def selected_round(results: dict) -> float | None:
  """The mean over members of the student's selected round (None when no member selected one)."""
  rounds = [
    m['final'][p]['selected_round'] for m in results['per_seed'] for p in figures.GENERATORS[:1] if m.get('final')
    and m['final'].get(p)
  ]  # fmt: skip
  return float(np.mean(rounds)) if rounds else None


def _names(results: dict) -> list[str]:
  return [k for m in results['per_seed'] for h in m['history'][:1] for k in h]


def write(results: dict, path: str) -> bool:
  """Draws ``results``' diagnostics to ``path`` (PNG); False (nothing written) when none were measured."""
  panels = series(results)
  if not any(n.startswith(figures.DIAGNOSTICS) for n in panels):
    return False
  import matplotlib  # imported here: a run without the figure does not need it

  matplotlib.use('Agg')
  import matplotlib.pyplot as plt

  cols = 3
  rows = -(-sum(not n.startswith(_train('')) for n in panels) // cols)
  fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
  seeds = results['num_seeds']
  points = [p['overrides'] for p in results.get('sweep', [])] or [None]
  colours = plt.rcParams['axes.prop_cycle'].by_key()['color']
  selected = selected_round(results)
  shown = {n: c for n, c in panels.items() if not n.startswith(_train(''))}
  for ax, (name, curves) in zip(axes.flat, shown.items()):
    for j, point in enumerate(points):
      colour = colours[j % len(colours)]
      group = [c for c in curves[j * seeds : (j + 1) * seeds] if len(c)]
      thin = [ax.plot(c[:, 0], c[:, 1], color=colour, linewidth=0.6, alpha=0.5)[0] for c in group]
      train = [c for c in panels.get(_train(name), [])[j * seeds : (j + 1) * seeds] if len(c)]
      if train:  # the same quantity on the training examples: the members' mean, dashed
        rounds, mean = _mean(train)
        ax.plot(rounds, mean, color=colour, linewidth=1.2, linestyle='--')
      label = ', '.join(f'{k}={v:g}' for k, v in point.items()) if point else None
      if len(group) > 1:
        ax.plot(*_mean(group), color=colour, linewidth=2.0, label=label)
      elif label and thin:
        thin[0].set_label(label)
    short = name.removeprefix(figures.DIAGNOSTICS)
    ax.set_title(f'{short}: {diagnostics.NAMES[short]}' if short in diagnostics.NAMES else name, fontsize=9)
    if selected is not None:
      ax.axvline(selected, color='grey', linestyle='-.', linewidth=0.8)
    ax.set_xlabel('round', fontsize=8)
    ax.tick_params(labelsize=8)
    _mark_chance(ax, short, results)
    if short == 'd_accuracy' and chance_accuracy(results) is not None:  # the longer title of the other has no room
      ax.set_title(ax.get_title() + ' (dotted: chance)', fontsize=9)
    if short in ('d_gap',) and all((c[:, 1] > 0).all() for c in curves if len(c)):
      ax.set_yscale('log')
    if points[0] is not None and ax is axes.flat[0]:
      ax.legend(fontsize=7)
  for ax in axes.flat[len(shown) :]:
    ax.axis('off')
  members = f'{len(results["per_seed"])} members' if len(results['per_seed']) > 1 else 'one member'
  marked = ", grey dash-dot: the student's selected round (mean)" if selected is not None else ''
  fig.suptitle(
    f'{results["method"]} on {results["dataset"]}, n_train={results["n_train"]}, on validation: {members} thin, '
    f'mean bold, training examples dashed{marked}'
  )
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return True


def chance_accuracy(results: dict) -> float | None:
  """The discriminator's chance accuracy: one over the outcomes it tells apart among the roles present (real and
  each generator; a binary discriminator's two fake roles are one outcome: 1/2). None for a method without a
  discriminator or not registered in this process."""
  method = methods_lib.METHODS.get(results.get('method'))
  return None if method is None else diagnostics.chance_accuracy(method)


_STYLES = (
  ('-', 'validation'),
  ('--', 'training examples'),
  ('-.', "the student's mean selected round"),
  (':', "D's chance accuracy"),
)


def _mark_chance(ax, short: str, results: dict) -> None:
  """A dotted line at the discriminator's chance accuracy on its accuracy panels (where it is known)."""
  if short in ('d_accuracy', 'd_accuracy_shown') and (chance := chance_accuracy(results)) is not None:
    ax.axhline(chance, color='grey', linestyle=':', linewidth=1)


def compare(runs: dict[str, dict], path: str, title: str) -> bool:
  """Draws the mean over members of each run's diagnostics (``{label: results}``, runs of one method: the first's
  chance line; validation solid, training examples dashed) to ``path``; False (nothing written) when none of them
  measured any."""
  panels = {label: series(r) for label, r in runs.items()}
  names = list(dict.fromkeys(n for p in panels.values() for n in p if not n.startswith(_train(''))))
  if not any(n.startswith(figures.DIAGNOSTICS) for n in names):
    return False
  import matplotlib

  matplotlib.use('Agg')
  from matplotlib.lines import Line2D
  import matplotlib.pyplot as plt

  cols = 3
  fig, axes = plt.subplots(-(-len(names) // cols), cols, figsize=(4.2 * cols, 3.0 * -(-len(names) // cols)),
                           squeeze=False)  # fmt: skip
  colours = plt.rcParams['axes.prop_cycle'].by_key()['color']
  for ax, name in zip(axes.flat, names):
    for j, p in enumerate(panels.values()):
      for which, style in ((name, '-'), (_train(name), '--')):
        curves = [c for c in p.get(which, []) if len(c)]
        if curves and (which == name or name.startswith(figures.DIAGNOSTICS)):
          ax.plot(*_mean(curves), color=colours[j % len(colours)], linestyle=style, linewidth=1.4)
    short = name.removeprefix(figures.DIAGNOSTICS)
    ax.set_title(f'{short}: {diagnostics.NAMES[short]}' if short in diagnostics.NAMES else name, fontsize=9)
    _mark_chance(ax, short, next(iter(runs.values())))
    ax.set_xlabel('round', fontsize=8)
    ax.tick_params(labelsize=8)
    if short == 'd_gap' and all(y > 0 for line in ax.lines for y in line.get_ydata()):
      ax.set_yscale('log')
    for j, r in enumerate(runs.values()):  # each run's mean selected round
      if (selected := selected_round(r)) is not None:
        ax.axvline(selected, color=colours[j % len(colours)], linestyle='-.', linewidth=0.8)
  key = [Line2D([], [], color=colours[j % len(colours)], linewidth=1.4, label=label) for j, label in enumerate(runs)]
  key += [Line2D([], [], color='grey', linestyle=style, linewidth=1.0, label=meaning) for style, meaning in _STYLES]
  spare = axes.flat[len(names) :]
  for ax in spare:
    ax.axis('off')
  if len(spare):  # the key in the first empty panel, else below the panels
    spare[0].legend(handles=key, loc='center', fontsize=9)
  else:
    fig.legend(handles=key, loc='lower center', ncol=4, fontsize=8)
  fig.suptitle(f'{title}: the mean over seeds of each run')
  fig.tight_layout(rect=(0, 0 if len(spare) else 0.06, 1, 1))
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return True
