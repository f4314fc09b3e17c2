"""Flax Linen models, looked up by name (SPEC §6)."""

from collections.abc import Callable, Sequence
import dataclasses
import functools
import inspect

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from adjax import conv
from adjax import registry


@jax.custom_vjp
def _matmul(x_BxI: jax.Array, w_IxO: jax.Array) -> jax.Array:
  return x_BxI @ w_IxO


def _matmul_fwd(x_BxI, w_IxO):
  return x_BxI @ w_IxO, (x_BxI, w_IxO)


def _matmul_bwd(residuals, g_BxO):
  x_BxI, w_IxO = residuals
  # The kernel's gradient contracted over the batch straight into the kernel's [I, O] layout: JAX's own transpose
  # rule emits it as [O, I] and a transpose, which XLA:CPU then copies on every update (benchmarks/round_profile.py).
  dx = conv.summed_like(jnp.einsum('bo,io->bi', g_BxO, w_IxO), x_BxI)
  return dx, conv.summed_like(jnp.einsum('bi,bo->io', x_BxI, g_BxO), w_IxO)


_matmul.defvjp(_matmul_fwd, _matmul_bwd)


class Dense(nn.Module):
  """``nn.Dense`` (same parameters, names and initialisation) whose kernel gradient comes out in the kernel's
  layout. JAX's transpose rule gives it as ``[O, I]`` and a transpose, which XLA:CPU copied on every update (the
  ADIM round was 1.4x slower)."""

  features: int

  @nn.compact
  def __call__(self, x_BxI: jax.Array) -> jax.Array:
    w = self.param('kernel', nn.initializers.lecun_normal(), (x_BxI.shape[-1], self.features))
    return _matmul(x_BxI, w) + self.param('bias', nn.initializers.zeros_init(), (self.features,))


class MLP(nn.Module):
  """ReLU multilayer perceptron on flattened inputs (MNIST student: 784-800-800-10)."""

  num_outputs: int = 10
  hidden: Sequence[int] = (800, 800)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = x.reshape(x.shape[0], -1)
    for width in self.hidden:
      h = nn.relu(Dense(width)(h))
    return Dense(self.num_outputs)(h)


class ConvSame(nn.Module):
  """Stride-1 'SAME' convolution with a scan-friendly backward pass (see ``adjax.conv``)."""

  features: int
  kernel_size: int = 5
  use_bias: bool = True

  @nn.compact
  def __call__(self, x_NxHxWxI: jax.Array) -> jax.Array:
    k = self.kernel_size
    w = self.param('kernel', nn.initializers.lecun_normal(), (k, k, x_NxHxWxI.shape[-1], self.features))
    y = conv.conv_same(x_NxHxWxI, w)
    if self.use_bias:
      y = y + self.param('bias', nn.initializers.zeros_init(), (self.features,))
    return y


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
    h = nn.relu(Dense(self.hidden)(h.reshape(h.shape[0], -1)))
    return Dense(self.num_outputs)(h)


class Heads(nn.Module):
  """``num_heads`` independent copies of a network, stacked: ``[B, H, K]`` scores (the ADIM discriminator).

  ``network``: a name in ``MODELS`` (made with ``num_outputs``, as
  ``register_model`` documents), or a user's Linen module whose outputs are
  ``[B, K]`` scores; either is cloned once per head.
  """

  network: str | nn.Module
  num_heads: int
  num_outputs: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if isinstance(self.network, str):
      network = MODELS[self.network].make(num_outputs=self.num_outputs)
    else:
      network = self.network
    heads = [network.clone(name=f'h{i + 1}', parent=self) for i in range(self.num_heads)]
    return jnp.stack([head(x) for head in heads], axis=1)


#: ``config.precision``: the dtypes a player's network may compute in (``compute_in``).
PRECISIONS = ('float32', 'bfloat16')


def compute_in(dtype, tree):
  """``tree`` (parameters, inputs) with its floating arrays cast to ``dtype``; integers (token ids) as they are.

  Mixed precision as JAX training code does it: parameters and optimizer
  states stay float32 and are cast where a network is applied, so each
  network computes in ``dtype`` whatever module it is (Linen promotes its
  inputs and parameters to a common dtype), and the gradient comes back in
  float32 through the cast.
  """
  dtype = jnp.dtype(dtype)
  cast = lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) and a.dtype != dtype else a
  return jax.tree.map(cast, tree)


