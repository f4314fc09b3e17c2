"""The Table 1 entrypoint on a tiny grid: cells, reuse of finished cells, the table and the curves."""

import json
import os
import subprocess
import sys

from absl.testing import absltest

from experiments import cells

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = [
  '--config.rounds=1',
  '--config.n_val=100',
  '--config.k_d=1',
  '--config.k_t=1',
  '--config.k_s=1',
  '--config.student.model=mlp',
  '--config.teacher.model=mlp',
  '--config.discriminator.model=mlp',
  '--config.pretrain.student=2',
  '--config.pretrain.teacher=2',
  '--config.pretrain.discriminator=2',
  '--config.pretrain.frozen_teacher=2',
  '--config.augment.rotation=0',
  '--config.augment.shift=0',
  '--config.augment.zoom=0',
  '--config.diagnostics=0',
]


class Table1Test(absltest.TestCase):
  def test_grid_table_curves_and_reuse(self):
    workdir = self.create_tempdir().full_path
    command = [
      sys.executable, '-m', 'experiments.table1', f'--workdir={workdir}', '--n_train=20,30',
      '--methods=student,adim', '--num_seeds=2,1', *TINY, '--rounds=1,2',
    ]  # fmt: skip
    first = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True, timeout=600)
    with open(os.path.join(workdir, 'table1.md')) as f:
      table = f.read()
    self.assertIn('| adim |', table)
    self.assertTrue(table.split('| adim |')[1].splitlines()[0].strip().endswith('| — |'))  # no paper figure at n=30
    self.assertIn('| student |', table)
    self.assertEqual(table.count('(2)'), 2)  # 2 methods, 2 seeds each at n=20
    self.assertEqual(table.count('(1)'), 2)  # and 1 seed at n=30
    for n, rounds in ((20, 1), (30, 2)):
      self.assertTrue(os.path.exists(os.path.join(workdir, f'fig4_n{n}.png')))
      with open(os.path.join(workdir, f'n{n}', 'adim', 'results.json')) as f:
        self.assertEqual(len(json.load(f)['history']), rounds + 1)  # round 0 (pretrained) and each round
    stamp = os.path.getmtime(os.path.join(workdir, 'n20', 'adim', 'results.json'))
    second = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True, timeout=600)
    self.assertEqual(os.path.getmtime(os.path.join(workdir, 'n20', 'adim', 'results.json')), stamp)  # reused
    self.assertEqual(first.stdout.split('Student test')[1], second.stdout.split('Student test')[1])

  def test_late_gain_compares_the_last_two_quarters_of_the_rounds(self):
    # Round 0 (pretraining) is left out; 9 rounds give quarters of 2: rounds 6-7 (0.70, 0.74) and 8-9 (0.80, 0.90).
    val = [0.1, 0.5, 0.6, 0.6, 0.65, 0.7, 0.70, 0.74, 0.80, 0.90]
    history = [{'round': r, 'student_val_accuracy': v} for r, v in enumerate(val)]
    self.assertAlmostEqual(cells.late_gain(history), 100 * ((0.80 + 0.90) - (0.70 + 0.74)) / 2)
    flat = [{'round': r, 'student_val_accuracy': 0.9} for r in range(41)]
    self.assertAlmostEqual(cells.late_gain(flat), 0.0)
    self.assertIsNone(cells.late_gain(history[:4]))  # 3 rounds: no quarter

  def test_a_bad_cell_config_stops_before_any_run(self):
    workdir = self.create_tempdir().full_path
    for flags, message in [
      (['--n_train=100,6000'], 'n_train=6000 needs 600 examples of class'),
      (['--n_train=100,200', '--num_seeds=3,2,1'], '--num_seeds=3,2,1 needs one count or one per --n_train size'),
      (['--n_train=100,200', '--rounds=40,x'], '--rounds=40,x needs one count or one per --n_train size'),
    ]:
      proc = subprocess.run(
        [sys.executable, '-m', 'experiments.table1', f'--workdir={workdir}', '--methods=student', *flags],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
      )  # fmt: skip
      self.assertNotEqual(proc.returncode, 0)
      self.assertIn(message, proc.stderr)
      self.assertEqual(os.listdir(workdir), [])


if __name__ == '__main__':
  absltest.main()
