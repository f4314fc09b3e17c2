"""Members over devices and processes: sharded runs equal unsharded ones, one copy of the data, bad meshes refused.

Runs that need several devices or processes run in subprocesses (JAX fixes
its device count when it starts): ``tests/sharded_runs.py`` on 4 simulated
CPU devices, and ``experiments.main`` as 2 processes x 2 CPU devices joined
by ``jax.distributed`` (gloo).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

from absl.testing import absltest
import numpy as np
import pytest

from adjax import config as config_lib
from adjax import parallel
from adjax import train
from adjax.run import identity as identity_lib
from tests.test_train import assert_member_equals_alone
from tests.test_train import tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# tiny_config's fields as flags: a run of them is compared with one of tiny_config's.
TINY_FLAGS = [
  '--config.n_train=50', '--config.n_val=100', '--config.k_d=2', '--config.k_t=2', '--config.k_s=2',
  '--config.pretrain.student=3', '--config.pretrain.teacher=3', '--config.pretrain.discriminator=3',
  '--config.student.model=mlp', '--config.teacher.model=mlp', '--config.discriminator.model=mlp',
  '--config.augment.rotation=0', '--config.augment.shift=0', '--config.augment.zoom=0', '--config.num_seeds=3',
  '--config.diagnostics=0',
]  # fmt: skip


def _env(devices: int) -> dict:
  return {**os.environ, 'JAX_NUM_CPU_DEVICES': str(devices), 'PYTHONPATH': ROOT}


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _assert_runs_equal(test, a: dict, b: dict) -> None:
  test.assertEqual(len(a['per_seed']), len(b['per_seed']))
  for member_a, member_b in zip(a['per_seed'], b['per_seed'], strict=True):
    test.assertEqual((member_a['seed'], member_a.get('overrides')), (member_b['seed'], member_b.get('overrides')))
    assert_member_equals_alone(test, member_a, member_b)


class ShardedTest(absltest.TestCase):
  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    out = os.path.join(absltest.get_default_test_tmpdir(), 'sharded_runs.json')
    subprocess.run([sys.executable, '-m', 'tests.sharded_runs', out], cwd=ROOT, env=_env(4), check=True, timeout=900)
    with open(out) as f:
      cls.runs = json.load(f)

  def test_sweep_over_four_devices_equals_one_device(self):
    _assert_runs_equal(self, self.runs['sweep_4'], self.runs['sweep_1'])

  def test_padding_members_never_reach_results(self):
    # 6 members on 4 devices are padded to 8; the results hold each (seed, point) exactly once.
    members = [(m['seed'], m['overrides']['game.nu']) for m in self.runs['sweep_4']['per_seed']]
    self.assertCountEqual(members, [(s, nu) for nu in (0.5, 2.0) for s in range(3)])  # tests/sharded_runs.SWEEP

  def test_members_share_one_copy_of_the_data(self):
    b = self.runs['bytes_16']
    # Exactly one copy of the examples per device, plus each member's indices; nothing per member beyond them.
    self.assertEqual(b['held'], b['devices'] * b['pool'] + b['index'])
    self.assertLess(b['held'], b['stacked_copies'] / 2)  # a copy per member would take over twice as much

  def test_data_parallel_member_equals_whole_batch(self):
    # STUDENT draws no noise: the batch split over 2 devices gives the same updates (to float rounding).
    _assert_runs_equal(self, self.runs['student_batch_2'], self.runs['student_batch_1'])
    # The batch-mean baseline of a split minibatch is the whole minibatch's mean, not a device's share's.
    self.assertEqual(self.runs['baseline']['split'], self.runs['baseline']['whole'])
    # The game draws its noise per device, so ADIM differs; it trains (finite, better than chance).
    adim = self.runs['adim_batch_2']
    self.assertNotIn('diverged', adim)
    self.assertGreater(adim['final']['student']['test_accuracy'], 0.2)


class MultiProcessTest(absltest.TestCase):
  def _launch(self, workdir: str, rounds: int, port: int) -> list[subprocess.Popen]:
    procs = []
    for i in range(2):
      where = [f'--workdir={workdir}', f'--coordinator_address=127.0.0.1:{port}', '--num_processes=2']
      args = [sys.executable, '-m', 'experiments.main', *where, f'--process_id={i}', f'--config.rounds={rounds}']
      args += TINY_FLAGS
      log = open(os.path.join(os.path.dirname(workdir), f'{os.path.basename(workdir)}_{i}.log'), 'w')
      procs.append(subprocess.Popen(args, cwd=ROOT, env=_env(2), stdout=log, stderr=subprocess.STDOUT))
    return procs

  def _finish(self, procs, workdir: str) -> list[str]:
    logs = []
    for i, p in enumerate(procs):
      p.wait(timeout=600)
      with open(os.path.join(os.path.dirname(workdir), f'{os.path.basename(workdir)}_{i}.log')) as f:
        logs.append(f.read())
      self.assertEqual(p.returncode, 0, logs[-1][-2000:])
    return logs

  @pytest.mark.slow  # kill and resume: KillTest; processes' launch: the bad-flags test; devices: ShardedTest
  def test_two_processes_killed_and_resumed_equal_one_process(self):
    tmp = self.create_tempdir().full_path
    killed = os.path.join(tmp, 'killed')
    procs = self._launch(killed, 3, _free_port())  # killed once round 1's checkpoint is complete
    marker = os.path.join(killed, 'checkpoints', '1', 'commit_success.txt')
    deadline = time.monotonic() + 600
    while not os.path.exists(marker) and time.monotonic() < deadline and procs[0].poll() is None:
      time.sleep(0.05)
    for p in procs:
      p.send_signal(signal.SIGKILL)
      p.wait()
    self.assertTrue(os.path.exists(marker))
    self.assertFalse(os.path.exists(os.path.join(killed, 'results.json')))
    logs = self._finish(self._launch(killed, 3, _free_port()), killed)
    self.assertIn('test accuracy', logs[0])
    self.assertNotIn('test accuracy', logs[1])  # process 0 reports and writes; the others only compute
    # One TensorBoard run per member and their mean, each one event file per launch of process 0: process 1 never
    # writes.
    runs = os.path.join(killed, 'tensorboard')
    self.assertEqual(sorted(os.listdir(runs)), ['mean', 'seed_0', 'seed_1', 'seed_2'])
    self.assertEqual({len(os.listdir(os.path.join(runs, r))) for r in os.listdir(runs)}, {2})
    with open(os.path.join(killed, 'results.json')) as f:
      resumed = json.load(f)

    # Equal to one process up to float rounding (the batched matmuls of another member layout); that a resumed
    # run is bit for bit the uninterrupted one is KillTest's (test_train), in one process.
    alone = train.train_and_evaluate(tiny_config('adim', num_seeds=3, rounds=3), os.path.join(tmp, 'alone'))
    _assert_runs_equal(self, resumed, alone)

  def test_bad_process_flags_fail_fast_naming_the_flag(self):
    unreachable = f'--coordinator_address=127.0.0.1:{_free_port()}'
    cases = [
      (['--num_processes=2', '--process_id=2', '--coordinator_address=127.0.0.1:1'], 'process_id=2 is out of range'),
      (
        [unreachable, '--num_processes=2', '--process_id=1', '--initialization_timeout=3'],
        'coordinator_address=.* could not be reached in 3 s',
      ),
      (['--coordinator_address=nohost', '--num_processes=2', '--process_id=1'], 'coordinator_address=.* HOST:PORT'),
      (['--coordinator_address=10.255.255.1:1234', '--num_processes=2', '--process_id=0'], 'not an address of this'),
      (['--distributed'], 'jax.distributed.initialize could not start .* or run under a cluster JAX detects'),
    ]
    for flags, message in cases:
      t0 = time.monotonic()
      args = [sys.executable, '-m', 'experiments.main', f'--workdir={self.create_tempdir().full_path}', *flags]
      proc = subprocess.run(args, cwd=ROOT, env=_env(1), capture_output=True, text=True, timeout=120, check=False)
      self.assertEqual(proc.returncode, 1, proc.stderr[-1000:])
      self.assertRegex(proc.stderr.strip().splitlines()[-1], message)
      self.assertLess(time.monotonic() - t0, 60)


class MeshConfigTest(absltest.TestCase):
  def test_bad_mesh_is_refused_naming_the_field(self):
    c = tiny_config('adim', batch_size=10)
    c.mesh.batch = 3
    with self.assertRaisesRegex(config_lib.ConfigError, r'mesh.batch=3 data-parallel ways cannot split batch_size=10'):
      parallel.check(c)
    c.mesh.batch = 2
    with self.assertRaisesRegex(config_lib.ConfigError, r'mesh.batch=2 must divide the 1 devices'):
      parallel.check(c)
    c.mesh.batch = 1
    c.mesh.devices = 5
    with self.assertRaisesRegex(config_lib.ConfigError, r'mesh.devices=5, but this process sees 1 devices'):
      train.train_and_evaluate(c, self.create_tempdir().full_path)

  def test_a_workdir_from_before_the_mesh_resumes_on_any_devices(self):
    workdir = self.create_tempdir().full_path
    train.train_and_evaluate(tiny_config('student', rounds=1), workdir)
    path = os.path.join(workdir, 'config.json')
    with open(path) as f:
      saved = json.load(f)
    del saved['mesh']  # as adjax wrote it before the mesh existed: it computed what mesh's defaults compute
    with open(path, 'w') as f:
      json.dump(saved, f)
    c = tiny_config('student', rounds=2)
    c.mesh.devices = 1  # where members run is not what they compute
    self.assertLen(train.train_and_evaluate(c, workdir)['history'], 3)
    # Data parallelism is part of what a run computes (another noise draw per device).
    self.assertEqual(identity_lib.what_is_computed({'mesh': {'devices': 4, 'batch': 2}})['mesh'], {'batch': 2})

  def test_members_loop_is_checked_and_not_part_of_what_is_computed(self):
    c = tiny_config('adim')
    c.mesh.members = 'sequential'
    with self.assertRaisesRegex(
      config_lib.ConfigError, r"mesh.members='sequential': use one of 'auto', 'vmap', 'loop'"
    ):
      parallel.check(c)
    computed = identity_lib.what_is_computed({'mesh': {'devices': 0, 'batch': 1, 'members': 'vmap'}})
    self.assertEqual(computed['mesh'], {'batch': 1})

  def test_looped_members_are_their_runs_alone_exactly_and_vmapped_ones_close(self):
    runs = {}
    for loop in ('loop', 'vmap'):
      c = tiny_config('adim', num_seeds=2, rounds=1)
      c.mesh.members = loop
      runs[loop] = train.train_and_evaluate(c, self.create_tempdir().full_path)
    alone = train.train_and_evaluate(tiny_config('adim', seed=1, rounds=1), self.create_tempdir().full_path)
    looped = runs['loop']['per_seed'][1]
    self.assertEqual((looped['history'], looped['final']), (alone['history'], alone['final']))  # bit for bit
    for member_loop, member_vmap in zip(runs['loop']['per_seed'], runs['vmap']['per_seed'], strict=True):
      assert_member_equals_alone(self, member_vmap, member_loop)  # a batched matmul: float rounding apart

  def test_padding(self):
    mesh = parallel.single_device()
    self.assertEqual(parallel.padded(5, mesh), 5)
    host = {'a': np.arange(6).reshape(3, 2)}
    np.testing.assert_array_equal(parallel.pad(host, 5)['a'], [[0, 1], [2, 3], [4, 5], [0, 1], [0, 1]])


if __name__ == '__main__':
  absltest.main()
