"""The tag task's engine: multi-label targets (p_r uniform over an example's tags), single-label runs unchanged."""

import json
import os
import subprocess
import sys
from unittest import mock

from absl.testing import absltest
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adjax import config as config_lib
from adjax import data as data_lib
from adjax import game as game_lib
from adjax import kvote
from adjax import losses
from adjax import models
from adjax import train
from adjax import yfcc
from experiments.configs import tags as tags_config
from tests import conftest
from tests.test_train import tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STORED = os.path.join(os.path.dirname(__file__), 'data', 'single_label_results.json')


class MultiLabelTest(absltest.TestCase):
  def test_cross_entropy_is_the_mean_over_an_examples_tags(self):
    logits = jax.random.normal(jax.random.key(0), (3, 5))
    tags = jnp.array([[1, 0, 1, 0, 0], [0, 0, 0, 0, 1], [1, 1, 1, 1, 0]])
    log_p = np.asarray(jax.nn.log_softmax(logits))
    expected = [-(log_p[0, 0] + log_p[0, 2]) / 2, -log_p[1, 4], -np.mean(log_p[2, :4])]
    np.testing.assert_allclose(losses.cross_entropy(logits, tags), expected, rtol=1e-6)
    # One tag per example is the integer-label cross-entropy.
    np.testing.assert_allclose(
      losses.cross_entropy(logits, jax.nn.one_hot(jnp.array([0, 4, 2]), 5)),
      losses.cross_entropy(logits, jnp.array([0, 4, 2])),
      rtol=1e-6,
    )

  def test_real_label_is_drawn_uniformly_from_the_tags(self):
    tags = jnp.array([[1, 0, 1, 0, 1, 0]] * 6000)
    draws = losses.real_sample(jax.random.key(3), tags, 6)
    self.assertTrue(np.all(np.asarray(draws).sum(-1) == 1))
    counts = np.asarray(draws).sum(0)
    self.assertEqual(counts[[1, 3, 5]].tolist(), [0, 0, 0])  # never a tag the example lacks
    np.testing.assert_allclose(counts[[0, 2, 4]] / 6000, 1 / 3, atol=0.02)  # 3 sigma is 0.018
    integer = losses.real_sample(jax.random.key(3), jnp.array([2, 0]), 3)
    np.testing.assert_array_equal(integer, [[0, 0, 1], [1, 0, 0]])


class SingleLabelUnchangedTest(absltest.TestCase):
  def test_runs_equal_those_stored_before_multi_label_targets(self):
    """ADIM and DISTN (and NOISY, NGAN), 2 seeds: every history value and final figure as adjax computed
    them before (stored).

    ADIM and DISTN stored before multi-label targets; stored again when ``models.Dense`` gave the kernel gradient
    its own layout (issue 11): then only the logged gradient norms moved, by at most 4.8e-7 (their sum's order),
    every loss, accuracy and parameter selection stayed bit-identical. NOISY and NGAN stored by the code before
    the authors' options (issue 14: estimator ``authors``, ``generator_reward``, ``distill_terms``,
    ``divide_by_batch``; commit 032e1a4), which leave the defaults unchanged. ``discriminator_reward`` (0 by
    construction) was then dropped from the stored histories, as from the history (issue 21)."""
    with open(STORED) as f:
      stored = json.load(f)
    # Under XLA's default optimisation level, as they were stored (the suite compiles at level 0: conftest).
    out = os.path.join(self.create_tempdir().full_path, 'now.json')
    command = [sys.executable, '-m', 'tests.stored_runs', out, *stored]
    subprocess.run(command, cwd=ROOT, env=conftest.default_level_env(), check=True, timeout=600)
    with open(out) as f:
      runs = json.load(f)
    for method, before in stored.items():
      now = runs[method]
      self.assertEqual(now['per_seed'][0]['final'], before['per_seed'][0]['final'], method)
      # The equilibrium diagnostics came later; they draw nothing from the run, so the rest is unchanged.
      history = [
        {k: v for k, v in h.items() if not k.startswith('diagnostics/')} for h in now['per_seed'][0]['history']
      ]
      self.assertEqual(history, before['per_seed'][0]['history'], method)


