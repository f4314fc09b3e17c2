"""Flax Linen models, looked up by name (SPEC §6)."""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from adjax import conv


class MLP(nn.Module):
  """ReLU multilayer perceptron on flattened inputs (MNIST student: 784-800-800-10)."""

  num_outputs: int = 10
  hidden: Sequence[int] = (800, 800)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = x.reshape(x.shape[0], -1)
    for width in self.hidden:
      h = nn.relu(nn.Dense(width)(h))
    return nn.Dense(self.num_outputs)(h)


class ConvSame(nn.Module):
  """Stride-1 'SAME' convolution with a scan-friendly backward pass (see ``adjax.conv``)."""

  features: int
  kernel_size: int = 5

  @nn.compact
  def __call__(self, x_NxHxWxI: jax.Array) -> jax.Array:
    k = self.kernel_size
    w = self.param('kernel', nn.initializers.lecun_normal(), (k, k, x_NxHxWxI.shape[-1], self.features))
    b = self.param('bias', nn.initializers.zeros_init(), (self.features,))
    return conv.conv_same(x_NxHxWxI, w) + b


class LeNet(nn.Module):
  """conv5x5x32, pool, conv5x5x64, pool, fc1024, fc(num_outputs): the MNIST teacher and discriminator."""

  num_outputs: int = 10
  channels: Sequence[int] = (32, 64)
  hidden: int = 1024

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = x if x.ndim == 4 else x[..., None]
    for c in self.channels:
      h = conv.max_pool_2x2(nn.relu(ConvSame(c)(h)))
    h = nn.relu(nn.Dense(self.hidden)(h.reshape(h.shape[0], -1)))
    return nn.Dense(self.num_outputs)(h)


class Heads(nn.Module):
  """``num_heads`` independent copies of a network, stacked: ``[B, H, K]`` scores."""

  network: str
  num_heads: int
  num_outputs: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    make = MODELS[self.network]
    return jnp.stack([make(num_outputs=self.num_outputs, name=f'h{i + 1}')(x) for i in range(self.num_heads)], axis=1)


MODELS = {'mlp': MLP, 'lenet': LeNet}


def parameter_count(params) -> int:
  return sum(p.size for p in jax.tree.leaves(params))
