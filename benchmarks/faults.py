r"""kill -9 at random points of a small run, then resume: how many runs end bit-identical to an uninterrupted one.

  python -m benchmarks.faults --trials=12 --out=/tmp/faults.json

One uninterrupted run of a small ADIM config gives the reference and its wall
time T. Each trial starts the same run in a fresh workdir and sends SIGKILL,
in turn: at a uniformly random time in (0, 0.9 T); at a random time in the
rounds (0-3 s after the first checkpoint appears); the moment a checkpoint
directory is being written. It records what the run was doing (start-up /
pretraining, a round, a checkpoint write, writing results), runs the same
command again to completion and compares its ``history`` and ``final`` with
the reference. A trial whose run had already finished is not counted.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

_TRIALS = flags.DEFINE_integer('trials', 12, 'Kills, each followed by a resume.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the kill times.')
_OUT = flags.DEFINE_string('out', '', 'JSON with every trial (optional).')

RUN_FLAGS = (
  '--config.method=adim',
  '--config.n_train=50',
  '--config.n_val=100',
  '--config.rounds=8',
  '--config.student.model=mlp',
  '--config.teacher.model=mlp',
  '--config.discriminator.model=mlp',
  '--config.pretrain.student=50',
  '--config.pretrain.teacher=50',
  '--config.pretrain.discriminator=20',
)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _command(workdir: str) -> list[str]:
  return [sys.executable, '-m', 'experiments.main', f'--workdir={workdir}', *RUN_FLAGS]


def _results(workdir: str) -> dict:
  with open(os.path.join(workdir, 'results.json')) as f:
    r = json.load(f)
  return {'history': [{k: v for k, v in h.items() if k != 'seconds'} for h in r['history']], 'final': r['final']}


def _phase(workdir: str) -> str:
  """What the run was doing when it died, read from what it left."""
  names = os.listdir(workdir) if os.path.isdir(workdir) else []
  if 'results.json' in names:
    return 'finished'
  if 'results.json.tmp' in names:
    return 'writing results'
  ckpts = os.path.join(workdir, 'checkpoints')
  entries = os.listdir(ckpts) if os.path.isdir(ckpts) else []
  if any(not e.isdigit() for e in entries):
    return 'checkpoint write'
  steps = [int(e) for e in entries]
  return f'round {max(steps) + 1}' if steps else 'start-up / pretraining'


def _wait_for(proc, ckpts: str, ready, deadline: float) -> None:
  while proc.poll() is None and time.time() < deadline:
    if os.path.isdir(ckpts) and ready(os.listdir(ckpts)):
      return
    time.sleep(0.001)


def main(argv):
  del argv
  import numpy as np

  rng = np.random.default_rng(_SEED.value)
  root = tempfile.mkdtemp(prefix='adjax-faults-')
  reference_dir = os.path.join(root, 'reference')
  t0 = time.perf_counter()
  subprocess.run(_command(reference_dir), cwd=REPO, check=True, capture_output=True)
  wall = time.perf_counter() - t0
  reference = _results(reference_dir)
  print(f'reference run: {wall:.1f} s', flush=True)
  trials = []
  for i in range(_TRIALS.value):
    workdir = os.path.join(root, f'trial_{i}')
    proc = subprocess.Popen(_command(workdir), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpts, deadline, mode = (
      os.path.join(workdir, 'checkpoints'),
      time.time() + 2 * wall,
      ('any', 'rounds', 'write')[i % 3],
    )
    at = None
    if mode == 'any':
      at = float(rng.uniform(0, 0.9 * wall))
      time.sleep(at)
    elif mode == 'rounds':
      _wait_for(proc, ckpts, lambda entries: '0' in entries, deadline)
      at = float(rng.uniform(0, 3))
      time.sleep(at)
    else:
      _wait_for(proc, ckpts, lambda entries: any(not e.isdigit() for e in entries), deadline)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    phase = _phase(workdir)
    resumed = subprocess.run(_command(workdir), check=False, cwd=REPO, capture_output=True, text=True)
    identical = resumed.returncode == 0 and _results(workdir) == reference
    trials.append({'trial': i, 'mode': mode, 'kill_after_s': at, 'phase': phase,
                   'resume_status': resumed.returncode, 'identical': identical})  # fmt: skip
    print(f'trial {i}: killed during {phase}: resume status {resumed.returncode}, identical {identical}', flush=True)
    if resumed.returncode != 0:
      print(resumed.stderr[-1500:], flush=True)
  counted = [t for t in trials if t['phase'] != 'finished']
  hits = sum(t['identical'] for t in counted)
  print(f'\n{hits} of {len(counted)} killed runs resumed to results bit-identical to the uninterrupted run')
  if _OUT.value:
    with open(_OUT.value, 'w') as f:
      json.dump({'reference_seconds': wall, 'identical': hits, 'trials': trials}, f, indent=1)


if __name__ == '__main__':
  app.run(main)