def _tag_arrays(n=300, k=6, length=5, seed=0):
  rng = np.random.default_rng(seed)
  tags = (rng.random((n, k)) < 0.3).astype(np.int32)
  tags[np.arange(n), rng.integers(0, k, n)] = 1
  text = rng.integers(0, 20, (n, length))
  return rng.normal(size=(n, 8)).astype(np.float32), tags, text


class TagDataTest(absltest.TestCase):
  def test_multi_hot_tags_and_text_split_and_view(self):
    x, tags, text = _tag_arrays()
    source = data_lib.from_arrays(x[:250], tags[:250], x[250:], tags[250:], text[:250], text[250:], name='tags')
    c = tiny_config('adim', n_train=100, n_val=50, multi_label=True)
    c.student.model = c.teacher.model = c.discriminator.model = 'mlp'
    splits = data_lib.load(config_lib.validate(c), source)
    self.assertEqual(splits.num_classes, 6)
    self.assertEqual(splits.pool['xp'].dtype, np.int32)  # token ids stay integers
    train_split = splits.split('train')
    self.assertEqual(train_split['y'].shape, (100, 6))
    self.assertEqual(len(set(splits.index['train']) | set(splits.index['val'])), 150)  # disjoint draws
    np.testing.assert_array_equal(splits.index['test'], np.arange(250, 300))
    self.assertIs(game_lib.view('student', train_split), train_split['x'])  # never the text
    image, words = game_lib.view('teacher', train_split)
    self.assertEqual((image.shape, words.shape), ((100, 8), (100, 5)))

  def test_bad_tags_and_text_are_refused(self):
    x, tags, text = _tag_arrays()
    no_tag = tags.copy()
    no_tag[7] = 0
    with self.assertRaisesRegex(config_lib.ConfigError, r'y_train: 1 examples have no tag \(first: example 7\)'):
      data_lib.from_arrays(x, no_tag)
    with self.assertRaisesRegex(config_lib.ConfigError, 'multi-hot tags of 0 and 1'):
      data_lib.from_arrays(x, tags * 2)
    with self.assertRaisesRegex(config_lib.ConfigError, 'xp_train holds token id -1'):
      data_lib.from_arrays(x, tags, xp_train=text - 1)
    never = tags.copy()
    never[:, 5] = 0
    never[never.sum(1) == 0, 0] = 1
    with self.assertRaisesRegex(config_lib.ConfigError, r'tags \[5\] of 0..5 are on no training example'):
      c = tiny_config('student', n_train=100, n_val=50, multi_label=True)
      data_lib.load(config_lib.validate(c), data_lib.from_arrays(x, never))


class ScenesTest(absltest.TestCase):
  def test_scenes_of_real_digits_with_helpful_noisy_text(self):
    source = data_lib.read(config_lib.validate(tiny_config('student', dataset='mnist5k_scenes', multi_label=True)))
    self.assertEqual((source.x.shape, source.y.shape, source.xp.shape), ((4000, 196), (4000, 10), (4000, 10)))
    self.assertEqual((source.x_test.shape[0], source.xp.dtype), (1000, np.int32))
    self.assertTrue(np.all((source.y.sum(1) >= 1) & (source.y.sum(1) <= 4)))
    named = np.zeros_like(source.y)
    rows, cols = np.nonzero((source.xp >= 1) & (source.xp <= 10))
    named[rows, source.xp[rows, cols] - 1] = 1
    recall, precision = (named & source.y).sum() / source.y.sum(), (named & source.y).sum() / named.sum()
    self.assertBetween(recall, 0.45, 0.55)  # the text names about half the digits present
    self.assertBetween(precision, 0.75, 0.9)  # and some that are not
    again = data_lib.DATASETS['mnist5k_scenes'](None)
    self.assertEqual(again.fingerprint, source.fingerprint)


