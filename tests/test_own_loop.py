"""The functional core (``adjax.setup``) is what the trainer runs: the docs' own loop reproduces its figures."""

import contextlib
import io
import os
import re

from absl.testing import absltest
import numpy as np

import adjax
from tests.test_train import tiny_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme_loop() -> str:
  with open(os.path.join(REPO, 'docs', 'python_api.md')) as f:
    return re.search(r'<!-- own-loop -->\n```python\n(.*?)```', f.read(), re.S)[1]


class OwnLoopTest(absltest.TestCase):
  def test_the_readme_loop_equals_the_trainer_for_one_seed(self):
    script = readme_loop()
    self.assertLessEqual(len(script.strip().splitlines()), 30)
    scope, out = {}, io.StringIO()
    with contextlib.redirect_stdout(out):
      exec(compile(script, 'docs own loop', 'exec'), scope)
    config = scope['config']
    self.assertRegex(out.getvalue(), r'^round 0:  val 0\.\d{3}  test 0\.\d{3}\n')
    self.assertRegex(
      out.getvalue(), r'round 4: student loss \d+\.\d{3} D gap \d+\.\d{3}  val 0\.\d{3}  test 0\.\d{3}\n'
    )
    config.diagnostics = config.n_val  # the loop measures all of validation
    results = adjax.train_and_evaluate(config, self.create_tempdir().full_path)
    gaps = [float(g) for g in re.findall(r'D gap (\d+\.\d+)', out.getvalue())]
    np.testing.assert_allclose(gaps, [h['diagnostics/d_gap'] for h in results['history'][1:]], atol=6e-4)
    curve = scope['curve']
    history = [h['student_val_accuracy'] for h in results['history']]
    np.testing.assert_array_equal(np.float32([v for _, v, _ in curve]), np.float32(history))
    self.assertEqual(scope['selected'], results['final']['student']['test_accuracy'])
    self.assertEqual(curve[-1][2], results['final']['student']['last_test_accuracy'])

  def test_a_setup_holds_one_member_per_seed_and_point(self):
    s = adjax.setup(tiny_config('adim', num_seeds=2), [{'game.nu': 0.5}, {'game.nu': 2.0}])
    self.assertLen(s.configs, 4)
    self.assertEqual(s.data('train')['index'].shape, (4, 50))
    np.testing.assert_allclose(s.init()['hparams']['nu'], [0.5, 0.5, 2.0, 2.0])
    with self.assertRaisesRegex(ValueError, "split 'valid' is not one of train, val, test"):
      s.data('valid')
    with self.assertRaisesRegex(ValueError, "player 'teacher' is not one of method=student's players: student"):
      adjax.setup(tiny_config('student')).programs().accuracy('teacher', {}, s.data('val'))


if __name__ == '__main__':
  absltest.main()
