"""No silent wrong result: damaged checkpoints, shrinking runs, non-finite rounds, diverged members, busy workdirs."""

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

from absl.testing import absltest
from absl.testing import parameterized
import jax
import numpy as np

from adjax import checkpoint
from adjax import config as config_lib
from adjax import game as game_lib
from adjax import train
from adjax import workdir as workdir_lib
from adjax.run import members as members_lib
from tests.test_train import assert_member_equals_alone
from tests.test_train import tiny_config
from tests.test_train import without_timings

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _same_run(test, a: dict, b: dict) -> None:
  test.assertEqual(without_timings(a['history']), without_timings(b['history']))
  test.assertEqual(a['final'], b['final'])


def _flip_bytes(path: str, count: int = 4) -> None:
  with open(path, 'r+b') as f:
    content = bytearray(f.read())
    for i in range(count):
      content[len(content) // 2 + 7 * i] ^= 0xFF
    f.seek(0)
    f.write(content)


def _largest_array_file(step_dir: str) -> str:
  files = [f for f in glob.glob(os.path.join(step_dir, 'arrays', '**', '*'), recursive=True) if os.path.isfile(f)]
  return max(files, key=os.path.getsize)


def _meta_file(step_dir: str) -> str:
  return next(f for f in glob.glob(os.path.join(step_dir, 'meta', '*')) if os.path.isfile(f))


def _edit_meta(step_dir: str) -> None:
  """A plausible edit that keeps valid JSON: one history figure changed."""
  path = _meta_file(step_dir)
  with open(path) as f:
    meta = json.load(f)
  meta['history'][0][-1]['student_val_accuracy'] += 0.01
  with open(path, 'w') as f:
    json.dump(meta, f)


def _copy(test: absltest.TestCase, workdir: str, *remove: str) -> str:
  """A copy of ``workdir`` in a temporary directory of ``test``, without the files or folders named ``remove``."""
  copy = os.path.join(test.create_tempdir().full_path, 'run')
  shutil.copytree(workdir, copy)
  for name in remove:
    (shutil.rmtree if os.path.isdir(os.path.join(copy, name)) else os.remove)(os.path.join(copy, name))
  return copy


class CheckpointIntegrityTest(parameterized.TestCase):
  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.finished = tempfile.mkdtemp()
    cls.addClassCleanup(shutil.rmtree, cls.finished, ignore_errors=True)
    cls.whole = train.train_and_evaluate(tiny_config('adim', rounds=3), cls.finished)

  def _unfinished_copy(self) -> str:
    """The finished run's workdir without its results.json (else they are returned as stored)."""
    return _copy(self, self.finished, 'results.json')

  @parameterized.named_parameters(
    ('flipped_array_bytes', lambda step_dir: _flip_bytes(_largest_array_file(step_dir))),
    ('edited_metadata', _edit_meta),
    ('truncated_array_file', lambda step_dir: os.truncate(_largest_array_file(step_dir), 10)),
  )
  def test_damaged_latest_checkpoint_falls_back_to_the_one_before(self, damage):
    workdir = self._unfinished_copy()
    damage(os.path.join(workdir, 'checkpoints', '3'))
    with self.assertLogs(level='WARNING') as logs:
      resumed = train.train_and_evaluate(tiny_config('adim', rounds=3), workdir)
    self.assertTrue(any('checkpoint of round 3 is damaged' in line for line in logs.output), logs.output)
    _same_run(self, resumed, self.whole)  # round 3 replayed from round 2's checkpoint, bit-identically
    self.assertEqual(os.listdir(os.path.join(workdir, 'damaged_checkpoints')), ['3'])  # kept for inspection

  def test_every_checkpoint_damaged_starts_over(self):
    workdir = self._unfinished_copy()
    for step in ('2', '3'):
      _flip_bytes(_largest_array_file(os.path.join(workdir, 'checkpoints', step)))
    with self.assertLogs(level='WARNING') as logs:
      again = train.train_and_evaluate(tiny_config('adim', rounds=3), workdir)
    self.assertLen([line for line in logs.output if 'is damaged' in line], 2)
    _same_run(self, again, self.whole)
    self.assertEqual(sorted(os.listdir(os.path.join(workdir, 'damaged_checkpoints'))), ['2', '3'])

  def test_damaged_teacher_cache_is_trained_again(self):
    cache = self.create_tempdir().full_path
    first = train.train_and_evaluate(tiny_config('distn', teacher_cache=cache), self.create_tempdir().full_path)
    (path,) = [os.path.join(cache, d) for d in os.listdir(cache)]
    _flip_bytes(max((f for f in glob.glob(os.path.join(path, '**', '*'), recursive=True) if os.path.isfile(f)),
                    key=os.path.getsize))  # fmt: skip
    with self.assertLogs(level='WARNING') as logs:
      second = train.train_and_evaluate(tiny_config('distn', teacher_cache=cache), self.create_tempdir().full_path)
    self.assertTrue(any('cached teacher unusable' in line for line in logs.output), logs.output)
    _same_run(self, second, first)
    self.assertTrue(os.path.isdir(path + '.damaged'))


class BackgroundCheckpointTest(absltest.TestCase):
  def test_a_background_save_writes_what_was_passed_though_the_caller_changes_it(self):
    directory = self.create_tempdir().full_path
    arrays = {'host': np.arange(6.0), 'device': jax.numpy.arange(4)}
    meta = {'history': [1]}
    ckpts = checkpoint.Checkpoints(directory, background=True)
    ckpts.save(0, arrays, meta)
    arrays['host'][:] = -1  # as a donated buffer or the next round's meta would be
    meta['history'].append(2)
    ckpts.wait()
    restored, restored_meta = ckpts.restore(0, {'host': np.zeros(6), 'device': np.zeros(4, np.int32)})
    ckpts.close()
    np.testing.assert_array_equal(restored['host'], np.arange(6.0))
    np.testing.assert_array_equal(restored['device'], np.arange(4))
    self.assertEqual(restored_meta, {'history': [1]})

  def test_a_failed_background_save_is_raised_at_the_next_save_and_at_close(self):
    directory = self.create_tempdir().full_path
    ckpts = checkpoint.Checkpoints(directory, background=True)
    ckpts.save(0, {'a': np.zeros(3)}, {'ok': float('nan')})  # not JSON: fails in the writer thread
    with self.assertRaises(ValueError):
      ckpts.save(1, {'a': np.zeros(3)}, {})
    ckpts.save(2, {'a': np.zeros(3)}, {'ok': float('inf')})
    with self.assertRaises(ValueError):
      ckpts.close()


class RunIdentityTest(absltest.TestCase):
  """A workdir's run is what its checkpoints and results record: config.json is a copy for people."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.finished = tempfile.mkdtemp()
    cls.addClassCleanup(shutil.rmtree, cls.finished, ignore_errors=True)
    cls.results = train.train_and_evaluate(tiny_config('student', rounds=2), cls.finished)

  def _copy(self, *remove: str) -> str:
    return _copy(self, self.finished, *remove)

  def _refused(self, workdir: str, config, pattern: str) -> None:
    before = {f: os.path.getmtime(f) for f in glob.glob(os.path.join(workdir, '**'), recursive=True)}
    with self.assertRaisesRegex(config_lib.ConfigError, pattern):
      train.train_and_evaluate(config, workdir)
    self.assertEqual({f: os.path.getmtime(f) for f in glob.glob(os.path.join(workdir, '**'), recursive=True)}, before)

  def test_fewer_rounds_than_the_workdir_holds_is_refused_and_nothing_changes(self):
    self._refused(self._copy(), tiny_config('student', rounds=1), r'rounds=1 but workdir=.* already holds 2 rounds')
    self._refused(  # its checkpoints deleted to free disk: the finished results are not replaced by a shorter run
      self._copy('checkpoints'), tiny_config('student', rounds=1), r'holds the finished results of this run at rounds=2'
    )

  def test_without_config_json_another_config_is_refused_by_what_the_checkpoints_record(self):
    other = tiny_config('student', rounds=2)
    other.student.learning_rate = 0.5
    restart = r'move its checkpoints/, results.json and config.json out of it'
    self._refused(self._copy('config.json', 'results.json'), other, rf'its checkpoints/2 differs .*0\.5.*{restart}')
    # config.json edited to the new command's config: the checkpoints still say which run they are of.
    workdir = self._copy('results.json')
    path = os.path.join(workdir, 'config.json')
    with open(path) as f:
      edited = json.load(f)
    edited['n_train'] = 60
    with open(path, 'w') as f:
      json.dump(edited, f)
    self._refused(workdir, tiny_config('student', rounds=2, n_train=60), r'its checkpoints/2 differs in n_train')
    # Only finished results left: another config is refused by them.
    self._refused(self._copy('config.json', 'checkpoints'), other, r'its results.json differs in student')

  def test_a_finished_run_is_returned_as_stored_and_said_so(self):
    workdir = self._copy('checkpoints', 'config.json')
    with self.assertLogs(level='INFO') as logs:
      again = train.train_and_evaluate(tiny_config('student', rounds=2), workdir)
    self.assertEqual(again, self.results)
    self.assertTrue(any('holds the finished results of this run' in line for line in logs.output), logs.output)
    self.assertFalse(os.path.exists(os.path.join(workdir, 'checkpoints')))  # nothing was trained again


class NonFiniteTest(absltest.TestCase):
  def test_nan_after_pretraining_with_no_rounds_fails_and_writes_no_results(self):
    c = tiny_config('adim', rounds=0)
    c.teacher.learning_rate = 1e30  # finite, but the teacher's parameters overflow in pretraining
    workdir = self.create_tempdir().full_path
    with self.assertRaisesRegex(FloatingPointError, r'non-finite metrics in round 0.*teacher_loss.*nothing was saved'):
      train.train_and_evaluate(c, workdir)
    self.assertFalse(os.path.exists(os.path.join(workdir, 'results.json')))
    self.assertEqual(os.listdir(os.path.join(workdir, 'checkpoints')), [])

  def test_results_json_is_strict(self):
    path = os.path.join(self.create_tempdir().full_path, 'r.json')
    with self.assertRaises(ValueError):
      workdir_lib.write_json(path, {'loss': float('nan')})
    self.assertFalse(os.path.exists(path))

  def test_a_diverging_member_is_frozen_and_the_others_finish(self):
    workdir = self.create_tempdir().full_path
    # nu only weighs a round's distillation term: pretraining is fine, round 1's student loss overflows.
    sweep = [{'game.nu': 1.0}, {'game.nu': 3e38}]
    with self.assertLogs(level='WARNING') as logs:
      results = train.train_and_evaluate(tiny_config('adim', rounds=2), workdir, sweep)
    self.assertTrue(any('game.nu=3e+38/ diverged in round 1' in line for line in logs.output), logs.output)
    healthy, diverged = results['per_seed']
    self.assertEqual((diverged['diverged_round'], diverged['final'], len(diverged['history'])), (1, None, 1))
    self.assertEqual(results['sweep'][1]['diverged'], [{'seed': 0, 'round': 1}])
    self.assertIsNone(results['sweep'][1]['final'])
    alone = train.train_and_evaluate(tiny_config('adim', rounds=2), self.create_tempdir().full_path)
    assert_member_equals_alone(self, healthy, alone)
    # Frozen: the diverged member's state after round 2 is its state after round 0; the healthy one moved.
    c = config_lib.validate(tiny_config('adim', rounds=2))
    game = game_lib.build(c, 10)
    state = members_lib.init_members(game, [c, c], {'x': np.zeros((1, 28, 28, 1), np.float32)})
    like = {'state': state, 'best': {p: state[p]['params'] for p in ('student', 'teacher')}}
    ckpts = checkpoint.Checkpoints(os.path.join(workdir, 'checkpoints'))
    after = [jax.device_get(ckpts.restore(step, like)[0]['state']['student']['params']) for step in (1, 2)]
    ckpts.close()
    frozen = jax.tree.map(lambda a, b: np.array_equal(a[1], b[1]), *after)
    moved = jax.tree.map(lambda a, b: not np.array_equal(a[0], b[0]), *after)
    self.assertTrue(all(jax.tree.leaves(frozen)) and all(jax.tree.leaves(moved)))
    self.assertTrue(all(np.isfinite(a).all() for a in jax.tree.leaves(after[1])))

  def test_a_single_diverging_run_stops_and_keeps_its_last_good_checkpoint(self):
    workdir = self.create_tempdir().full_path
    c = tiny_config('adim', rounds=2)
    c.game.nu = 3e38
    with self.assertRaisesRegex(FloatingPointError, r'round 1.*checkpoint of round 0 is kept'):
      train.train_and_evaluate(c, workdir)
    self.assertEqual(os.listdir(os.path.join(workdir, 'checkpoints')), ['0'])
    self.assertFalse(os.path.exists(os.path.join(workdir, 'results.json')))


class WorkdirTest(absltest.TestCase):
  def test_a_second_writer_is_refused_with_the_holders_pid(self):
    workdir = self.create_tempdir().full_path
    with workdir_lib.exclusive(workdir):
      with self.assertRaisesRegex(config_lib.ConfigError, rf'in use by another adjax run \(pid {os.getpid()}\)'):
        train.train_and_evaluate(tiny_config('student', rounds=1), workdir)
    self.assertFalse(os.path.exists(os.path.join(workdir, 'config.json')))
    train.train_and_evaluate(tiny_config('student', rounds=1), workdir)  # released: the run goes ahead

  def test_lock_held_by_another_process_and_released_when_it_dies(self):
    workdir = self.create_tempdir().full_path
    script = f'from adjax import workdir as w\nwith w.exclusive({workdir!r}):\n  print("held", flush=True)\n  input()'
    holder = subprocess.Popen(
      [sys.executable, '-c', script], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
      self.assertEqual(holder.stdout.readline().strip(), 'held')
      with self.assertRaisesRegex(config_lib.ConfigError, rf'pid {holder.pid}\)'):
        with workdir_lib.exclusive(workdir):
          pass
    finally:
      holder.kill()
      holder.wait()
    with workdir_lib.exclusive(workdir):  # the kernel released the dead holder's lock
      pass

  def test_a_file_or_an_unreadable_config_json_is_refused_in_one_line(self):
    root = self.create_tempdir()
    path = root.create_file('results.txt', content='mine').full_path
    with self.assertRaisesRegex(config_lib.ConfigError, r'is a file, not a directory'):
      train.train_and_evaluate(tiny_config('student', rounds=1), path)
    workdir = self.create_tempdir()
    workdir.create_file('config.json', content='')
    with self.assertRaisesRegex(config_lib.ConfigError, r'holds an unreadable config.json \(JSONDecodeError'):
      train.train_and_evaluate(tiny_config('student', rounds=1), workdir.full_path)
    self.assertEqual(os.listdir(workdir.full_path), ['config.json'])

  def test_a_config_typo_is_one_line_and_exit_status_2(self):
    workdir = os.path.join(self.create_tempdir().full_path, 'run')
    proc = subprocess.run(
      [sys.executable, '-m', 'experiments.main', f'--workdir={workdir}', '--config.methd=adim'],
      cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    self.assertEqual(proc.returncode, 2, proc.stderr)
    self.assertNotIn('Traceback', proc.stderr)
    self.assertIn("--config.methd: the config has no field 'methd'; did you mean 'method'?", proc.stderr)
    self.assertFalse(os.path.exists(workdir))


if __name__ == '__main__':
  absltest.main()