class TagRunTest(absltest.TestCase):
  def test_adim_on_scenes_end_to_end(self):
    c = tags_config.get_config()
    c.n_train, c.n_val, c.rounds = 200, 100, 2
    c.k_d = c.k_t = c.k_s = 2
    c.pretrain.student = c.pretrain.teacher = c.pretrain.discriminator = 5
    c.text.width = c.text.hidden = c.text.embed_dim = 16
    seen = []
    original = models.TextImageMLP.__call__

    def recording(module, inputs):
      seen.append(inputs[1].dtype)
      return original(module, inputs)

    with mock.patch.object(models.TextImageMLP, '__call__', recording):
      results = train.train_and_evaluate(c, self.create_tempdir().full_path)
    self.assertTrue(seen and all(jnp.issubdtype(d, jnp.integer) for d in seen))  # the text models read token ids
    names = ('p@3', 'r@3', 'f@3', 'ndcg@3', 'map', 'mrr')
    for player in ('student', 'teacher'):
      final = results['final'][player]
      self.assertEqual(
        {f'test_{m}' for m in names} | {f'last_test_{m}' for m in names}, {k for k in final if 'test' in k}
      )
      self.assertEqual(final['val_p@3'], max(h[f'{player}_val_p@3'] for h in results['history']))
      self.assertTrue(all(0.0 <= final[f'test_{m}'] <= 1.0 for m in names))
    self.assertIn('student_val_mrr', results['history'][-1])
    # The equilibrium diagnostics on multi-label data (p_r uniform over an example's tags), every round.
    self.assertTrue(
      all(h['diagnostics/d_gap'] >= 0 and np.isfinite(h['diagnostics/divergence']) for h in results['history'])
    )

  def test_a_metric_the_data_lacks_is_refused(self):
    c = tags_config.get_config()
    c.select_metric = 'accuracy'
    with self.assertRaisesRegex(config_lib.ConfigError, "select_metric='accuracy' is not a figure of multi-label"):
      train.train_and_evaluate(c, self.create_tempdir().full_path)


class KvoteTest(absltest.TestCase):
  def test_votes_of_the_nearest_examples(self):
    x_train = jnp.array([[0.0, 0.0], [1.0, 0.0], [10.0, 10.0], [11.0, 10.0]])
    tags = jnp.array([[1, 0, 0], [0, 1, 0], [0, 1, 1], [0, 0, 1]])
    query = jnp.array([[0.2, 0.0], [10.4, 10.0]])
    np.testing.assert_allclose(np.round(kvote.scores(x_train, tags, query, 1)), [[1, 0, 0], [0, 1, 1]])
    np.testing.assert_allclose(np.round(kvote.scores(x_train, tags, query, 2)), [[1, 1, 0], [0, 1, 2]])
    # One vote each for tags 0 and 1: tag 1, on two training examples, ranks first.
    tied = kvote.scores(x_train, tags, query, 2)[0]
    self.assertGreater(float(tied[1]), float(tied[0]))

  def test_k_is_chosen_on_validation(self):
    c = config_lib.validate(tiny_config('student', dataset='mnist5k_scenes', multi_label=True, n_train=500, n_val=200))
    out = kvote.run(data_lib.load(c), ks=(1, 5, 25))
    self.assertEqual(out['k'], max((1, 5, 25), key=lambda k: out['validation'][str(k)]['p@3']))
    self.assertEqual(out['val_p@3'], out['validation'][str(out['k'])]['p@3'])
    self.assertBetween(out['test']['p@3'], 0.3, 1.0)  # far above chance on the scenes


# A tag run small enough for the tests: few examples, updates and pretraining steps, narrow text models.
TINY_TAG_FLAGS = ['--config.n_train=200', '--config.n_val=100', '--config.k_d=2', '--config.k_t=2', '--config.k_s=2',
                  '--config.pretrain.student=5', '--config.pretrain.teacher=5', '--config.pretrain.discriminator=5',
                  '--config.text.width=16', '--config.text.hidden=16', '--config.text.embed_dim=16',
                  '--config.diagnostics=0']  # fmt: skip
# TagRunTest's sizes too: the drivers' ADIM compiles to its programs, which the session's compilation cache holds.


def _run_tiny(test, module: str, *args) -> None:
  """``python -m module *args`` with ``TINY_TAG_FLAGS`` from the repository root; it must exit with status 0."""
  command = [sys.executable, '-m', module, *args, *TINY_TAG_FLAGS]
  proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
  test.assertEqual(proc.returncode, 0, proc.stderr[-2000:])