def parameter_count(params) -> int:
  return sum(p.size for p in jax.tree.leaves(params))


# The LeNet-style CIFAR-10 student, 1.04M parameters on 32x32x3: conv5x5x32, pool, conv5x5x64, pool, fc240.
CifarStudent = functools.partial(LeNet, channels=(32, 64), hidden=240)


class DenseNet(nn.Module):
  """DenseNet-BC (Huang et al. 2017) for 32x32 images: three dense blocks of bottleneck layers.

  GroupNorm stands in for batch norm so that a player stays a pure parameter
  pytree (no running statistics); it has the same parameters per channel.
  ``depth=250, growth=24`` is the paper-size teacher (15.3M parameters);
  ``depth=40, growth=12`` a small one that trains on a CPU.
  """

  num_outputs: int = 10
  depth: int = 40
  growth: int = 12
  compression: float = 0.5

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    layers_per_block = (self.depth - 4) // 6
    k = self.growth
    norm = lambda h: nn.relu(nn.GroupNorm(num_groups=None, group_size=1)(h))
    h = ConvSame(2 * k, kernel_size=3, use_bias=False)(x)
    for block in range(3):
      for _ in range(layers_per_block):
        y = ConvSame(4 * k, kernel_size=1, use_bias=False)(norm(h))
        y = ConvSame(k, kernel_size=3, use_bias=False)(norm(y))
        h = jnp.concatenate([h, y], axis=-1)
      if block < 2:
        h = ConvSame(int(h.shape[-1] * self.compression), kernel_size=1, use_bias=False)(norm(h))
        h = nn.avg_pool(h, (2, 2), (2, 2))
    h = jnp.mean(norm(h), axis=(1, 2))
    return nn.Dense(self.num_outputs)(h)


class TextEncoder(nn.Module):
  """An LSTM over the word embeddings of padded token ids ``[B, L]`` (0 = padding): its hidden state after each
  text's last word, ``[B, hidden]``. ``nn.RNN`` scans the words (one compiled loop, not a Python one)."""

  vocab_size: int
  embed_dim: int = 64
  hidden: int = 64
  embeddings: str = ''  # a .npy [vocab_size, embed_dim] of pretrained word vectors; '' = learned from scratch

  @nn.compact
  def __call__(self, tokens_BxL: jax.Array) -> jax.Array:
    init = nn.initializers.normal(0.1) if not self.embeddings else _pretrained(self.embeddings)
    words_BxLxE = nn.Embed(self.vocab_size, self.embed_dim, embedding_init=init)(tokens_BxL)
    used_BxL = tokens_BxL > 0
    length = tokens_BxL.shape[1]
    lengths_B = jnp.where(used_BxL.any(-1), length - jnp.argmax(used_BxL[:, ::-1], axis=-1), 1)
    cell = nn.OptimizedLSTMCell(self.hidden)
    carry = cell.initialize_carry(jax.random.key(0), words_BxLxE[:, 0].shape)
    # Zeros made from the inputs: the initial state varies along whatever the inputs vary along (the members of a
    # shard_map), as the scan's carry must.
    carry = jax.tree.map(lambda c: c + jnp.zeros_like(words_BxLxE[:, 0, :1]), carry)
    rnn = nn.RNN(cell, return_carry=True)
    (_, h_BxH), _ = rnn(words_BxLxE, initial_carry=carry, seq_lengths=lengths_B)
    return h_BxH


def _pretrained(path: str):
  def init(key, shape, dtype=jnp.float32):
    del key
    table = np.load(path)
    if table.shape != tuple(shape):
      raise ValueError(
        f'text.embeddings={path!r} holds {table.shape}, the model needs [vocab_size, embed_dim] = {shape}'
      )
    return jnp.asarray(table, dtype)

  return init


class TextImageMLP(nn.Module):
  """The tag task's teacher and discriminator network (SPEC §6): an MLP on the element-wise product of the
  projected image features and the projected LSTM encoding of the text. Takes the pair ``(x, tokens)``."""

  num_outputs: int
  vocab_size: int
  embed_dim: int = 64
  hidden: int = 64
  width: int = 256
  embeddings: str = ''

  @nn.compact
  def __call__(self, inputs) -> jax.Array:
    x, tokens_BxL = inputs
    image_BxW = nn.Dense(self.width)(x.reshape(x.shape[0], -1))
    text_BxW = nn.Dense(self.width)(
      TextEncoder(self.vocab_size, self.embed_dim, self.hidden, self.embeddings)(tokens_BxL)
    )
    h_BxW = nn.relu(nn.Dense(self.width)(image_BxW * text_BxW))
    return nn.Dense(self.num_outputs)(h_BxW)


