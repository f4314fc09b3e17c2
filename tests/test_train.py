"""The game end to end on tiny configs: tracing, determinism, resume, selection, results."""

from collections.abc import Callable
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from adjax import checkpoint
from adjax import config as config_lib
from adjax import data
from adjax import game as game_lib
from adjax import rounds
from adjax import train
from experiments.configs import mnist

# config.diagnostics's default: what a test that checks the diagnostics passes to tiny_config, which turns them off.
DIAGNOSED = mnist.get_config().diagnostics


def tiny_config(method='adim', **overrides):
  c = mnist.get_config()
  c.method = method
  c.n_train, c.n_val, c.rounds = 50, 100, 2
  c.k_d = c.k_t = c.k_s = 2
  c.pretrain.student = c.pretrain.teacher = c.pretrain.discriminator = c.pretrain.frozen_teacher = 3
  c.student.model = c.teacher.model = c.discriminator.model = 'mlp'
  c.augment.rotation = c.augment.shift = c.augment.zoom = 0.0
  c.diagnostics = 0  # they add about a third to a tiny run (a program to compile, a figure); tests that need them ask
  for k, v in overrides.items():
    c[k] = v
  return c


def assert_member_equals_alone(test, member: dict, alone: dict) -> None:
  """A vmapped member's history and final figures equal its run alone, up to float summation order (a vmapped
  dense layer is a batched matmul): losses to 1e-3, accuracies to one of 100 validation examples."""
  for h_member, h_alone in zip(member['history'], alone['history'], strict=True):
    test.assertEqual(h_member.keys(), h_alone.keys())
    for key, value in h_alone.items():
      # Accuracies (the discriminator's on sampled labels too) move by whole examples: one of 100 may flip.
      tolerance = 0.011 if 'accuracy' in key else 1e-3 * max(1.0, abs(value))
      test.assertAlmostEqual(h_member[key], value, delta=tolerance, msg=key)
  for player in ('student', 'teacher'):
    if alone['final'][player] is None:  # a method without this player
      test.assertIsNone(member['final'][player])
      continue
    for key, value in alone['final'][player].items():
      test.assertAlmostEqual(member['final'][player][key], value, delta=0.011, msg=key)


def one_seed(tree):
  """A leading seed axis of size 1, as the compiled programs take."""
  return jax.tree.map(lambda a: a[None], tree)


def without_timings(history):
  return [{k: v for k, v in h.items() if k != 'seconds'} for h in history]


