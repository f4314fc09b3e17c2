"""The ablation driver: which cells a condition changes, its margins and table; the authors' config."""

import json
import os
import subprocess
import sys
import tempfile

from absl.testing import absltest

from adjax import config as config_lib
from adjax import data
from adjax import sweeps
from adjax import train
from adjax import workdir as workdir_lib
from experiments import ablation
from experiments.configs import mnist_authors
from tests.test_table1 import REPO
from tests.test_table1 import TINY
from tests.test_train import tiny_config
from tests.test_train import without_timings


class SameAsDefaultsTest(absltest.TestCase):
  def test_a_condition_changes_exactly_the_methods_whose_losses_read_it(self):
    conditions = ['defaults', 'authors_update', 'distn_mse', 'non_saturating', 'divide_by_batch']
    methods = ['student', 'distn', 'ngan', 'adim_ngs']
    with tempfile.TemporaryDirectory() as workdir:
      configs = ablation.cell_configs(tiny_config(), conditions, methods, 1, workdir)
    split = data.load(configs['defaults', 'student']).split('train')
    same = ablation.same_as_defaults(configs, split)
    expected = {
      ('authors_update', 'student'),
      ('authors_update', 'distn'),
      ('authors_update', 'adim_ngs'),  # its estimator is forced: REINFORCE
      ('distn_mse', 'student'),
      ('distn_mse', 'ngan'),
      ('distn_mse', 'adim_ngs'),
      ('non_saturating', 'student'),
      ('non_saturating', 'distn'),
    }  # divide_by_batch divides every method's (pre)training cross-entropy
    self.assertEqual(same, expected)

  def test_an_unchanged_cell_trains_what_the_defaults_train(self):
    runs = []
    for condition in ('defaults', 'distn_mse'):
      c = sweeps.with_overrides(tiny_config('student', num_seeds=1), mnist_authors.CONDITIONS[condition])
      with tempfile.TemporaryDirectory() as workdir:
        runs.append(train.train_and_evaluate(config_lib.validate(c), workdir))
    first, second = (r['per_seed'][0] for r in runs)
    self.assertEqual(without_timings(first['history']), without_timings(second['history']))
    self.assertEqual(first['final'], second['final'])

  def test_unknown_condition_is_refused_with_the_valid_ones(self):
    with self.assertRaisesRegex(config_lib.ConfigError, 'authors_updates not one of defaults, authors, authors_update'):
      ablation.cell_configs(tiny_config(), ['authors_updates'], ['adim'], 1, '/nonexistent')
    with self.assertRaisesRegex(
      config_lib.ConfigError, r'--methods: teacher not one of student, distn, .*with a student'
    ):
      ablation.cell_configs(tiny_config(), ['defaults'], ['teacher'], 1, '/nonexistent')  # the table is the student's


