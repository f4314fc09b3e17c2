"""Sweeps: members equal their runs alone, compile once, static fields refused, the entrypoint's chunks."""

import json
import os
import subprocess
import sys

from absl.testing import absltest
import numpy as np

from adjax import config as config_lib
from adjax import game as game_lib
from adjax import rounds
from adjax import sweeps
from adjax import train
from adjax.run import setup as setup_lib
from tests.test_table1 import TINY
from tests.test_train import assert_member_equals_alone
from tests.test_train import tiny_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POINTS = [
  {'game.nu': 0.3, 'student.learning_rate': 2e-3, 'tau.tau0': 3.0},
  {'game.omega_r': 0.6, 'game.omega_s': 0.3, 'game.omega_t': 0.1, 'discriminator.weight_decay': 0.0},
]


class SweepTest(absltest.TestCase):
  def test_members_equal_their_runs_alone(self):
    together = train.train_and_evaluate(tiny_config('adim', num_seeds=2), self.create_tempdir().full_path, POINTS)
    members = together['per_seed']
    self.assertEqual([(m['seed'], m['overrides']) for m in members], [(s, p) for p in POINTS for s in (0, 1)])
    self.assertEqual([m['history'][1]['tau'] for m in members], [3.0, 3.0, 10.0, 10.0])  # round 1: τ = τ0
    # The last member differs from the first in its point and its seed.
    alone_config = sweeps.with_overrides(tiny_config('adim', seed=members[3]['seed']), POINTS[1])
    assert_member_equals_alone(
      self, members[3], train.train_and_evaluate(alone_config, self.create_tempdir().full_path)
    )
    first = [m['final']['student']['test_accuracy'] for m in members[:2]]
    self.assertAlmostEqual(together['sweep'][0]['final']['student']['test_accuracy'], float(np.mean(first)))
    self.assertEqual([s['overrides'] for s in together['sweep']], POINTS)

  def test_swept_values_share_one_compiled_program(self):
    def game(**overrides):
      return game_lib.build(sweeps.with_overrides(config_lib.validate(tiny_config('adim')), overrides), 10)

    a, b = game(**{'game.nu': 0.1, 'teacher.learning_rate': 1.0}), game(**{'game.nu': 5.0, 'tau.tau0': 2.0})
    self.assertEqual(a, b)
    self.assertIs(rounds.compile_fns(a), rounds.compile_fns(b))
    self.assertNotEqual(a, game(**{'game.kd_temperature': 2.0}))  # not sweepable: another program
    self.assertNotEqual(a, game(**{'student.model': 'lenet'}))

  def test_static_or_invalid_sweeps_are_refused_before_anything_is_written(self):
    with self.assertRaisesRegex(config_lib.ConfigError, r'student.model cannot be swept .* sweepable fields: game'):
      sweeps.parse_sweeps(['student.model=1,2'])
    workdir = os.path.join(self.create_tempdir().full_path, 'run')
    with self.assertRaisesRegex(config_lib.ConfigError, r'batch_size cannot be swept in one program'):
      train.train_and_evaluate(tiny_config('adim'), workdir, [{'batch_size': 20}])
    with self.assertRaisesRegex(config_lib.ConfigError, r'needs game.omega_r \+ game.omega_s \+ game.omega_t = 1'):
      train.train_and_evaluate(
        tiny_config('adim'), workdir, [{'game.omega_r': 0.5, 'game.omega_s': 0.9, 'game.omega_t': 0.1}]
      )
    with self.assertRaisesRegex(config_lib.ConfigError, r'game.nu_ is not a config field; did you mean game.nu\?'):
      train.train_and_evaluate(tiny_config('adim'), workdir, [{'game.nu_': 0.5}])
    self.assertFalse(os.path.exists(workdir))
    # A field the method does not read would give identical members: refused, not reported as a flat curve.
    for method, field in (('adib', 'game.omega_r'), ('ngan', 'game.nu'), ('student', 'teacher.learning_rate'),
                          ('codis', 'tau.tau0')):  # fmt: skip
      with self.assertRaisesRegex(config_lib.ConfigError, rf'{field} is not read by method={method}'):
        train.train_and_evaluate(tiny_config(method), workdir, [{field: 0.5}])
    self.assertFalse(os.path.exists(workdir))
    with self.assertRaisesRegex(config_lib.ConfigError, r'log: both ends > 0'):
      sweeps.parse_sweeps(['game.nu=log:0:10:3'])

  def test_from_python_the_unswept_omegas_share_the_rest_as_from_the_command_line(self):
    checked = setup_lib.check(tiny_config('adim'), [{'game.omega_s': 0.4}], {}, {})
    self.assertEqual(checked.sweep, [{'game.omega_s': 0.4, 'game.omega_r': 0.3, 'game.omega_t': 0.3}])
    self.assertEqual([c.game.omega_t for c in checked.configs], [0.3])

  def test_value_specs_and_omega_completion(self):
    self.assertEqual(sweeps.parse_values('f', '0,0.5,2'), [0.0, 0.5, 2.0])
    np.testing.assert_allclose(sweeps.parse_values('f', 'lin:0:1:5'), [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(sweeps.parse_values('f', 'log:1e-3:1e3:7'), 10.0 ** np.arange(-3, 4))
    points = sweeps.sweep_points({'game.omega_s': [0.2], 'game.nu': [1.0, 2.0]}, 'grid', 'adim')
    self.assertEqual(len(points), 2)
    self.assertEqual(points[0][1], {'game.omega_s': 0.2, 'game.nu': 1.0, 'game.omega_r': 0.4, 'game.omega_t': 0.4})
    self.assertEqual(sweeps.sweep_points({'game.omega_t': [0.3]}, 'axes', 'adib')[0][1]['game.omega_s'], 0.7)
    self.assertEqual(sweeps.chunks([1, 2, 3], 2), [([1, 2], 2), ([3, 3], 1)])
    self.assertEqual([real for _, real in sweeps.chunks(list(range(17)), 16)], [9, 8])  # balanced, not 16 + 1
    self.assertEqual({len(group) for group, _ in sweeps.chunks(list(range(17)), 16)}, {9})

  def test_entrypoint_chunks_table_plots_and_reuse(self):
    workdir = self.create_tempdir().full_path
    command = [
      sys.executable, '-m', 'experiments.sweep', f'--workdir={workdir}', '--config.method=adim', '--n_train=20',
      '--sweep=game.nu=0.1,1,3e38', '--chunk=2', *TINY,
    ]  # fmt: skip
    subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True, timeout=600)
    with open(os.path.join(workdir, 'sweep.json')) as f:
      rows = json.load(f)['rows']
    self.assertEqual([r['overrides']['game.nu'] for r in rows], [0.1, 1.0, 3e38])
    # nu = 3e38 overflows the student's loss in round 1: its chunk (all diverged) finishes, its point has no figures.
    self.assertTrue(all('student_test_accuracy' in r for r in rows[:2]))
    self.assertNotIn('student_test_accuracy', rows[2])
    self.assertEqual(rows[2]['diverged'], [{'seed': 0, 'round': 1}])
    with open(os.path.join(workdir, 'sweep.md')) as f:
      self.assertIn('game.nu=3e+38 (diverged: seed 0 in round 1) | — | — | — |', f.read())
    self.assertEqual(sorted(os.listdir(os.path.join(workdir, 'n20'))), ['chunk_0', 'chunk_1'])  # 2 + 1 (padded)
    self.assertTrue(os.path.exists(os.path.join(workdir, 'sweep_game_nu.png')))
    results = os.path.join(workdir, 'n20', 'chunk_1', 'results.json')
    stamp = os.path.getmtime(results)
    subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True, timeout=600)
    self.assertEqual(os.path.getmtime(results), stamp)  # finished chunks are reused
    summary = os.path.join(workdir, 'sweep.json')
    stamp = os.path.getmtime(summary)
    other = [a.replace('0.1,1,3e38', '0.5') for a in command]  # another sweep into this one's directory: refused
    failed = subprocess.run(other, check=False, cwd=REPO, capture_output=True, text=True, timeout=600)
    self.assertEqual(failed.returncode, 1, failed.stderr)
    self.assertIn('holds the finished summary of another sweep (sweep.json differs in specs)', failed.stderr)
    self.assertEqual(os.path.getmtime(summary), stamp)


if __name__ == '__main__':
  absltest.main()
