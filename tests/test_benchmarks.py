"""The accelerator suite (benchmarks/device_suite.sh) runs at CPU sizes, so that it cannot rot between GPU sessions;
the round profile's categories and the memory benchmark's state sizes."""

import json
import os
import subprocess
import sys

from absl.testing import absltest
from absl.testing import flagsaver
import jax
import numpy as np

from adjax import models
from benchmarks import adam_fused
from benchmarks import common
from benchmarks import round_profile

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
    self.assertEqual({(c['method'], c['batch_size']) for c in rounds['cases']}, {('adim', 4)})  # TINY: ADIM alone
    self.assertTrue(all(c['seconds_per_round'] > 0 and 0 < c['fraction_of_matmul_peak'] for c in rounds['cases']))
    with open(os.path.join(out, 'sweep_throughput.json')) as f:
      self.assertEqual(set(json.load(f)['ks']), {'1', '2'})
    with open(os.path.join(out, 'scaling.json')) as f:
      scaling = json.load(f)
    self.assertEqual(set(scaling['seconds_per_round']), {'vmap', 'sharded_1'})
    self.assertGreater(scaling['sharding_overhead_1_device'], -1)
    self.assertTrue(os.listdir(os.path.join(out, 'grad_variance')))


HLO = """
%fused_computation.1 (p: f32[3]) -> f32[3] {
  %p = f32[3]{0} parameter(0)
  ROOT %m = f32[3]{0} multiply(%p, %p), metadata={op_name="jit(f)/while/body/optimizer/mul"}
}

%fused_computation.2 (a: f32[2,5,5,1], b: f32[5,5,1,4]) -> f32[2,5,5,4] {
  %a = f32[2,5,5,1]{3,2,1,0} parameter(0)
  %b = f32[5,5,1,4]{3,2,1,0} parameter(1)
  ROOT %c = f32[2,5,5,4]{3,2,1,0} convolution(%a, %b), metadata={op_name="f/conv_backward_kernel/conv"}
}

ENTRY %main (x: f32[3]) -> f32[3] {
  %x = f32[3]{0} parameter(0)
  %adam = f32[3]{0} fusion(%x), kind=kLoop, calls=%fused_computation.1
  %ynn = f32[2,5,5,4]{3,2,1,0} fusion(%x, %x), kind=kCustom, calls=%fused_computation.2
  %copy.3 = f32[3]{0} copy(%x)
  ROOT %dot.4 = f32[3]{0} dot(%x, %x), metadata={op_name="jit(f)/transpose(jvp(MLP))/Dense_0/dot_general"}
}
"""


class RoundProfileTest(absltest.TestCase):
  def test_instructions_are_put_in_their_categories(self):
    instructions, computations = round_profile.parse_hlo(HLO)
    got = {name: round_profile.categorize(name, instructions, computations) for name in instructions}
    self.assertEqual(got['adam'], 'optimizer')  # by the named scope inside its fused computation
    self.assertEqual(got['ynn'], 'conv backward-kernel')
    self.assertEqual(got['copy.3'], 'copies and transposes')
    self.assertEqual(got['dot.4'], 'dense backward')

  @flagsaver.flagsaver
  def test_a_profiled_round_accounts_for_its_thunks(self):
    case = round_profile.profile_round('adim', 4, 1, tiny=True)
    categories = case['categories']
    self.assertAlmostEqual(
      sum(c['thread_seconds'] for c in categories.values()), case['thunk_thread_seconds_per_round']
    )
    for name in ('optimizer', 'conv forward', 'conv backward-input', 'conv backward-kernel', 'fixed players forward'):
      self.assertGreater(categories[name]['thread_seconds'], 0, name)  # the named scopes reach the trace


class AdamFusedTest(absltest.TestCase):
  def test_the_fused_update_is_the_rounds_optax_adam(self):
    params = {'w': jax.random.normal(jax.random.key(0), (7, 3)), 'b': jax.numpy.ones((3,))}
    out = {way: jax.tree.leaves(f(params)) for way, f in adam_fused.programs(params, steps=5).items()}
    for way in ('fused', 'fused_scalars_first'):
      for a, b in zip(out['optax'], out[way]):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7, err_msg=way)
    moved = max(float(np.max(np.abs(a - b))) for a, b in zip(out['optax'], jax.tree.leaves(params)))
    self.assertGreater(moved, 1e-3)  # 5 Adam steps of about the learning rate each (the weight decay too)


class MemoryTest(absltest.TestCase):
  def test_state_bytes_are_parameters_two_moments_and_best_parameters(self):
    game, state, _ = common.setup('adim', 4, tiny=True, members=2)
    sizes = common.state_bytes(game, state)
    params = {
      p: models.parameter_count(jax.tree.map(lambda a: a[0], state[p]['params'])) for p in state if p in game.nets
    }
    self.assertEqual(sizes['params'], 4 * sum(params.values()))
    self.assertGreaterEqual(sizes['optimizer'], 2 * sizes['params'])  # Adam's two moments (and a step count)
    self.assertEqual(sizes['best_params'], 4 * (params['student'] + params['teacher']))
    self.assertGreater(common.peak_resident_bytes(), sizes['total'])


if __name__ == '__main__':
  absltest.main()
