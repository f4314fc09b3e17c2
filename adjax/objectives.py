"""Each player's objective on one minibatch (SPEC §3): the generators' terms and loss, the discriminator's loss.

Every loss takes the differentiated parameters first, then the minibatch
(``Batch``: inputs, labels and the held-fixed players' outputs on them) and
what the update needs besides (``Context``), and returns ``(loss, reward_B)``.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from adjax import estimators
from adjax import losses
from adjax import methods
from adjax import values
from adjax.game import Game


class Batch(NamedTuple):
  """One minibatch as a player sees it: its view ``x [B, ...]``, labels ``y [B]`` (or multi-hot tags ``[B, K]``),
  and ``others``: each held-fixed player's outputs on it (``[B, K]`` logits of a generator, the discriminator's
  scores)."""

  x: jax.Array
  y: jax.Array
  others: dict[str, jax.Array]


class Context(NamedTuple):
  """What an update needs beyond the minibatch: the game, the player's role, a noise key, the concrete temperature
  ``tau``, the generator's reward moving average (None for the discriminator), the state's ``hparams`` and the
  mesh axis the minibatch is split over, if any."""

  game: Game
  role: str
  key: jax.Array
  tau: jax.Array
  reward_average: jax.Array | None
  hp: dict[str, Any]
  batch_axis: str | None = None  # the mesh axis a minibatch is split over (data parallelism), else None


def generator_terms(params, batch: Batch, ctx: Context) -> tuple[dict[str, jax.Array], jax.Array]:
  """The unweighted terms of a generator's loss (each a batch mean), and its per-example reward ``[B]``.

  No others: ``{'supervised': CE}`` (pretraining, STUDENT, TEACHER).
  Otherwise ``'adversarial'`` (the estimator's surrogate of the role's
  adversarial term, SPEC §4) when a discriminator plays, and
  ``'distillation'`` (the method's term towards the other generator) when it
  is present.
  """
  game, role = ctx.game, ctx.role
  logits_BxK = game.apply(role, params, batch.x)
  reward_B = jnp.zeros(batch.y.shape[:1], jnp.float32)
  if not batch.others:
    return {'supervised': jnp.mean(losses.cross_entropy(logits_BxK, batch.y))}, reward_B
  terms = {}
  if 'discriminator' in batch.others:
    h, index = batch.others['discriminator'], methods.ROLE[role]
    rewards = values.GENERATOR_REWARDS[game.config.game.generator_reward]

    def reward_fn(y_BxK):
      return rewards(game.method.discriminator, h, y_BxK)[:, index]

    surrogate_B, reward_B = estimators.surrogate(
      game.estimator,
      ctx.key,
      logits_BxK,
      reward_fn,
      ctx.tau,
      game.config.game.baseline,
      ctx.reward_average,
      ctx.batch_axis,
    )
    terms['adversarial'] = jnp.mean(surrogate_B)
  other = 'teacher' if role == 'student' else 'student'
  if other in batch.others:
    key = jax.random.fold_in(ctx.key, 1)
    terms['distillation'] = jnp.mean(distillation_term(game, batch.others[other], logits_BxK, batch.y, key, ctx.hp))
  return terms, reward_B


def term_weights(game: Game, role: str, hp) -> dict[str, jax.Array]:
  """Each term's weight in a generator's loss: ω of its role, and the distillation term's weight field (ν / µ).

  With ``game.divide_by_batch`` (the authors' code, SPEC §8) cross-entropy and the terms declared
  ``batch_divided`` are divided by the batch size once more.
  """
  distill = methods.DISTILLATION[game.method.distill] if game.method.distill else None
  field = distill.weights.get(role) if distill else None
  weights = {
    'supervised': 1.0,
    'adversarial': hp['weights'][methods.ROLE[role]],
    'distillation': hp[field] if field else 1.0,
  }
  if game.config.game.divide_by_batch:  # the default programs stay as they were: no multiplication by 1
    weights['supervised'] = 1.0 / game.config.batch_size
    if distill and distill.batch_divided:
      weights['distillation'] = weights['distillation'] / game.config.batch_size
  return weights


def generator_loss(params, batch: Batch, ctx: Context) -> tuple[jax.Array, jax.Array]:
  """The loss a generator (``ctx.role`` = student or teacher) descends, ``ω·adversarial + weight·distillation``
  (or CE), and its per-example reward ``[B]``."""
  terms, reward_B = generator_terms(params, batch, ctx)
  weights = term_weights(ctx.game, ctx.role, ctx.hp)
  return sum(weights[name] * value for name, value in terms.items()), reward_B


def distillation_term(game: Game, target_BxK, logits_BxK, y_B, key, hp) -> jax.Array:
  """The generator's per-example term ``[B]`` towards the other generator's logits ``target_BxK``
  (``Method.distill``, an entry of ``methods.DISTILLATION``), unweighted."""
  return game.distillation(target_BxK, logits_BxK, y_B, key, hp)


def discriminator_loss(params, batch: Batch, ctx: Context) -> tuple[jax.Array, jax.Array]:
  """Minus the sampled adversarial value (SPEC §3): real labels vs the generators' samples (``batch.others``: their
  logits); the reward is zeros ``[B]``."""
  game = ctx.game
  k_student, k_teacher = jax.random.split(ctx.key)
  # Multi-label examples show the discriminator a tag drawn from p_r, a fresh draw per update.
  y_real_BxK = losses.real_sample(jax.random.fold_in(ctx.key, 2), batch.y, game.num_classes)
  samples = []
  for role, k in (('student', k_student), ('teacher', k_teacher)):
    # A role that does not play has weight 0; any label vector stands in.
    if role in batch.others:
      samples.append(estimators.generator_sample(game.estimator, k, batch.others[role], ctx.tau))
    else:
      samples.append(y_real_BxK)
  h = game.apply('discriminator', params, batch.x)
  value_B = values.adversarial_sampled(game.method.discriminator, ctx.hp['weights'], h, y_real_BxK, *samples)
  return -jnp.mean(value_B), jnp.zeros(batch.y.shape[:1], jnp.float32)