def image_shapes(divisible_by: int = 1, ranks=(2, 3)):
  """An input contract: examples of rank ``ranks`` whose height and width are multiples of ``divisible_by``."""
  shapes = ' or '.join({2: '[H, W]', 3: '[H, W, C]'}[r] for r in ranks)
  multiple = f' with H and W divisible by {divisible_by}' if divisible_by > 1 else ''

  def accepts(example_shape: tuple[int, ...]) -> str | None:
    ok = len(example_shape) in ranks and all(d % divisible_by == 0 for d in example_shape[:2])
    return None if ok else f'needs images of shape {shapes}{multiple}, got examples of shape {example_shape}'

  return accepts


@dataclasses.dataclass(frozen=True)
class Model:
  """A network by name (``config.<player>.model``): how to make it and the inputs it takes.

  Attributes:
    make: ``make(num_outputs=K)`` returns a Linen module giving ``[B, K]``
      scores. A model that ``reads_text`` is made with the data's vocabulary
      and the config's ``text`` group as well: ``make(num_outputs=K,
      vocab_size=V, embed_dim=..., hidden=..., width=..., embeddings=...)``.
    reads_text: it takes ``(image, token ids)``, the privileged text (so
      never the student's model).
    accepts: ``example_shape -> None`` or why it cannot take examples of
      that shape; checked before anything is compiled. None: any shape.
  """

  make: Callable[..., nn.Module]
  reads_text: bool = False
  accepts: Callable[[tuple[int, ...]], str | None] | None = None


#: The built-in and registered networks by name (``config.<player>.model``).
MODELS: dict[str, Model] = {
  'mlp': Model(MLP),
  'lenet': Model(LeNet, accepts=image_shapes(4)),  # two 2x2 poolings
  'text_mlp': Model(TextImageMLP, reads_text=True),
  'cifar_student': Model(CifarStudent, accepts=image_shapes(4)),
  'densenet': Model(DenseNet, accepts=image_shapes(1, ranks=(3,))),  # DenseNet-BC 40, growth 12: 0.18M, trains on a CPU
  'densenet_paper': Model(functools.partial(DenseNet, depth=250, growth=24), accepts=image_shapes(1, ranks=(3,))),
}


def register_model(
  name: str,
  make: Callable[..., nn.Module],
  *,
  reads_text: bool = False,
  accepts: Callable[[tuple[int, ...]], str | None] | None = None,
) -> None:
  """Adds ``config.<player>.model=name``: ``make(num_outputs=K)`` returns a Linen module giving ``[B, K]`` scores
  (``Model`` says what ``reads_text`` and ``accepts`` declare).

  A network used once, from Python, needs no name: pass it to
  ``adjax.train_and_evaluate(..., nets={player: module})``.
  """
  model = Model(make, reads_text, accepts)
  if not registry.is_new('model', MODELS, name, model):
    return
  takes = {'num_outputs': 1, **(dict.fromkeys(TEXT_ARGUMENTS, 1) if reads_text else {})}
  try:
    inspect.signature(make).bind(**takes)
  except TypeError as e:
    raise ValueError(f'model {name!r}: make must take make({", ".join(f"{k}=..." for k in takes)}) ({e})') from None
  except ValueError:  # a callable without a signature (a builtin): taken as it is
    pass
  MODELS[name] = model


# What a model that reads text is made with besides ``num_outputs``: the vocabulary and the ``text`` group's fields.
TEXT_ARGUMENTS = ('vocab_size', 'embed_dim', 'hidden', 'width', 'embeddings')


def make(name: str, num_outputs: int, vocab_size: int = 0, text=None) -> nn.Module:
  """The registered model ``name`` giving ``[B, num_outputs]``; one that reads text gets ``vocab_size`` and the
  ``text`` group's fields (``embed_dim``, ``hidden``, ``width``, ``embeddings``)."""
  model = MODELS[name]
  if not model.reads_text:
    return model.make(num_outputs=num_outputs)
  return model.make(num_outputs=num_outputs, vocab_size=vocab_size, **dict(text or {}))