class RoundTest(parameterized.TestCase):
  @parameterized.parameters(
    'student', 'teacher', 'distn', 'mimic', 'noisy', 'codis', 'ngan', 'adib', 'adim', 'adim_ngs'
  )
  def test_round_traces_once_and_moves_only_its_players(self, method):
    c = config_lib.validate(tiny_config(method))
    splits = data.load(c)
    game = game_lib.build(c, splits.num_classes)
    play_round = rounds.compile_fns(game).play_round
    train_data = game_lib.as_data(splits.split('train'), members=1)
    state = one_seed(game_lib.init_state(game, jax.random.key(0), splits.split('train')))
    before = jax.device_get(state)
    state, metrics = play_round(state, train_data, None)
    compiled = play_round.jitted._cache_size()  # other tests may share this program (an equal game) at other shapes
    for _ in range(2):
      state, metrics = play_round(state, train_data, None)
    self.assertEqual(play_round.jitted._cache_size(), compiled)  # later rounds reuse the first round's trace
    self.assertEqual(int(state['round'][0]), 3)
    self.assertEqual(set(metrics) - {'tau', 'finite'}, set(game.method.players))
    self.assertTrue(bool(metrics['finite'][0]))
    for player in game.method.players:
      moved = jax.tree.map(
        lambda a, b: np.any(a != b), before[player]['params'], jax.device_get(state[player]['params'])
      )
      self.assertTrue(all(jax.tree.leaves(moved)), player)

  def test_games_differing_only_in_a_network_compile_separately(self):
    class Net(nn.Module):
      activation: Callable = nn.relu

      @nn.compact
      def __call__(self, x):
        return nn.Dense(10)(self.activation(nn.Dense(32)(x.reshape(x.shape[0], -1))))

    c = config_lib.validate(tiny_config('student'))
    splits = data.load(c)
    base = game_lib.build(c, splits.num_classes)
    self.assertEqual(base, game_lib.build(config_lib.validate(tiny_config('student', seed=3)), 10))  # shared
    games = [dataclasses.replace(base, nets={'student': Net(activation=a)}) for a in (nn.relu, nn.tanh)]
    self.assertNotEqual(games[0], games[1])
    x, y = jnp.asarray(splits.x_val), jnp.asarray(splits.y_val)
    params = games[0].nets['student'].init(jax.random.key(0), x[:1])
    got, expected = [], []
    for game in games:
      accuracy = rounds.compile_fns(game).accuracy
      got.append(
        float(accuracy('student', one_seed(params), game_lib.as_data({'x': x, 'y': y}, members=1))['accuracy'][0])
      )
      expected.append(float(jnp.mean(jnp.argmax(game.nets['student'].apply(params, x), -1) == y)))
    self.assertNotEqual(expected[0], expected[1])  # the activation matters for these parameters
    np.testing.assert_allclose(got, expected, atol=1e-6)  # each game evaluates its own network

  def test_augmented_round_differs_and_is_deterministic(self):
    def one_round(**augment):
      c = tiny_config('adim')
      c.augment.update(augment)
      c = config_lib.validate(c)
      splits = data.load(c)
      game = game_lib.build(c, splits.num_classes)
      train_data = game_lib.as_data(splits.split('train'), members=1)
      state, _ = rounds.compile_fns(game)[1](
        one_seed(game_lib.init_state(game, jax.random.key(0), splits.split('train'))), train_data, None
      )
      return jax.device_get(state['student']['params'])

    plain, augmented, again = one_round(), one_round(rotation=10.0, shift=2.0), one_round(rotation=10.0, shift=2.0)
    self.assertEqual(tiny_config().augment.rotation, 0.0)
    jax.tree.map(np.testing.assert_array_equal, augmented, again)
    self.assertTrue(any(jax.tree.leaves(jax.tree.map(lambda a, b: np.any(a != b), plain, augmented))))

  def test_lenet_round_on_the_paper_models(self):
    c = mnist.get_config()
    c.n_train, c.n_val, c.k_d, c.k_t, c.k_s = 20, 20, 2, 1, 1
    c = config_lib.validate(c)
    splits = data.load(c)
    game = game_lib.build(c, 10)
    play_round = rounds.compile_fns(game).play_round
    train_data = game_lib.as_data(splits.split('train'), members=1)
    _, metrics = play_round(
      one_seed(game_lib.init_state(game, jax.random.key(0), splits.split('train'))), train_data, None
    )
    self.assertTrue(all(np.isfinite(v) for v in jax.tree.leaves(jax.device_get(metrics))))


