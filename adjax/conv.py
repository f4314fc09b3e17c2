"""A stride-1 'SAME' convolution whose backward pass is emitted in NHWC/HWIO form.

XLA:CPU rewrites the backward convolutions that JAX's autodiff emits into its
fast layout only at the top level of a program; inside a ``lax.scan`` body
(where a whole round of updates lives) they run as a naive loop nest, 5-15x
slower (measured: 40 LeNet updates took 3.0 s in a scan against 0.49 s with this
convolution). Here both backward convolutions are ordinary NHWC x HWIO -> NHWC
convolutions, which take the fast path wherever they are.

Under ``jax.vmap`` (seeds, sweeps, gradient draws), JAX would turn a
convolution with batched kernels into one grouped convolution, which XLA:CPU
runs 3-5x slower than the separate convolutions. Each of the three
convolutions therefore carries its own batching rule: batched inputs with a
shared kernel fold into the batch; batched kernels run one member at a time
(``lax.map``), each exactly as it would alone. The rules sit below the
``custom_vjp``, so they are never differentiated.
"""

import functools

import jax
from jax import lax
import jax.numpy as jnp

_DN = ('NHWC', 'HWIO', 'NHWC')


@functools.cache
def _batchable_conv(padding: tuple[tuple[int, int], tuple[int, int]]):
  """NHWC x HWIO -> NHWC convolution with ``padding``, and its batching rule."""

  @jax.custom_batching.custom_vmap
  def conv(x_NxHxWxI, w_hxwxIxO):
    return lax.conv_general_dilated(x_NxHxWxI, w_hxwxIxO, (1, 1), padding, dimension_numbers=_DN)

  @conv.def_vmap
  def rule(axis_size: int, in_batched, x, w):
    x_batched, w_batched = in_batched
    if not w_batched:  # shared kernel: every member's examples form one batch
      y = conv(x.reshape(-1, *x.shape[2:]), w)
      return y.reshape(*x.shape[:2], *y.shape[1:]), True
    if not x_batched:
      x = jnp.broadcast_to(x, (axis_size, *x.shape))
    return lax.map(lambda xw: conv(*xw), (x, w)), True

  return conv


def summed_like(cotangent: jax.Array, primal: jax.Array) -> jax.Array:
  """A hand-written backward pass's ``cotangent``, summed over the manual mesh axes it varies over and ``primal``
  does not: what JAX's own autodiff does for an input replicated over them (inside ``shard_map``, e.g. a kernel
  shared by the devices of a data-parallel minibatch)."""
  varying = lambda a: jax.typeof(a).manual_axis_type.varying
  extra = varying(cotangent) - varying(primal)
  return jax.lax.psum(cotangent, tuple(sorted(extra))) if extra else cotangent


def _conv(x_NxHxWxI: jax.Array, w_hxwxIxO: jax.Array, padding) -> jax.Array:
  return _batchable_conv(padding)(x_NxHxWxI, w_hxwxIxO)


def _same_padding(w_hxwxIxO: jax.Array) -> tuple[tuple[int, int], tuple[int, int]]:
  kh, kw = w_hxwxIxO.shape[:2]
  if kh % 2 == 0 or kw % 2 == 0:
    raise ValueError(f'conv_same needs odd kernel sizes, got {kh}x{kw}')
  return (kh // 2, kh // 2), (kw // 2, kw // 2)


@jax.custom_vjp
def conv_same(x_NxHxWxI: jax.Array, w_hxwxIxO: jax.Array) -> jax.Array:
  """``lax.conv_general_dilated(x, w, (1, 1), 'SAME')`` in NHWC/HWIO, odd kernels."""
  with jax.named_scope('conv_forward'):  # named scopes: benchmarks/round_profile.py's categories
    return _conv(x_NxHxWxI, w_hxwxIxO, _same_padding(w_hxwxIxO))


def _conv_same_fwd(x, w):
  return conv_same(x, w), (x, w)


def _conv_same_bwd(residuals, g_NxHxWxO):
  x_NxHxWxI, w_hxwxIxO = residuals
  padding = _same_padding(w_hxwxIxO)
  # d/dx: correlate the cotangent with the spatially flipped, in/out-swapped kernel.
  with jax.named_scope('conv_backward_input'):
    w_flipped_hxwxOxI = jnp.flip(w_hxwxIxO, (0, 1)).transpose(0, 1, 3, 2)
    dx = _conv(g_NxHxWxO, w_flipped_hxwxOxI, padding)
  # d/dw: a convolution with batch and features swapped: the input's channels
  # are the batch, the examples the features, the cotangent the kernel.
  with jax.named_scope('conv_backward_kernel'):
    x_IxHxWxN = x_NxHxWxI.transpose(3, 1, 2, 0)
    g_HxWxNxO = g_NxHxWxO.transpose(1, 2, 0, 3)
    dw_Ixhxwx0 = _conv(x_IxHxWxN, g_HxWxNxO, padding)
    return summed_like(dx, x_NxHxWxI), summed_like(dw_Ixhxwx0.transpose(1, 2, 0, 3), w_hxwxIxO)


conv_same.defvjp(_conv_same_fwd, _conv_same_bwd)


def max_pool_2x2(x_NxHxWxC: jax.Array) -> jax.Array:
  """2x2 max pooling, stride 2, as a reshape and a max (no select-and-scatter)."""
  n, h, w, c = x_NxHxWxC.shape
  return x_NxHxWxC.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
