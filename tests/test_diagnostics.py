"""The equilibrium diagnostics against SPEC §3's closed forms: the optimal discriminator's gap and value, the
divergences, and the measurement of a game on a split."""

import os

from absl.testing import absltest
from absl.testing import parameterized
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from adjax import config as config_lib
from adjax import diagnostics
from adjax import game as game_lib
from adjax import methods
from adjax import values
from adjax.run import plots
from experiments.configs import mnist


def _log_probs(seed: int, b: int = 4, k: int = 5):
  keys = jax.random.split(jax.random.key(seed), 3)
  return [jnp.log(jax.random.dirichlet(key, jnp.ones(k), (b,))) for key in keys]


def _kl(p, q):
  return np.sum(np.where(p > 0, p * (np.log(np.where(p > 0, p, 1)) - np.log(q)), 0.0), -1)


def _optimal_scores(kind: str, heads: int, w, lr, ls, lt):
  """Scores ``h`` whose discriminator is ``D*`` (Lemmas 4.1, 4.3), written out per form."""
  log_r, log_s, log_t = (jnp.log(wi) + lp for wi, lp in zip(w, (lr, ls, lt)))
  fake = jnp.logaddexp(log_s, log_t)
  if kind == 'binary':
    return log_r - fake  # logit of ω_r p_r / (ω_r p_r + ω_s p_s + ω_t p_t)
  if heads == 2:
    return jnp.stack([log_r - fake, log_s - log_t], axis=1)  # σ(a) = D_r*, σ(b) = D_s* / (D_s* + D_t*)
  return jnp.stack([log_r, log_s, log_t], axis=1)  # softmax over heads = D_i*


# (kind, heads, weights): ADIB, NGAN (the teacher's weight 0), ADIM with both discriminator forms.
FORMS = (
  ('adib', 'binary', 1, (1.0, 0.3, 0.7)),
  ('binary_weighted', 'binary', 1, (0.5, 0.3, 0.7)),  # ω_r ≠ ω_s + ω_t: the weighted JS
  ('ngan', 'binary', 1, (1.0, 1.0, 0.0)),
  ('adim_two_heads', 'multiclass', 2, (0.2, 0.5, 0.3)),
  ('adim_three_heads', 'multiclass', 3, (0.5, 0.25, 0.25)),
)


