"""The theory as an instrument: how near a game is to the equilibrium SPEC §3 describes, measured on a split (a run
measures validation and, as ``train_…``, its training examples).

Each quantity is a mean over the split's examples (nats), computed exactly by
enumerating the labels (``adjax.values``):

- ``d_gap``: the discriminator's optimality gap ``V(D*) − V(D)`` at the current
  generators (Lemmas 4.1, 4.3); at least 0, and 0 exactly when it is optimal.
- ``divergence``: what the generators minimise at ``D*``: ``JS(p_r || p_ω)``
  (binary: NGAN, ADIB; Theorem 4.2) or ``Σ_i ω_i KL(p_i || p̄)`` (multiclass:
  ADIM; Theorem 4.4).
- ``kl_t_s``, ``kl_r_s``, ``kl_r_t``: ``KL(p_t || p_s)``, ``KL(p_r || p_s)``,
  ``KL(p_r || p_t)``; ``entropy_s``, ``entropy_t``: the generators' entropies.
- ``d_accuracy``: how often the discriminator tells the roles apart, on one
  label sampled per role and example (balanced: each outcome counted equally,
  a binary discriminator's two fake roles being one outcome; tied outcomes
  share the credit): chance is 1/2 for a binary discriminator, 1/3 for
  ADIM's. ``d_accuracy_shown``: the same on the label
  vectors the discriminator's updates see (the estimator's samples of the
  generators at the next round's τ: concrete vectors; one-hot for REINFORCE).
  High while ``d_accuracy`` is near chance, the discriminator tells relaxed
  samples from one-hot labels rather than the distributions apart.

``p_r`` is the one-hot label, or uniform over an example's tags. The optimum ``D*``
is that of the game with one-hot labels, the theory's: a discriminator
trained on relaxed (concrete) samples of the generators is further from it
by what the relaxation lets it see, so on the training examples the gap
mixes that bias with how well it is optimised (``d_accuracy_shown`` tells
them apart). A method
reports what its players allow (no discriminator: the divergences between
its generators); a discriminator kind reports ``d_gap`` and ``divergence``
when it declares their closed forms (``values.DiscriminatorKind``).
"""

import jax
import jax.numpy as jnp

from adjax import estimators
from adjax import losses
from adjax import methods
from adjax import values
from adjax.game import DIAGNOSTICS_STREAM
from adjax.game import Data
from adjax.game import Game
from adjax.game import State
from adjax.game import examples
from adjax.game import round_key
from adjax.game import round_tau
from adjax.game import view

# Every quantity, in the order figures show them, with its figure title (the module docstring says what each is).
NAMES = {
  'd_gap': "D's optimality gap V(D*) − V(D)",
  'divergence': "generators' divergence at D*",
  'd_accuracy': "D's accuracy on sampled labels",
  'd_accuracy_shown': "D's accuracy on the samples it trains on",
  'kl_t_s': 'KL(p_t ‖ p_s)',
  'kl_r_s': 'KL(p_r ‖ p_s)',
  'kl_r_t': 'KL(p_r ‖ p_t)',
  'entropy_s': 'student entropy H(p_s)',
  'entropy_t': 'teacher entropy H(p_t)',
}
# A run measures each quantity on validation (``d_gap``) and on the training examples (``train_d_gap``), the ones the
# players update on: there the gap shows how far D is from D* where it is trained (optimisation, and the relaxation's
# bias: see the module docstring), on validation also how well it generalises.
TRAIN = 'train_'


def measure(game: Game, state: State, data: Data) -> dict[str, jax.Array]:
  """One member's quantities (``NAMES``, those its method has) on ``data``'s examples, each a scalar."""
  split = examples(data)
  chunk = game.config.eval_chunk
  log_p = {'real': losses.real_log_probs(split['y'], game.num_classes)}
  for player in ('student', 'teacher'):
    if player in state:
      log_p[player] = jax.nn.log_softmax(game.apply(player, state[player]['params'], view(player, split), chunk))
  out = {}
  pairs = {'kl_t_s': ('teacher', 'student'), 'kl_r_s': ('real', 'student'), 'kl_r_t': ('real', 'teacher')}
  for name, (a, b) in pairs.items():
    if a in log_p and b in log_p:
      out[name] = jnp.mean(losses.kl_divergence(log_p[a], log_p[b]))
  for name, player in (('entropy_s', 'student'), ('entropy_t', 'teacher')):
    if player in log_p:
      out[name] = jnp.mean(losses.entropy(log_p[player]))
  kind = game.method.discriminator
  if kind is not None and 'discriminator' in state:
    out.update(_discriminator(game, state, split, log_p, kind))
  return {n: out[n] for n in NAMES if n in out}


