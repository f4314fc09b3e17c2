"""``mnist5k_scenes``: an offline stand-in for the tag task, built from the 5,000 real MNIST digits (not YFCC100M).

Each example is a 2 x 2 grid (56 x 56 pixels) with 2 to 4 real digits in
random cells; its tags are the digits present (10 tags, multi-hot). What
the student sees: the grid averaged down to 14 x 14, flattened, plus
Gaussian noise (``FEATURE_NOISE``): 196 weak image features. The
privileged text, which only the teacher and discriminator see: a short
caption of token ids that names each digit present with probability
``NAME_P``, names one absent digit with probability
``DISTRACTOR_P`` and pads with filler words, in random order. So the text
helps (half the tags, mostly right) but does not give the answer away.
Train scenes are built from 4,000 of the digits, test scenes from the other
1,000: no digit image is in both. Fixed seed: the same arrays every time.
"""

import numpy as np

DIGIT_WORDS = ('zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine')
FILLER_WORDS = ('a', 'photo', 'of', 'the', 'and', 'with', 'number', 'digits', 'some', 'picture', 'see', 'here')
# Token 0 is padding; digit d is token d + 1; fillers follow.
VOCABULARY = ('<pad>', *DIGIT_WORDS, *FILLER_WORDS)
NAME_P, DISTRACTOR_P = 0.5, 0.3
# Gaussian noise on the image features: a weak image model, as features from a network trained for other classes
# are. Tuned so that the text is worth about 10 points of P@3 to a teacher (0.52 vs a student's 0.42, measured).
FEATURE_NOISE = 0.3
TEXT_LENGTH = 10
NUM_TRAIN, NUM_TEST = 4000, 1000
SEED = 1234


def _scenes(rng: np.random.Generator, digits_Nx28x28: np.ndarray, labels_N: np.ndarray, count: int):
  """``count`` scenes from these digits: features ``[count, 196]``, tags ``[count, 10]``, text ``[count, L]``."""
  features = np.zeros((count, 196), np.float32)
  tags = np.zeros((count, 10), np.int32)
  text = np.zeros((count, TEXT_LENGTH), np.int32)
  for i in range(count):
    grid = np.zeros((56, 56), np.float32)
    cells = rng.choice(4, rng.integers(2, 5), replace=False)
    for cell, d in zip(cells, rng.choice(labels_N.size, cells.size, replace=False), strict=True):
      r, c = divmod(int(cell), 2)
      grid[28 * r : 28 * r + 28, 28 * c : 28 * c + 28] = digits_Nx28x28[d]
      tags[i, labels_N[d]] = 1
    features[i] = grid.reshape(14, 4, 14, 4).mean(axis=(1, 3)).reshape(-1) + FEATURE_NOISE * rng.normal(size=196)
    present = np.flatnonzero(tags[i])
    words = [d + 1 for d in present if rng.random() < NAME_P]
    absent = np.flatnonzero(tags[i] == 0)
    if rng.random() < DISTRACTOR_P:
      words.append(int(rng.choice(absent)) + 1)
    words += list(rng.integers(len(DIGIT_WORDS) + 1, len(VOCABULARY), rng.integers(2, 5)))
    words = rng.permutation(np.array(words, np.int32))[:TEXT_LENGTH]
    text[i, : words.size] = words
  return features, tags, text


def arrays(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
  """``x_train, y_train, x_test, y_test, xp_train, xp_test`` of the scenes (fixed seed) made of the mnist5k digits
  ``x [N, 28, 28, 1]``, ``y [N]``."""
  rng = np.random.default_rng(SEED)
  order = rng.permutation(y.size)  # the digit file is sorted by class
  train_digits, test_digits = order[:4000], order[4000:]
  x_train, y_train, xp_train = _scenes(rng, x[train_digits, ..., 0], y[train_digits], NUM_TRAIN)
  x_test, y_test, xp_test = _scenes(rng, x[test_digits, ..., 0], y[test_digits], NUM_TEST)
  return {'x_train': x_train, 'y_train': y_train, 'x_test': x_test, 'y_test': y_test, 'xp_train': xp_train,
          'xp_test': xp_test}  # fmt: skip