class TrainTest(parameterized.TestCase):
  def test_results_fields_and_selection_on_validation(self):
    workdir = self.create_tempdir().full_path
    results = train.train_and_evaluate(tiny_config('adim', rounds=3, diagnostics=DIAGNOSED), workdir)
    with open(os.path.join(workdir, 'results.json')) as f:
      self.assertEqual(json.load(f), json.loads(json.dumps(results)))
    self.assertEqual(
      (results['method'], results['dataset'], results['n_train'], results['seed']), ('adim', 'mnist5k', 50, 0)
    )
    self.assertEqual([h['round'] for h in results['history']], [0, 1, 2, 3])
    for h in results['history'][1:]:
      for key in (
        'tau',
        'student_val_accuracy',
        'teacher_val_accuracy',
        'student_loss',
        'teacher_loss',
        'discriminator_loss',
      ):
        self.assertIn(key, h)
    for player in ('student', 'teacher'):
      final = results['final'][player]
      vals = [h[f'{player}_val_accuracy'] for h in results['history']]
      self.assertEqual(final['val_accuracy'], max(vals))
      self.assertEqual(final['selected_round'], vals.index(max(vals)))
      self.assertEqual(final['last_val_accuracy'], vals[-1])
      self.assertBetween(final['test_accuracy'], 0.0, 1.0)
    events = [f for f in os.listdir(os.path.join(workdir, 'tensorboard')) if 'tfevents' in f]
    self.assertNotEmpty(events)
    with open(os.path.join(workdir, 'tensorboard', events[0]), 'rb') as f:
      self.assertIn(b'diagnostics/d_gap', f.read())
    # The equilibrium diagnostics: every round's, and those of the student's selected round and of the last.
    names = {
      'd_gap',
      'divergence',
      'd_accuracy',
      'd_accuracy_shown',
      'kl_t_s',
      'kl_r_s',
      'kl_r_t',
      'entropy_s',
      'entropy_t',
    }
    names |= {f'train_{n}' for n in names}  # also on the training examples
    for h in results['history']:
      self.assertEqual({k.removeprefix('diagnostics/') for k in h if k.startswith('diagnostics/')}, names)
      self.assertGreaterEqual(h['diagnostics/d_gap'], 0.0)
    measured = results['diagnostics']
    selected = results['final']['student']['selected_round']
    self.assertEqual(measured['round'], selected)
    for when, row in (('selected', results['history'][selected]), ('last', results['history'][-1])):
      self.assertEqual(measured[when], {n: row[f'diagnostics/{n}'] for n in names})
    self.assertTrue(os.path.getsize(os.path.join(workdir, 'diagnostics.png')) > 10_000)

  def test_same_seed_same_results_other_seed_differs(self):
    configs = [tiny_config('adib', diagnostics=DIAGNOSED), tiny_config('adib'), tiny_config('adib', seed=1)]
    runs = [train.train_and_evaluate(c, self.create_tempdir().full_path) for c in configs]
    # The diagnostics draw no randomness of the run's: without them it trains the same, and reports none.
    measured = [{k: v for k, v in h.items() if not k.startswith('diagnostics/')} for h in runs[0]['history']]
    self.assertEqual(without_timings(measured), without_timings(runs[1]['history']))
    self.assertEqual(runs[0]['final'], runs[1]['final'])
    self.assertNotIn('diagnostics', runs[1])
    self.assertNotEqual(without_timings(runs[1]['history']), without_timings(runs[2]['history']))

  def test_vmapped_seeds_equal_separate_runs(self):
    together = train.train_and_evaluate(tiny_config('adim', num_seeds=3), self.create_tempdir().full_path)
    self.assertEqual([s['seed'] for s in together['per_seed']], [0, 1, 2])
    # The last member alone (test_parallel compares seeds 0 and 1, looped and vmapped, with their runs alone).
    alone = train.train_and_evaluate(tiny_config('adim', seed=2), self.create_tempdir().full_path)
    assert_member_equals_alone(self, together['per_seed'][2], alone)
    tests = [s['final']['student']['test_accuracy'] for s in together['per_seed']]
    self.assertAlmostEqual(together['final']['student']['test_accuracy'], float(np.mean(tests)), places=6)
    self.assertAlmostEqual(together['final']['student']['test_accuracy_std'], float(np.std(tests)), places=6)

  def test_interrupted_and_resumed_equals_uninterrupted(self):
    whole, parts = self.create_tempdir().full_path, self.create_tempdir().full_path
    configs = [
      tiny_config('adim', rounds=r, diagnostics=DIAGNOSED) for r in (4, 2)
    ]  # diagnostics resumed with the rest
    full = train.train_and_evaluate(configs[0], whole)
    train.train_and_evaluate(configs[1], parts)  # stopped after round 2's checkpoint
    resumed = train.train_and_evaluate(configs[0], parts)
    self.assertEqual(without_timings(full['history']), without_timings(resumed['history']))
    self.assertEqual(full['final'], resumed['final'])
    like = jax.device_get(checkpoint.Checkpoints(os.path.join(whole, 'checkpoints')).restore(4, _abstract(whole))[0])
    other = jax.device_get(checkpoint.Checkpoints(os.path.join(parts, 'checkpoints')).restore(4, _abstract(parts))[0])
    jax.tree.map(np.testing.assert_array_equal, like, other)

  def test_npz_with_flat_features_and_with_images(self):
    x, y = data.load_mnist5k()
    order = np.random.default_rng(0).permutation(y.size)  # the file is sorted by class
    x, y = x[order], y[order]
    for name, xs in (('flat', x.reshape(-1, 784)), ('images', x[..., 0])):
      path = os.path.join(self.create_tempdir().full_path, f'{name}.npz')
      np.savez(path, x_train=xs[:4000], y_train=y[:4000], x_test=xs[4000:], y_test=y[4000:])
      c = tiny_config('ngan', dataset='npz', data_file=path, rounds=1)
      if name == 'images':
        c.discriminator.model = 'lenet'
      results = train.train_and_evaluate(c, self.create_tempdir().full_path)
      self.assertEqual(results['n_test'], 1000)
      self.assertGreater(results['final']['student']['test_accuracy'], 0.3, name)

  def test_frozen_teacher_cached_once_and_reused(self):
    cache = self.create_tempdir().full_path
    train.train_and_evaluate(tiny_config('distn', teacher_cache=cache, num_seeds=2), self.create_tempdir().full_path)
    self.assertLen(os.listdir(cache), 2)  # one teacher per seed
    reused_dir = self.create_tempdir().full_path
    reused = train.train_and_evaluate(tiny_config('mimic', teacher_cache=cache, num_seeds=2), reused_dir)
    self.assertLen(os.listdir(cache), 2)
    trained = train.train_and_evaluate(tiny_config('mimic', num_seeds=2), self.create_tempdir().full_path)
    self.assertEqual(reused['final'], trained['final'])
    self.assertEqual(without_timings(reused['history']), without_timings(trained['history']))
    # Where the cache lives is not part of the run: a moved cache still finds the finished run.
    moved = tiny_config('mimic', teacher_cache=cache + '_moved', num_seeds=2)
    self.assertEqual(train.finished(reused_dir, moved), reused)
    self.assertIsNone(train.finished(reused_dir, tiny_config('mimic', teacher_cache=cache, num_seeds=1)))

  def test_frozen_teacher_is_its_best_segment_on_validation(self):
    c = config_lib.validate(tiny_config('distn', rounds=1))
    c.pretrain.frozen_teacher = 20  # 10 segments of 2 steps
    splits = data.load(c)
    game = game_lib.build(c, splits.num_classes)
    programs = rounds.compile_fns(game)
    pretrain, accuracy = programs.pretrain, programs.accuracy
    train_data, val = (game_lib.as_data(splits.split(n), members=1) for n in ('train', 'val'))
    state = one_seed(game_lib.init_state(game, jax.random.key(0), splits.split('train')))
    per_segment = []
    for segment in range(rounds.FROZEN_SEGMENTS):
      state, _ = pretrain(state, train_data, True, segment)
      per_segment.append(float(accuracy('teacher', state['teacher']['params'], val)['accuracy'][0]))
    self.assertGreater(len(set(per_segment)), 1)  # segments differ, so selection matters
    results = train.train_and_evaluate(c, self.create_tempdir().full_path)
    self.assertEqual(results['history'][0]['teacher_val_accuracy'], max(per_segment))

  def test_resume_with_a_different_config_is_refused(self):
    workdir = self.create_tempdir().full_path
    train.train_and_evaluate(tiny_config('student', rounds=1), workdir)
    with self.assertRaisesRegex(config_lib.ConfigError, 'n_train'):
      train.train_and_evaluate(tiny_config('student', rounds=1, n_train=60), workdir)
    # A checkpoint whose state has other arrays (another adjax version wrote it): a clear refusal.
    original = game_lib.hyperparameters
    with mock.patch.object(game_lib, 'hyperparameters', lambda m, c: {**original(m, c), 'extra': jnp.zeros(())}):
      with self.assertRaisesRegex(
        config_lib.ConfigError,
        r'of another layout .*extra.* another version of adjax \(or another setup\) wrote it: use a new workdir',
      ):
        train.train_and_evaluate(tiny_config('student', rounds=2), workdir)
    self.assertEqual(sorted(os.listdir(os.path.join(workdir, 'checkpoints'))), ['0', '1'])  # refused, not moved