class Table4Test(absltest.TestCase):
  @pytest.mark.slow  # the tag run and its metrics: TagRunTest; k-vote: KvoteTest; a table driver's cells: test_table1
  def test_driver_writes_table_json_and_curves(self):
    workdir = self.create_tempdir().full_path
    _run_tiny(self, 'experiments.table4', f'--workdir={workdir}', '--methods=student,adim', '--config.rounds=1')
    with open(os.path.join(workdir, 'table4.md')) as f:
      table = f.read()
    for row in ('| KVOTE (k = ', '| STUDENT | ', '| ADIM | '):
      self.assertIn(row, table)
    with open(os.path.join(workdir, 'table4.json')) as f:
      summary = json.load(f)
    self.assertEqual(set(summary), {'student', 'adim', 'kvote'})
    self.assertIn('test_ndcg@3', summary['adim']['final']['student'])
    self.assertTrue(os.path.exists(os.path.join(workdir, 'fig9.png')))


def _yfcc_line(row: int, photo: str, title: str, description: str, tags: str, columns: int = 25) -> str:
  """One line of the public yfcc100m_dataset file (25 columns with a row id; 23 without)."""
  fields = [''] * columns
  first = 1 if columns == 25 else 0
  if columns == 25:
    fields[0] = str(row)
  fields[first], fields[first + 7], fields[first + 8], fields[first + 9] = photo, title, description, tags
  return '\t'.join(fields) + '\n'


class YfccPrepareTest(absltest.TestCase):
  def _files(self, lines: list[str], ids: list[str]):
    d = self.create_tempdir()
    metadata = d.create_file('yfcc100m_dataset', content=''.join(lines)).full_path
    features = os.path.join(d.full_path, 'fc7.npy')
    np.save(features, np.arange(len(ids) * 4, dtype=np.float32).reshape(len(ids), 4))
    ids_path = d.create_file('ids.txt', content='\n'.join(ids) + '\n').full_path
    return metadata, features, ids_path, os.path.join(d.full_path, 'out.npz')

  def test_tiny_file_in_the_public_format(self):
    lines, ids = [], []
    for i in range(12):
      tags = ['sky', 'sea'] if i % 2 else ['sky', 'city']
      title = 'Sunset+over+the+%3Cb%3Ebay%3C%2Fb%3E' if i % 3 else ''  # URL-encoded, with HTML
      rare = ['rare%20tag'] if i == 0 else []
      lines.append(_yfcc_line(i, str(1000 + i), title, f'photo+{i}', ','.join([*tags, *rare])))
      ids.append(str(1000 + i))
    lines.append(_yfcc_line(12, '2000', '', '', 'sky'))  # no text, no features: skipped
    metadata, features, ids_path, out = self._files(lines, ids)
    counts = yfcc.prepare(metadata, features, ids_path, out, num_tags=2, n_train=8, n_test=4, max_words=4)
    self.assertEqual(counts, {'photos_with_text': 12, 'with_a_tag': 12, 'train': 8, 'test': 4})
    with np.load(out) as f:
      self.assertEqual(f['tag_names'].tolist(), ['sky', 'city'])  # most frequent first, ties by name
      self.assertEqual((f['x_train'].shape, f['xp_train'].shape, f['y_train'].shape), ((8, 4), (8, 4), (8, 2)))
      vocabulary = f['vocabulary'].tolist()
      self.assertIn('bay', vocabulary)  # HTML stripped, URL decoded
      self.assertNotIn('b', vocabulary)
      self.assertTrue(np.all(f['y_train'][:, 0] == 1))  # every photo is tagged sky
      photo_of_row = {tuple(r): i for i, r in enumerate(np.load(features))}
      for x, tags in zip(f['x_train'], f['y_train'], strict=True):  # features and tags of the same photo
        self.assertEqual(tags[1], int(photo_of_row[tuple(x)] % 2 == 0))
    source = data_lib.load_npz(out)  # what dataset=npz reads
    self.assertTrue(data_lib.is_text(source.xp))
    self.assertEqual(source.y.shape, (8, 2))

  def test_bad_input_names_the_line_or_id(self):
    good = [_yfcc_line(i, str(i), 'a+title', '', 'sky') for i in range(3)]
    cases = [
      ([*good[:1], '1\t2\t3\n', *good[2:]], ['0', '2'], r'yfcc100m_dataset, line 2: 3 tab-separated columns'),
      (good, ['0', '1', '77'], r'1 photo ids of --feature_ids are not in .* \(first: 77\)'),
      ([_yfcc_line(i, str(i), '', '', 'sky', columns=23) for i in range(3)], ['0', '1'], 'has a title or description'),
    ]
    for lines, ids, message in cases:
      with self.assertRaisesRegex(yfcc.PrepareError, message):
        yfcc.prepare(*self._files(lines, ids), num_tags=1, n_train=1, n_test=1)