class TableTest(absltest.TestCase):
  def _results(self, accuracies: dict) -> dict:
    return {
      key: {
        'num_seeds': len(v),
        'final': {'student': {'test_accuracy': sum(v) / len(v), 'last_test_accuracy': 0.1}},  # stds left out: 0
        'per_seed': [{'final': {'student': {'test_accuracy': a}}} for a in v],
      }
      for key, v in accuracies.items()
    }

  def test_margins_over_the_best_baseline(self):
    got = ablation.margins({'student': [0.9, 0.9], 'mimic': [0.80, 0.82], 'distn': [0.84, 0.86], 'adim': [0.88, 0.87]})
    self.assertEqual(got['best_baseline'], 'distn')  # STUDENT is not a baseline of distillation
    self.assertAlmostEqual(got['adim']['margin'], 100 * (0.875 - 0.85))
    self.assertAlmostEqual(got['adim']['spread'], 100 * 0.0141421356, places=5)  # DISTN's std, the larger
    self.assertNotIn('adib', got)

  def test_markdown_marks_unchanged_and_missing_cells(self):
    results = self._results({('defaults', 'distn'): [0.8, 0.8], ('defaults', 'adim'): [0.9, 0.8], ('x', 'adim'): [0.7]})
    table = ablation.markdown(results, {('x', 'distn')}, ['defaults', 'x', 'y'], ['distn', 'adim'])
    self.assertIn('| distn | 80.00 ± 0.00 (2) | = | not run |', table)
    self.assertIn('| adim | 85.00 ± 0.00 (2) | 70.00 (1) | not run |', table)  # one seed: no spread
    # Under x, DISTN's figure is the defaults' (=): ADIM 70 against it.
    self.assertIn('vs DISTN: ADIM +5.00 (± 7.07) | vs DISTN: ADIM -10.00 (± nan) | — |', table)
    alone = ablation.markdown({}, {('x', 'adim')}, ['defaults', 'x'], ['adim'])
    self.assertIn('| adim | not run | = (defaults not run) |', alone)
    last = table.split('of the last round')[1]
    self.assertIn('| adim | 10.00 ± 0.00 (2) | 10.00 (1) | not run |', last)

  def test_markdown_puts_the_papers_figure_beside_each_method(self):
    results = self._results({('defaults', 'distn'): [0.8, 0.8], ('defaults', 'adim'): [0.9, 0.8]})
    paper = {'distn': '68.34 ± 0.06', 'adim': '78.70 ± 0.11'}
    table = ablation.markdown(results, set(), ['defaults'], ['distn', 'adim'], paper)
    self.assertIn('| method | defaults | paper |', table)
    self.assertIn('| adim | 85.00 ± 0.00 (2) | 78.70 ± 0.11 |', table)


class BesideTest(absltest.TestCase):
  def test_another_workdirs_finished_cells_are_drawn_under_its_label(self):
    other = self.create_tempdir().full_path
    os.makedirs(os.path.join(other, 'defaults', 'adim'))
    workdir_lib.write_json(os.path.join(other, 'defaults', 'adim', 'results.json'), {'method': 'adim', 'at': 'cpu'})
    os.makedirs(os.path.join(other, 'authors', 'adim'))  # unfinished: no results.json
    others = ablation.beside([f'cpu={other}'])
    self.assertEqual(others, {'cpu': other})
    here = {('defaults', 'adim'): {'at': 'paper'}, ('authors', 'adim'): {'at': 'paper, authors'}}
    runs = ablation.figure_runs(here, others, ['defaults', 'authors'], 'adim', 'paper')
    want = {'paper: defaults': 'paper', 'paper: authors': 'paper, authors', 'cpu: defaults': 'cpu'}
    self.assertEqual({k: r['at'] for k, r in runs.items()}, want)
    self.assertEqual(list(ablation.figure_runs(here, {}, ['defaults'], 'adim')), ['defaults'])

  def test_a_bad_item_is_refused_naming_it(self):
    with self.assertRaisesRegex(config_lib.ConfigError, r"--beside='cpu': give LABEL=DIR"):
      ablation.beside(['cpu'])
    with self.assertRaisesRegex(config_lib.ConfigError, r"'/nonexistent/x' is not a directory"):
      ablation.beside(['cpu=/nonexistent/x'])