class ClosedFormTest(parameterized.TestCase):
  def setUp(self):
    super().setUp()
    self.enter_context(jax.enable_x64(True))

  @parameterized.named_parameters(*FORMS)
  def test_gap_is_zero_at_d_star_and_positive_elsewhere(self, kind, heads, w):
    lr, ls, lt = _log_probs(0)
    log_p = jnp.stack([lr, ls, lt], -1)
    h = _optimal_scores(kind, heads, w, lr, ls, lt)
    np.testing.assert_allclose(values.optimality_gap(kind, w, h, log_p), 0.0, atol=1e-12)
    for i in range(3):
      noisy = h + 0.3 * jax.random.normal(jax.random.key(i), h.shape)
      gap = values.optimality_gap(kind, w, noisy, log_p)
      self.assertTrue(np.all(gap > 1e-6))
      # The same difference through another path: the exact values of the two discriminators.
      v = lambda h: values.value_exact(kind, w, h, lr, ls, lt)
      np.testing.assert_allclose(gap, v(h) - v(noisy), rtol=1e-9)

  @parameterized.named_parameters(*FORMS)
  def test_value_at_d_star_is_the_theorems(self, kind, heads, w):
    lr, ls, lt = _log_probs(1)
    log_p = jnp.stack([lr, ls, lt], -1)
    v = values.value_exact(kind, w, _optimal_scores(kind, heads, w, lr, ls, lt), lr, ls, lt)
    pr, ps, pt = (np.exp(np.asarray(x)) for x in (lr, ls, lt))
    if kind == 'binary':  # Theorem 4.2, weighted: A log(A/W) + B log(B/W) + W JS_π; ADIB, NGAN: 2 JS − log 4
      a, b = w[0], w[1] + w[2]
      p_omega = (w[1] * ps + w[2] * pt) / b
      m = (a * pr + b * p_omega) / (a + b)
      divergence = (a * _kl(pr, m) + b * _kl(p_omega, m)) / (a + b)
      expected = a * np.log(a / (a + b)) + b * np.log(b / (a + b)) + (a + b) * divergence
      if a == b == 1:
        self.assertTrue(np.allclose(expected, 2 * divergence - np.log(4)))
    else:  # Theorem 4.4: Σ ω_i log ω_i + Σ ω_i KL(p_i || p̄)
      p_bar = w[0] * pr + w[1] * ps + w[2] * pt
      divergence = sum(wi * _kl(p, p_bar) for wi, p in zip(w, (pr, ps, pt)))
      expected = sum(wi * np.log(wi) for wi in w) + divergence
    np.testing.assert_allclose(v, expected, rtol=1e-10)
    np.testing.assert_allclose(values.equilibrium_divergence(kind, w, log_p), divergence, rtol=1e-10, atol=1e-14)

  @parameterized.named_parameters(*FORMS)
  def test_divergences_vanish_when_the_generators_are_real(self, kind, heads, w):
    lr, _, _ = _log_probs(2)
    log_p = jnp.stack([lr, lr, lr], -1)
    np.testing.assert_allclose(values.equilibrium_divergence(kind, w, log_p), 0.0, atol=1e-12)
    table = values.optimal_table(kind, w, log_p)
    value = values.table_value(w, jnp.exp(log_p), table)
    groups = [w[0], w[1] + w[2]] if kind == 'binary' else [wi for wi in w if wi > 0]
    expected = sum(g * np.log(g / sum(groups)) for g in groups)  # ADIB: −log 4; ADIM: Σ ω_i log ω_i
    np.testing.assert_allclose(value, expected, rtol=1e-10)

  @parameterized.named_parameters(*FORMS)
  def test_one_hot_real_labels_and_zero_weights_stay_finite(self, kind, heads, w):
    _, ls, lt = _log_probs(3)
    lr = jnp.log(jax.nn.one_hot(jnp.arange(4) % 5, 5, dtype=ls.dtype))  # -inf off the label
    log_p = jnp.stack([lr, ls, lt], -1)
    shape = (4, 5) if kind == 'binary' else (4, heads, 5)
    h = jax.random.normal(jax.random.key(4), shape, ls.dtype)
    self.assertTrue(np.all(np.isfinite(values.optimality_gap(kind, w, h, log_p))))
    self.assertTrue(np.all(values.optimality_gap(kind, w, h, log_p) >= 0))
    divergence = values.equilibrium_divergence(kind, w, log_p)
    self.assertTrue(np.all(np.isfinite(divergence)) and np.all(divergence >= 0))
    # Generators of weight 0: their mixture is empty, and nothing is NaN.
    lone = values.equilibrium_divergence(kind, (1.0, 0.0, 0.0), log_p)
    np.testing.assert_allclose(lone, 0.0, atol=1e-12)


class Table(nn.Module):
  """A player whose outputs for example ``i`` (its input ``x[:, 0]``) are row ``i`` of a fixed table."""

  rows: np.ndarray

  @nn.compact
  def __call__(self, x):
    return jnp.asarray(self.rows)[x[:, 0].astype(jnp.int32)]


