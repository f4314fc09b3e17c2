"""A method from outside adjax, in one file: KD from a frozen teacher plus a binary discriminator on the student,
weighted by its own field ``game.lambda_adv``. Used as a config file (``--config=tests/plugin_method.py``) and
imported by ``tests/test_registry.py``."""

import ml_collections

import adjax

adjax.register_weight('lambda_adv', 0.5, "λ: weight of the student's adversarial term (kd_gan)")
adjax.register_method(
  'kd_gan',
  adjax.Method(
    players=('discriminator', 'student'),
    frozen=('teacher',),
    discriminator='binary',
    adversarial=(1.0, 'lambda_adv', 0.0),
    distill='kd',
  ),
)


def get_config() -> ml_collections.ConfigDict:
  c = adjax.get_config()  # after the registration: it has game.lambda_adv
  c.method = 'kd_gan'
  c.n_train, c.n_val, c.rounds = 50, 100, 2
  c.k_d = c.k_t = c.k_s = 2
  c.pretrain.student = c.pretrain.teacher = c.pretrain.discriminator = c.pretrain.frozen_teacher = 3
  c.student.model = c.teacher.model = c.discriminator.model = 'mlp'
  c.augment.update({'rotation': 0.0, 'shift': 0.0, 'zoom': 0.0})
  return c
