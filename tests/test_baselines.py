"""The distillation baselines' losses (SPEC §5) against hand computations on a tiny batch."""

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from adjax import config as config_lib
from adjax import game as game_lib
from adjax import objectives
from experiments.configs import mnist

TEACHER = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]], np.float32)
STUDENT = np.array([[0.0, 1.0, 0.0], [1.0, -2.0, 0.0]], np.float32)
LABELS = np.array([0, 2])


def _softmax(z):
  e = np.exp(z - z.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def _kl(p, q):
  return (p * np.log(p / q)).sum(-1)


def _ce(z, y):
  return -np.log(_softmax(z)[np.arange(len(y)), y])


def _game(method, **game_overrides):
  c = mnist.get_config()
  c.method = method
  for k, v in game_overrides.items():
    c.game[k] = v
  return game_lib.build(config_lib.validate(c), 3)


def _term(game, role, target, learner, key=0):
  hp = game_lib.hyperparameters(game.method, game.config)
  args = (jnp.asarray(target), jnp.asarray(learner), LABELS, jax.random.key(key), hp)
  del role  # every method's term is the same for both roles; its weight is not part of it
  return objectives.distillation_term(game, *args)


class BaselineLossTest(parameterized.TestCase):
  def test_distn_is_hinton(self):
    alpha, t = 0.3, 4.0
    game = _game('distn', distn_alpha=alpha, kd_temperature=t)
    expected = (1 - alpha) * _ce(STUDENT, LABELS) + alpha * t * t * _kl(_softmax(TEACHER / t), _softmax(STUDENT / t))
    np.testing.assert_allclose(_term(game, 'student', TEACHER, STUDENT), expected, rtol=1e-5)

  def test_mimic_is_l2_on_logits(self):
    expected = 0.5 * ((TEACHER - STUDENT) ** 2).sum(-1)
    np.testing.assert_allclose(_term(_game('mimic'), 'student', TEACHER, STUDENT), expected, rtol=1e-6)

  def test_noisy_perturbs_the_teachers_logits(self):
    sigma = 0.5
    game = _game('noisy', noisy_sigma=sigma)
    draws = np.stack([_term(game, 'student', TEACHER, STUDENT, key=i) for i in range(4000)])
    clean = 0.5 * ((TEACHER - STUDENT) ** 2).sum(-1)
    self.assertFalse(np.allclose(draws[0], clean))
    # E ½||z_t + σε − z_s||² = ½||z_t − z_s||² + ½ σ² K
    np.testing.assert_allclose(draws.mean(0), clean + 0.5 * sigma**2 * 3, rtol=0.03)

  def test_codis_each_distils_from_the_other(self):
    upsilon, t = 0.4, 2.0
    game = _game('codis', upsilon=upsilon, kd_temperature=t)
    pt, ps = _softmax(TEACHER / t), _softmax(STUDENT / t)
    student = t * t * _kl(pt, ps) + upsilon * _ce(STUDENT, LABELS)
    teacher = t * t * _kl(ps, pt) + upsilon * _ce(TEACHER, LABELS)
    np.testing.assert_allclose(_term(game, 'student', TEACHER, STUDENT), student, rtol=1e-5)
    np.testing.assert_allclose(_term(game, 'teacher', STUDENT, TEACHER), teacher, rtol=1e-5)

  def test_loss_weights_come_from_the_state_not_the_config(self):
    """CODIS's student loss is ν·L_KD with ν and υ read from the state's hyperparameters (what a sweep varies)."""
    game = _game('codis', kd_temperature=1.0)  # config: ν = µ = υ = 1
    x = jax.random.normal(jax.random.key(0), (2, 784))
    params = game.nets['student'].init(jax.random.key(1), x)
    hp = dict(game_lib.hyperparameters(game.method, game.config), nu=jnp.float32(0.7), upsilon=jnp.float32(0.4))
    teacher = TEACHER  # the game has 3 classes
    batch = objectives.Batch(x, LABELS, {'teacher': jnp.asarray(teacher)})
    loss, _ = objectives.generator_loss(
      params, batch, objectives.Context(game, 'student', jax.random.key(2), 1.0, 0.0, hp)
    )
    z = np.asarray(game.nets['student'].apply(params, x), np.float64)
    expected = 0.7 * (_kl(_softmax(teacher), _softmax(z)) + 0.4 * _ce(z, LABELS))
    self.assertAlmostEqual(float(loss), expected.mean(), places=4)


if __name__ == '__main__':
  absltest.main()