class TextModelTest(absltest.TestCase):
  def test_pretrained_embeddings_padding_and_masking(self):
    path = os.path.join(self.create_tempdir().full_path, 'words.npy')
    table = np.random.default_rng(0).normal(size=(12, 4)).astype(np.float32)
    np.save(path, table)
    encoder = models.TextEncoder(vocab_size=12, embed_dim=4, hidden=3, embeddings=path)
    tokens = jnp.array([[5, 7, 0, 0], [5, 7, 9, 0]])
    params = encoder.init(jax.random.key(0), tokens)
    np.testing.assert_array_equal(params['params']['Embed_0']['embedding'], table)
    h = encoder.apply(params, tokens)
    # The state after each text's last word: padding after it changes nothing, another word does.
    np.testing.assert_allclose(h[0], encoder.apply(params, jnp.array([[5, 7, 0, 0, 0, 0]]))[0], rtol=1e-6)
    self.assertGreater(float(jnp.abs(h[0] - h[1]).max()), 1e-4)
    with self.assertRaisesRegex(ValueError, r'text.embeddings=.* holds \(12, 4\), the model needs .* \(12, 8\)'):
      models.TextEncoder(vocab_size=12, embed_dim=8, embeddings=path).init(jax.random.key(0), tokens)


class TagConfigTest(absltest.TestCase):
  def test_bad_ranking_settings_and_text_models_are_refused(self):
    cases = [
      ({'rank_k': 0}, r'rank_k=0 must be in 1..10'),
      ({'select_metric': 'p@5'}, r"select_metric='p@5' is not a figure .* at rank_k=3; .* \(or set rank_k=5\)"),
      (
        {'dataset': 'mnist5k', 'multi_label': False},
        'discriminator.model=text_mlp, teacher.model=text_mlp read privileged text, but',
      ),
    ]
    for overrides, message in cases:
      c = tags_config.get_config()
      c.update(overrides)
      workdir = self.create_tempdir().full_path
      with self.assertRaisesRegex(config_lib.ConfigError, message):
        train.train_and_evaluate(c, workdir)
      self.assertEqual(os.listdir(workdir), [])

  def test_kvote_at_another_k(self):
    c = config_lib.validate(tiny_config('student', dataset='mnist5k_scenes', multi_label=True, n_train=300, n_val=100))
    out = kvote.run(data_lib.load(c), rank_k=5, ks=(1, 5))
    self.assertEqual(out['val_p@5'], out['validation'][str(out['k'])]['p@5'])


class TagSweepTest(absltest.TestCase):
  @pytest.mark.slow  # the sweep entrypoint: test_sweep; the tag metrics: TagRunTest
  def test_sweep_of_nu_reports_p_at_3(self):
    workdir = self.create_tempdir().full_path
    args = [
      f'--workdir={workdir}',
      '--config=experiments/configs/tags.py',
      '--sweep=game.nu=0.1,10',
      '--config.rounds=1',
    ]
    _run_tiny(self, 'experiments.sweep', *args)
    with open(os.path.join(workdir, 'sweep.md')) as f:
      table = f.read()
    self.assertIn('P@3 picked on validation', table)
    self.assertEqual(table.count('game.nu='), 2)
    self.assertTrue(os.path.exists(os.path.join(workdir, 'sweep_game_nu.png')))


if __name__ == '__main__':
  absltest.main()