class MeasureTest(parameterized.TestCase):
  """``diagnostics.measure`` on a game whose players are fixed tables: each figure against its closed form."""

  def _measure(self, method: str, y, student, teacher, scores, weights, tau0: float = 10.0):
    config = mnist.get_config()
    config.method, config.eval_chunk = method, 3  # chunks of 3 of 4 examples: padding is cut off
    config = config_lib.validate(config)
    k = student.shape[1]
    nets = {'student': Table(student), 'teacher': Table(teacher), 'discriminator': Table(scores)}
    game = game_lib.build(config, k, nets={p: nets[p] for p in methods.METHODS[method].present})
    split = {'x': np.arange(len(y), dtype=np.float32)[:, None], 'y': y}
    state = game_lib.init_state(game, jax.random.key(0), split)
    state['hparams']['weights'] = jnp.asarray(weights, jnp.float32)
    state['hparams']['tau0'] = jnp.asarray(tau0, jnp.float32)
    return {k: float(v) for k, v in diagnostics.measure(game, state, game_lib.as_data(split)).items()}

  def test_multi_label_real_distribution_is_uniform_over_the_tags(self):
    tags = np.array([[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 1, 1], [0, 0, 0, 1]], np.int32)
    rng = np.random.default_rng(0)
    student, teacher = rng.normal(size=(2, 4, 4)).astype(np.float32)
    w = (1.0, 0.4, 0.6)
    # A binary discriminator at D* of these tags: log ω_r p_r − log(ω_s p_s + ω_t p_t), -30 off the tags.
    pr = tags / tags.sum(1, keepdims=True)
    ps, pt = (np.exp(z) / np.exp(z).sum(1, keepdims=True) for z in (student, teacher))
    scores = np.where(pr > 0, np.log(np.where(pr > 0, pr, 1)) - np.log(w[1] * ps + w[2] * pt), -30.0)
    got = self._measure('adib', tags, student, teacher, scores.astype(np.float32), w)
    self.assertAlmostEqual(got['kl_r_s'], float(np.mean(_kl(pr, ps))), places=5)
    self.assertAlmostEqual(got['kl_r_t'], float(np.mean(_kl(pr, pt))), places=5)
    self.assertAlmostEqual(got['kl_t_s'], float(np.mean(_kl(pt, ps))), places=5)
    self.assertAlmostEqual(got['entropy_s'], float(np.mean(-np.sum(ps * np.log(ps), 1))), places=5)
    self.assertAlmostEqual(got['d_gap'], 0.0, places=5)
    p_omega = 0.4 * ps + 0.6 * pt
    m = (pr + p_omega) / 2
    self.assertAlmostEqual(got['divergence'], float(np.mean(0.5 * _kl(pr, m) + 0.5 * _kl(p_omega, m))), places=5)

  def test_discriminator_accuracy_is_one_when_it_separates_and_zero_when_inverted(self):
    y = np.array([0, 1, 2, 3], np.int32)
    onehot = np.eye(4, dtype=np.float32)
    student = np.where(onehot > 0, -20.0, 0.0).astype(np.float32)  # never the real label
    for sign, expected in ((1.0, 1.0), (-1.0, 0.0)):
      scores = sign * np.where(onehot > 0, 30.0, -30.0).astype(np.float32)  # D ≈ 1 at the label, ≈ 0 elsewhere
      got = self._measure('ngan', y, student, student, scores, (1.0, 1.0, 0.0))
      self.assertEqual(got['d_accuracy'], expected)
      self.assertNotIn('kl_t_s', got)  # NGAN has no teacher: no teacher figures
    self.assertEqual(set(got), {'d_gap', 'divergence', 'd_accuracy', 'd_accuracy_shown', 'kl_r_s', 'entropy_s'})

  def test_a_discriminator_that_tells_relaxed_samples_from_one_hot_labels(self):
    y = np.array([0, 1, 2, 3], np.int32)
    onehot = np.eye(4, dtype=np.float32)
    student = np.where(onehot > 0, 0.0, -20.0).astype(np.float32)  # p_s = p_r: its one-hot samples are the label
    scores = np.where(onehot > 0, 30.0, -90.0).astype(np.float32)  # real only when all the mass is on the label
    got = self._measure('ngan', y, student, student, scores, (1.0, 1.0, 0.0), tau0=100.0)  # near-uniform samples
    self.assertEqual(got['d_accuracy'], 0.5)  # real labels told right, the student's (the same) wrong
    self.assertEqual(got['d_accuracy_shown'], 1.0)  # its concrete samples: every one told fake

  def test_a_binary_discriminators_accuracy_is_balanced_over_real_and_fake(self):
    y = np.array([0, 1, 2, 3], np.int32)
    logits = np.random.default_rng(2).normal(size=(2, 4, 4)).astype(np.float32)
    # Always fake, always real, undecided (ties share the credit): each at chance, 1/2.
    for score in (-30.0, 30.0, 0.0):
      scores = np.full((4, 4), score, np.float32)
      got = self._measure('adib', y, logits[0], logits[1], scores, (1.0, 0.5, 0.5))
      self.assertAlmostEqual(got['d_accuracy'], 0.5, places=6, msg=score)

  def test_one_hot_samples_make_both_accuracies_one(self):
    y = np.array([0, 1, 2, 3], np.int32)
    logits = np.random.default_rng(3).normal(size=(2, 4, 4)).astype(np.float32)
    scores = np.random.default_rng(4).normal(size=(4, 4)).astype(np.float32)
    # REINFORCE shows the discriminator one-hot samples: the same draws as the one-hot figure's.
    got = self._measure('adim_ngs', y, logits[0], logits[1], scores, (1 / 3, 1 / 3, 1 / 3))
    self.assertEqual(got['d_accuracy'], got['d_accuracy_shown'])

  def test_a_split_is_measured_on_count_examples_spread_over_it(self):
    data = {'pool': {}, 'index': np.arange(2 * 1001).reshape(2, 1001), 'mean': {}}
    index = game_lib.spread(data, 250)['index']
    self.assertEqual(index.shape, (2, 250))
    self.assertLen(np.unique(index[0]), 250)
    self.assertEqual((index[0, 0], index[0, -1] // 10), (0, 99))  # from the start to the end of the split
    self.assertIs(game_lib.spread(data, 5000), data)

  def test_a_method_without_discriminator_reports_its_divergences_only(self):
    y = np.array([0, 1, 2, 0], np.int32)
    z = np.random.default_rng(1).normal(size=(2, 4, 3)).astype(np.float32)
    got = self._measure('codis', y, z[0], z[1], z[0], (0.0, 0.0, 0.0))
    self.assertEqual(set(got), {'kl_t_s', 'kl_r_s', 'kl_r_t', 'entropy_s', 'entropy_t'})
    ps, pt = (np.exp(a) / np.exp(a).sum(1, keepdims=True) for a in z)
    self.assertAlmostEqual(got['kl_r_s'], float(np.mean(-np.log(ps[np.arange(4), y]))), places=5)
    self.assertAlmostEqual(got['kl_t_s'], float(np.mean(_kl(pt, ps))), places=5)


class FigureTest(parameterized.TestCase):
  def _results(self, gap: float, diagnosed: bool = True) -> dict:
    history = [
      {'round': r, 'student_val_accuracy': 0.5 + 0.1 * r, **({'diagnostics/d_gap': gap / (r + 1),
       'diagnostics/train_d_gap': gap / (r + 2)} if diagnosed else {})}
      for r in range(3)
    ]  # fmt: skip
    final = {'student': {'selected_round': 2}, 'teacher': None}
    return {'method': 'adim', 'dataset': 'd', 'n_train': 10, 'num_seeds': 2,
            'per_seed': [{'final': final, 'history': history}] * 2}  # fmt: skip

  def test_each_panel_holds_every_members_rounds(self):
    panels = plots.series(self._results(3.0))
    self.assertEqual(list(panels), ['diagnostics/d_gap', 'diagnostics/train_d_gap', 'student_val_accuracy'])
    np.testing.assert_allclose(panels['diagnostics/d_gap'][1], [[0, 3.0], [1, 1.5], [2, 1.0]])

  def test_the_selected_round_marked_is_the_members_mean(self):
    results = self._results(3.0)
    results['per_seed'] = [{**results['per_seed'][0], 'final': {'student': {'selected_round': r}}} for r in (1, 2)]
    self.assertEqual(plots.selected_round(results), 1.5)
    results['per_seed'] = [{**m, 'final': None} for m in results['per_seed']]  # diverged at round 0: none selected
    self.assertIsNone(plots.selected_round(results))

  @parameterized.parameters(('adib', 1 / 2), ('ngan', 1 / 2), ('adim', 1 / 3), ('codis', None), ('unregistered', None))
  def test_the_chance_marked_is_that_of_the_methods_discriminator(self, name, chance):
    # A binary discriminator's fake roles are one outcome; a method without one (or unknown here) has no chance line.
    self.assertEqual(plots.chance_accuracy({'method': name}), chance)

  def test_figures_are_written_only_where_diagnostics_were_measured(self):
    out = self.create_tempdir().full_path
    self.assertTrue(plots.write(self._results(3.0), f'{out}/one.png'))
    self.assertTrue(plots.compare({'a': self._results(3.0), 'b': self._results(1.0)}, f'{out}/two.png', 'adim'))
    self.assertFalse(plots.write(self._results(3.0, diagnosed=False), f'{out}/none.png'))
    self.assertFalse(plots.compare({'a': self._results(3.0, diagnosed=False)}, f'{out}/none.png', 'adim'))
    self.assertEqual(sorted(os.listdir(out)), ['one.png', 'two.png'])


if __name__ == '__main__':
  absltest.main()
