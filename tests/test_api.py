"""The README's Python-API script runs as shown and its results.json names the user's data and network."""

import json
import os
import re
import subprocess
import sys

from absl.testing import absltest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme_script() -> str:
  with open(os.path.join(REPO, 'README.md')) as f:
    readme = f.read()
  return re.search(r'<!-- api-example -->\n```python\n(.*?)```', readme, re.S)[1]


class ReadmeScriptTest(absltest.TestCase):
  def test_runs_as_shown_and_names_data_and_network(self):
    script = readme_script()
    self.assertLessEqual(len(script.strip().splitlines()), 40)
    cwd = self.create_tempdir().full_path
    with open(os.path.join(cwd, 'script.py'), 'w') as f:
      f.write(script)
    proc = subprocess.run([sys.executable, 'script.py'], cwd=cwd, capture_output=True, text=True, timeout=600,
                          check=False)  # fmt: skip
    self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
    self.assertRegex(proc.stdout, r'sklearn digits [0-9a-f]{16} __main__.MyMLP\nstudent test accuracy 0\.\d{3} ±')
    with open(os.path.join(cwd, 'runs', 'digits', 'results.json')) as f:
      results = json.load(f)
    self.assertEqual((results['dataset'], results['method'], results['num_seeds']), ('sklearn digits', 'adim', 2))
    identity = results['identity']
    self.assertEqual((identity['data']['examples'], identity['data']['test_examples']), (1400, 397))
    self.assertEqual(identity['nets']['student']['type'], '__main__.MyMLP')
    self.assertGreater(results['final']['student']['test_accuracy'], 0.7)  # 8x8 digits are easy for an MLP
    # Another network in the same workdir is another run: refused, not resumed.
    other = script.replace('nn.tanh', 'nn.relu')
    with open(os.path.join(cwd, 'other.py'), 'w') as f:
      f.write(other)
    proc = subprocess.run([sys.executable, 'other.py'], cwd=cwd, capture_output=True, text=True, timeout=600,
                          check=False)  # fmt: skip
    self.assertNotEqual(proc.returncode, 0)
    self.assertRegex(proc.stderr, r'holds another run \(its checkpoints/\d+ differs in nets: nets.student.computation')


if __name__ == '__main__':
  absltest.main()
