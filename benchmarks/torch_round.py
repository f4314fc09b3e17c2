"""A careful PyTorch implementation of one ADIB / ADIM round, for speed comparison only.

Same models (MLP 784-800-800-10 student, LeNet teacher and discriminator
networks), same updates per round (k_d=20, k_t=10, k_s=10), same losses
(concrete-REINFORCE with a batch-mean baseline, KL distillation with a
temperature and a label term), Adam with coupled weight decay. Each update
draws its minibatch and runs the fixed players' forward passes, as one would
write it in PyTorch, with what a careful PyTorch user does for speed on a
CPU: channels-last convolutions (oneDNN), fused Adam, ``torch.no_grad()``
around every forward that is not differentiated, one discriminator forward
per minibatch shared by the real / student / teacher scores,
``zero_grad(set_to_none=True)``, the thread count set to the cores.
``--compile`` also wraps every network in ``torch.compile`` (inductor).
``--precision=bfloat16`` runs every network under ``torch.autocast`` in
bfloat16 (parameters, Adam and the losses float32, as adjax's
``config.precision``). Needs only torch:

  python benchmarks/torch_round.py --batch_sizes=10,64 --methods=adib,adim [--compile] [--precision=bfloat16]

Prints JSON with the median seconds per round of each case.
"""

import argparse
import contextlib
import json
import math
import os
import statistics
import time

import torch
from torch import nn
import torch.nn.functional as F


class MLP(nn.Module):
  def __init__(self):
    super().__init__()
    self.net = nn.Sequential(
      nn.Flatten(), nn.Linear(784, 800), nn.ReLU(), nn.Linear(800, 800), nn.ReLU(), nn.Linear(800, 10)
    )

  def forward(self, x):
    return self.net(x)


class LeNet(nn.Module):
  def __init__(self):
    super().__init__()
    self.net = nn.Sequential(
      nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
      nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
      nn.Flatten(), nn.Linear(3136, 1024), nn.ReLU(), nn.Linear(1024, 10),
    )  # fmt: skip

  def forward(self, x):
    return self.net(x)


def concrete_sample(logits, tau):
  g = -torch.log(-torch.log(torch.rand_like(logits).clamp_min(1e-20)))
  return F.log_softmax((F.log_softmax(logits, -1) + g) / tau, -1)


def exp_concrete_log_density(log_y, log_p, tau):
  k = log_p.shape[-1]
  z = log_p - tau * log_y
  return math.lgamma(k) + (k - 1) * math.log(tau) + z.sum(-1) - k * torch.logsumexp(z, -1)


def role_log_probs(method, heads, y):
  if method == 'adib':
    s = (heads[0] * y).sum(-1)
    return torch.stack([F.logsigmoid(s), F.logsigmoid(-s), F.logsigmoid(-s)], -1)
  a, b = (heads[0] * y).sum(-1), (heads[1] * y).sum(-1)
  fake = F.logsigmoid(-a)
  return torch.stack([F.logsigmoid(a), fake + F.logsigmoid(b), fake + F.logsigmoid(-b)], -1)


def kd(target, learner, labels, t=4.0):
  soft = F.kl_div(F.log_softmax(learner / t, -1), F.log_softmax(target / t, -1), log_target=True, reduction='batchmean')
  return t * t * soft + F.cross_entropy(learner, labels)


def channels_last(net):
  return net.to(memory_format=torch.channels_last)