class WorkdirTest(absltest.TestCase):
  def test_the_table_covers_every_stored_cell_in_registry_order(self):
    workdir = self.create_tempdir().full_path
    for cell in ('authors/adib', 'non_saturating/ngan'):
      os.makedirs(os.path.join(workdir, cell))
    conditions, methods = ablation.in_table(workdir, ['authors_update'], ['adim'])
    self.assertEqual(conditions, ['defaults', 'authors', 'authors_update', 'non_saturating'])
    self.assertEqual(methods, ['ngan', 'adib', 'adim'])
    self.assertEqual(
      ablation.in_table(self.create_tempdir().full_path, ['authors'], ['adim']), (['defaults', 'authors'], ['adim'])
    )

  def test_a_call_without_figure_flags_keeps_the_last_ones(self):
    workdir, cpu = self.create_tempdir().full_path, self.create_tempdir().full_path
    self.assertEqual(ablation.figure_settings(workdir, '', []), ('', {}))  # nothing kept yet
    kept = {'label': 'paper', 'beside': {'cpu': cpu, 'gone': os.path.join(cpu, 'removed')}}
    workdir_lib.write_json(os.path.join(workdir, 'ablation.json'), {'figures': kept})
    with self.assertLogs(level='WARNING') as logs:  # a removed one is left out, saying so
      self.assertEqual(ablation.figure_settings(workdir, '', []), ('paper', {'cpu': cpu}))
    self.assertIn('gone=', logs.output[0])
    self.assertEqual(ablation.figure_settings(workdir, 'new', []), ('new', {}))  # given flags win
    self.assertEqual(ablation.figure_settings(workdir, '', [f'x={cpu}']), ('', {'x': cpu}))
    for damaged in ('{"figures": {"beside": [1]}}', 'not json'):  # rewritten by the call: a warning, nothing kept
      with open(os.path.join(workdir, 'ablation.json'), 'w') as f:
        f.write(damaged)
      with self.assertLogs(level='WARNING'):
        self.assertEqual(ablation.figure_settings(workdir, '', []), ('', {}))

  def test_a_call_for_one_more_cell_keeps_the_others_in_the_table(self):
    workdir, cpu = self.create_tempdir().full_path, self.create_tempdir().full_path
    run = lambda *flags: subprocess.run(
      [sys.executable, '-m', 'experiments.ablation', f'--workdir={workdir}', '--num_seeds=1', '--config.n_train=20',
       *TINY, *flags], cwd=REPO, capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    typo = subprocess.run(
      [sys.executable, '-m', 'experiments.ablation', f'--workdir={workdir}', '--methods=adimm', '--table_only'],
      check=False, cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    self.assertEqual(typo.returncode, 1)
    self.assertIn('--methods: adimm not one of student', typo.stderr)
    run('--conditions=defaults', '--methods=student', '--label=here', f'--beside=cpu={cpu}')
    run('--conditions=authors', '--methods=distn', '--table_only')  # nothing trained: the student's row stays
    with open(os.path.join(workdir, 'ablation.md')) as f:
      table = f.read().split('of the last round')[0]
    self.assertIn('| method | defaults | authors |', table)
    self.assertRegex(table, r'\| student \| \d+\.\d\d \(1\) \| not run \|')
    self.assertIn('| distn | not run | not run |', table)
    with open(os.path.join(workdir, 'ablation.json')) as f:
      self.assertEqual(json.load(f)['figures'], {'label': 'here', 'beside': {'cpu': cpu}})


class AuthorsConfigTest(absltest.TestCase):
  def test_every_difference_on_and_the_schedules(self):
    c = config_lib.validate(mnist_authors.get_config())
    self.assertEqual(c.game.estimator, 'authors')
    self.assertEqual((c.game.distill_terms.hinton, c.game.distill_terms.noisy), ('hinton_mse', 'noisy_multiplicative'))
    self.assertTrue(c.game.divide_by_batch)
    self.assertEqual((c.k_d, c.rounds), (20, 40))  # the CPU schedule
    paper = config_lib.validate(mnist_authors.get_config('100'))
    self.assertEqual((paper.k_d, paper.k_s, paper.rounds), (200, 100, 100))  # 20 and 10 passes of 10 updates
    self.assertEqual(paper.game.estimator, 'authors')
    self.assertEqual(set(mnist_authors.AUTHORS), {f for d in mnist_authors.DIFFERENCES.values() for f in d})
    with self.assertRaisesRegex(ValueError, "give 'cpu' or a training size"):
      mnist_authors.get_config('gpu')


if __name__ == '__main__':
  absltest.main()
