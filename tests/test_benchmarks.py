"""The accelerator suite (benchmarks/device_suite.sh) runs at CPU sizes, so that it cannot rot between GPU sessions."""

import json
import os
import subprocess
import sys

from absl.testing import absltest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class DeviceSuiteTest(absltest.TestCase):
  def test_tiny_suite_writes_every_figure(self):
    out = self.create_tempdir().full_path
    env = {**os.environ, 'TINY': '1', 'PYTHON': sys.executable}
    proc = subprocess.run(
      ['bash', 'benchmarks/device_suite.sh', out],
      cwd=ROOT,
      env=env,
      capture_output=True,
      text=True,
      timeout=900,
      check=False,
    )
    self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
    with open(os.path.join(out, 'round_time.json')) as f:
      rounds = json.load(f)
    self.assertEqual({(c['method'], c['batch_size']) for c in rounds['cases']}, {('adib', 4), ('adim', 4)})
    self.assertTrue(all(c['seconds_per_round'] > 0 and 0 < c['fraction_of_matmul_peak'] for c in rounds['cases']))
    with open(os.path.join(out, 'sweep_throughput.json')) as f:
      self.assertEqual(set(json.load(f)['ks']), {'1', '2'})
    with open(os.path.join(out, 'scaling.json')) as f:
      scaling = json.load(f)
    self.assertEqual(set(scaling['seconds_per_round']), {'vmap', 'sharded_1'})
    self.assertGreater(scaling['sharding_overhead_1_device'], -1)
    self.assertTrue(os.listdir(os.path.join(out, 'grad_variance')))


if __name__ == '__main__':
  absltest.main()