def _discriminator(game: Game, state: State, split: dict, log_p: dict, kind: str) -> dict[str, jax.Array]:
  """``d_gap``, ``divergence`` (kinds with closed forms) and ``d_accuracy`` of the discriminator in ``state``."""
  params = state['discriminator']['params']
  h = game.apply('discriminator', params, view('discriminator', split), game.config.eval_chunk)
  roles = ('real', 'student', 'teacher')
  playing = jnp.array([r in log_p for r in roles], jnp.float32)
  weights_3 = state['hparams']['weights'] * playing  # a role without a player has no term
  # An absent role's column stands in as p_r: its weight is 0.
  log_p_BxKx3 = jnp.stack([log_p.get(r, log_p['real']) for r in roles], axis=-1)
  out = {}
  gap = values.optimality_gap(kind, weights_3, h, log_p_BxKx3)
  if gap is not None:
    out['d_gap'] = jnp.mean(gap)
  divergence = values.equilibrium_divergence(kind, weights_3, log_p_BxKx3)
  if divergence is not None:
    out['divergence'] = jnp.mean(divergence)
  keys = jax.random.split(jax.random.fold_in(round_key(state, state['round']), DIAGNOSTICS_STREAM), 3)
  present = [i for i, r in enumerate(roles) if r in log_p]
  tau = round_tau(game, state, state['round'])  # the next round's: what the discriminator's updates will see
  for name, shown in (('d_accuracy', False), ('d_accuracy_shown', True)):
    samples = []
    for i in present:
      # One key per role for both figures: the estimator's sample is the relaxation of the same categorical draw.
      if i == methods.REAL:
        samples.append(losses.real_sample(keys[i], split['y'], game.num_classes))
      elif shown:
        samples.append(estimators.generator_sample(game.estimator, keys[i], log_p[roles[i]], tau))
      else:
        samples.append(jax.nn.one_hot(jax.random.categorical(keys[i], log_p[roles[i]]), game.num_classes))
    out[name] = _told_apart(kind, h, samples, present)
  return out


def outcomes_told_apart(kind: str, present: list[int]) -> list[int]:
  """The outcomes a discriminator of ``kind`` tells apart among the roles ``present`` (indices of real, student,
  teacher): a binary one's two fake roles are one outcome."""
  return sorted({values.discriminator_kind(kind).outcomes[i] for i in present})


def chance_accuracy(method: methods.Method) -> float | None:
  """``d_accuracy`` of a discriminator that guesses: one over the outcomes it tells apart (None: no discriminator)."""
  if method.discriminator is None:
    return None
  generators = ((methods.STUDENT, 'student'), (methods.TEACHER, 'teacher'))
  present = [methods.REAL, *(i for i, player in generators if player in method.present)]
  return 1 / len(outcomes_told_apart(method.discriminator, present))


def _told_apart(kind: str, h: jax.Array, samples: list[jax.Array], present: list[int]) -> jax.Array:
  """The discriminator's balanced accuracy on ``samples`` (one ``[B, K]`` per role of ``present``): per sample,
  credit when its role's outcome has the largest probability (shared equally among tied outcomes), averaged per
  outcome, then over outcomes (a binary discriminator's two fake roles are one outcome: chance is 1/2)."""
  kept, outcomes = outcomes_told_apart(kind, present), values.discriminator_kind(kind).outcomes
  columns = jnp.array([next(i for i in present if outcomes[i] == o) for o in kept])  # one column per outcome
  per_outcome = {o: [] for o in kept}
  for i, y_BxK in zip(present, samples):
    log_d_BxO = values.role_log_probs(kind, h, y_BxK)[:, columns]
    at_max_BxO = log_d_BxO >= jnp.max(log_d_BxO, axis=-1, keepdims=True)
    own = kept.index(outcomes[i])
    per_outcome[outcomes[i]].append(jnp.mean(at_max_BxO[:, own] / jnp.sum(at_max_BxO, axis=-1)))
  return jnp.mean(jnp.stack([jnp.mean(jnp.stack(v)) for v in per_outcome.values()]))
