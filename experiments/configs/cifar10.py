"""CIFAR-10 (SPEC §6): the LeNet-style student, DenseNet-BC teacher and discriminator.

Needs CIFAR-10 prepared for tfds (`tfds build cifar10 --file_format=array_record`
where TensorFlow and the internet are available); it is read without TensorFlow.

  python -m experiments.table1 --config=experiments/configs/cifar10.py --n_train=1000 --workdir=DIR

The default DenseNet is the small one (40 layers, growth 12, 0.18M) that
trains on a CPU; `--config.teacher.model=densenet_paper
--config.discriminator.model=densenet_paper` is the paper's 15.3M network
(an accelerator's job).
"""

import ml_collections

from experiments.configs import mnist


def get_config() -> ml_collections.ConfigDict:
  c = mnist.get_config()
  c.dataset = 'tfds'
  c.tfds.name = 'cifar10'
  c.n_val = 5000
  # Per-pixel mean subtraction and random horizontal flips, no rotation / shift / zoom.
  c.subtract_pixel_mean = True
  c.augment.update({'rotation': 0.0, 'shift': 0.0, 'zoom': 0.0, 'flip': True})
  c.student.model = 'cifar_student'
  c.teacher.model = 'densenet'
  c.discriminator.model = 'densenet'
  c.batch_size = 64
  return c
