r"""The tag task (SPEC §6) on ``mnist5k_scenes``, the offline stand-in of real digit montages with captions.

  python -m experiments.main --config=experiments/configs/tags.py --workdir=DIR --config.method=adim

Multi-label: each scene's tags are the digits in it; the student (an MLP on
the 14 x 14 image) never sees the caption, which the teacher and the
discriminator read with an LSTM (``text_mlp``). Parameters are selected on
validation P@3; results give P@3, R@3, F@3, NDCG@3, MAP and MRR. For the
paper's YFCC100M data, convert it to an ``.npz`` with x (image features),
xp (token ids) and y (multi-hot tags), and set ``dataset=npz``.
"""

import ml_collections

from experiments.configs import mnist


def get_config() -> ml_collections.ConfigDict:
  c = mnist.get_config()
  c.dataset = 'mnist5k_scenes'
  c.multi_label = True  # multi-hot tags, asked for explicitly
  c.n_train, c.n_val = 2000, 500
  c.batch_size = 32
  c.student.model = 'mlp'
  c.teacher.model = c.discriminator.model = 'text_mlp'
  c.augment.rotation = c.augment.shift = c.augment.zoom = 0.0  # image features and text: nothing to augment
  c.pretrain.student = c.pretrain.teacher = 1000
  c.pretrain.frozen_teacher = 2000
  c.rounds = 20
  return c