class Game:
  def __init__(self, method, batch_size, x, y, compiled=False, precision='float32'):
    self.method, self.b, self.x, self.y = method, batch_size, x, y
    device = x.device.type
    bf16 = precision == 'bfloat16'
    self.amp = (lambda: torch.autocast(device, dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    self.student, self.teacher = MLP(), channels_last(LeNet())
    self.discs = [channels_last(LeNet()) for _ in range(1 if method == 'adib' else 2)]
    self.nets = {'student': self.student, 'teacher': self.teacher, 'discs': self.discs}
    if compiled:  # the modules keep their parameters; only their forward (and its backward) is compiled
      self.nets = {'student': torch.compile(self.student), 'teacher': torch.compile(self.teacher)}
      self.nets['discs'] = [torch.compile(d) for d in self.discs]
    self.w = (1.0, 0.5, 0.5) if method == 'adib' else (1 / 3, 1 / 3, 1 / 3)
    # fused=True: PyTorch's fastest CPU Adam (the default foreach path costs ~20 ms a step here).
    adam = lambda params, lr: torch.optim.Adam(params, lr=lr, weight_decay=4e-5, fused=True)
    self.opt_s, self.opt_t = adam(self.student.parameters(), 5e-4), adam(self.teacher.parameters(), 5e-4)
    self.opt_d = adam([p for d in self.discs for p in d.parameters()], 1e-3)

  def fwd(self, net, x):
    """The network's scores, computed in the round's precision, as float32 for the losses."""
    with self.amp():
      return net(x).float()

  def batch(self):
    idx = torch.randint(0, self.x.shape[0], (self.b,))
    return self.x[idx].contiguous(memory_format=torch.channels_last), self.y[idx]

  def disc_step(self, tau):
    x, y = self.batch()
    nets = self.nets
    with torch.no_grad():
      ys = concrete_sample(self.fwd(nets['student'], x), tau).exp()
      yt = concrete_sample(self.fwd(nets['teacher'], x), tau).exp()
    heads = [
      self.fwd(d, x) for d in nets['discs']
    ]  # one forward per minibatch: the real, student and teacher scores share it
    yr = F.one_hot(y, 10).float()
    v = sum(
      w * role_log_probs(self.method, heads, yy)[:, i].mean() for i, (w, yy) in enumerate(zip(self.w, (yr, ys, yt)))
    )
    self.opt_d.zero_grad(set_to_none=True)
    (-v).backward()
    self.opt_d.step()

  def gen_step(self, role, tau):
    x, y = self.batch()
    nets = self.nets
    net, other, opt = (
      (nets['student'], nets['teacher'], self.opt_s) if role == 1 else (nets['teacher'], nets['student'], self.opt_t)
    )
    with torch.no_grad():
      heads = [self.fwd(d, x) for d in nets['discs']]
      other_logits = self.fwd(other, x)
    logits = self.fwd(net, x)
    log_p = F.log_softmax(logits, -1)
    log_y = concrete_sample(logits.detach(), tau)
    with torch.no_grad():
      reward = role_log_probs(self.method, heads, log_y.exp())[:, role]
    surrogate = ((reward - reward.mean()) * exp_concrete_log_density(log_y, log_p, tau)).mean()
    loss = self.w[role] * surrogate + kd(other_logits, logits, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()

  def round(self, tau=1.0):
    for _ in range(20):
      self.disc_step(tau)
    for _ in range(10):
      self.gen_step(2, tau)
    for _ in range(10):
      self.gen_step(1, tau)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--batch_sizes', default='10,64')
  parser.add_argument('--methods', default='adib,adim')
  parser.add_argument('--repeats', type=int, default=5)
  parser.add_argument('--n_train', type=int, default=1000)
  parser.add_argument('--device', default='cpu')
  parser.add_argument('--compile', action='store_true', help='torch.compile every network (inductor)')
  parser.add_argument('--precision', default='float32', choices=('float32', 'bfloat16'))
  args = parser.parse_args()
  torch.set_num_threads(len(os.sched_getaffinity(0)))
  torch.manual_seed(0)
  torch.set_default_device(args.device)
  sync = torch.cuda.synchronize if args.device.startswith('cuda') else lambda: None
  x, y = torch.rand(args.n_train, 1, 28, 28), torch.randint(0, 10, (args.n_train,))
  x = x.contiguous(memory_format=torch.channels_last)
  out = {'torch': torch.__version__, 'device': args.device, 'threads': torch.get_num_threads(), 'cases': []}
  out['compiled'], out['precision'] = args.compile, args.precision
  for b in map(int, args.batch_sizes.split(',')):
    for method in args.methods.split(','):
      game = Game(method, b, x, y, compiled=args.compile, precision=args.precision)
      game.round()  # warm-up (and compilation)
      times = []
      for _ in range(args.repeats):
        sync()
        t0 = time.perf_counter()
        game.round()
        sync()
        times.append(time.perf_counter() - t0)
      out['cases'].append({'method': method, 'batch_size': b, 'seconds_per_round': statistics.median(times)})
  print(json.dumps(out))


if __name__ == '__main__':
  main()