def _abstract(workdir):
  c = config_lib.validate(tiny_config('adim', rounds=4))
  game = game_lib.build(c, 10)
  state = one_seed(game_lib.init_state(game, jax.random.key(0), {'x': np.zeros((1, 28, 28, 1), np.float32)}))
  return {'state': state, 'best': {p: state[p]['params'] for p in ('student', 'teacher')}}


class KillTest(absltest.TestCase):
  """A run killed (SIGKILL) or preempted (SIGTERM) mid-way and started again ends as an uninterrupted run."""

  FLAGS = (
    '--config=experiments/configs/mnist.py',
    '--config.n_train=50',
    '--config.n_val=100',
    '--config.rounds=16',  # rounds are cheap (2 updates a player, then a checkpoint): each interruption leaves many
    '--config.k_d=2',
    '--config.k_t=2',
    '--config.k_s=2',
    '--config.student.model=mlp',
    '--config.teacher.model=mlp',
    '--config.discriminator.model=mlp',
    '--config.pretrain.student=3',
    '--config.pretrain.teacher=3',
    '--config.pretrain.discriminator=3',
    '--config.diagnostics=0',  # resumed with the rest: TrainTest.test_interrupted_and_resumed_equals_uninterrupted
  )
  REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

  def _command(self, workdir):
    return [sys.executable, '-m', 'experiments.main', f'--workdir={workdir}', *self.FLAGS]

  def _interrupt_after_checkpoint(self, workdir, round_, sig):
    """Starts (or resumes) the run in ``workdir``, sends ``sig`` once its checkpoint of ``round_`` exists; returns
    the process and its stderr."""
    log = open(os.path.join(self.create_tempdir().full_path, 'stderr'), 'w+')
    self.addCleanup(log.close)
    # SIGINT as in a terminal: a job started in the background (as CI may start this suite) inherits it ignored.
    default_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)
    proc = subprocess.Popen(
      self._command(workdir),
      cwd=self.REPO,
      stdout=subprocess.DEVNULL,
      stderr=log,
      preexec_fn=default_sigint,  # noqa: PLW1509
    )
    ckpts = os.path.join(workdir, 'checkpoints')
    deadline = time.time() + 300
    while not os.path.isdir(os.path.join(ckpts, str(round_))) and proc.poll() is None and time.time() < deadline:
      time.sleep(0.02)
    proc.send_signal(sig)
    proc.wait(timeout=300)
    self.assertFalse(os.path.exists(os.path.join(workdir, 'results.json')), 'the run ended before the signal')
    log.seek(0)
    return proc, log.read()

  def test_preempted_then_killed_run_resumes_to_the_uninterrupted_result(self):
    workdir = self.create_tempdir().full_path
    # SIGTERM (preemption): stops after a checkpoint with status 143, naming the round it saved.
    proc, stderr = self._interrupt_after_checkpoint(workdir, 2, signal.SIGTERM)
    self.assertEqual(proc.returncode, 143, stderr[-2000:])
    self.assertNotIn('Traceback', stderr)
    line = re.search(r'adjax: SIGTERM: stopped after the checkpoint of round (\d+); run the same command again', stderr)
    self.assertIsNotNone(line, stderr[-2000:])
    latest = max(int(d) for d in os.listdir(os.path.join(workdir, 'checkpoints')) if d.isdigit())
    self.assertEqual(latest, int(line[1]))  # the round it names is saved: at most the round in progress is lost
    # SIGKILL of the resumed run, one round later: nothing runs at exit.
    self.assertLess(latest + 2, 16, 'the SIGTERM came too late to leave rounds to kill and interrupt')
    proc, stderr = self._interrupt_after_checkpoint(workdir, latest + 1, signal.SIGKILL)
    self.assertEqual(proc.returncode, -signal.SIGKILL, stderr[-2000:])
    # Ctrl-C (SIGINT) of the run resumed again: one line, status 130, no traceback.
    latest = max(int(d) for d in os.listdir(os.path.join(workdir, 'checkpoints')) if d.isdigit())
    proc, stderr = self._interrupt_after_checkpoint(workdir, latest + 1, signal.SIGINT)
    self.assertEqual(proc.returncode, 130, stderr[-2000:])
    self.assertNotIn('Traceback', stderr)
    self.assertIn('adjax: interrupted (Ctrl-C); run the same command again to resume', stderr)

    whole = self.create_tempdir().full_path
    results = []
    for w in (workdir, whole):
      subprocess.run(self._command(w), cwd=self.REPO, check=True, capture_output=True, timeout=600)
      with open(os.path.join(w, 'results.json')) as f:
        results.append(json.load(f))
    self.assertEqual(without_timings(results[0]['history']), without_timings(results[1]['history']))
    self.assertEqual(results[0]['final'], results[1]['final'])


if __name__ == '__main__':
  absltest.main()
