"""Data augmentation on the device, inside the compiled round: random small affine maps and horizontal flips."""

import jax
import jax.numpy as jnp
import numpy as np

AFFINE_CHUNK = 256  # images interpolated at once


def random_affine(key: jax.Array, x_BxHxWxC: jax.Array, rotation_deg: float, shift_px: float, zoom: float) -> jax.Array:
  """Each image rotated by U(±rotation_deg), shifted by U(±shift_px) pixels per axis and zoomed by U(1 ± zoom).

  Bilinear interpolation about the image centre; pixels from outside the image are 0.
  """
  b = x_BxHxWxC.shape[0]
  k_rot, k_shift, k_zoom = jax.random.split(key, 3)
  angle_B = jnp.deg2rad(rotation_deg) * jax.random.uniform(k_rot, (b,), minval=-1.0, maxval=1.0)
  shift_Bx2 = shift_px * jax.random.uniform(k_shift, (b, 2), minval=-1.0, maxval=1.0)
  scale_B = 1.0 + zoom * jax.random.uniform(k_zoom, (b,), minval=-1.0, maxval=1.0)
  return affine(x_BxHxWxC, angle_B, shift_Bx2, scale_B)


def affine(x_BxHxWxC: jax.Array, angle_B: jax.Array, shift_Bx2: jax.Array, scale_B: jax.Array) -> jax.Array:
  """Rotates each image by ``angle`` (radians), scales it by ``scale`` about its centre, then shifts it by
  ``shift`` = (rows, columns) pixels."""
  _, h, w, _ = x_BxHxWxC.shape
  centre = np.array([(h - 1) / 2, (w - 1) / 2], np.float32)
  rows, cols = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing='ij')
  grid_2xP = np.stack([rows.ravel(), cols.ravel()]) - centre[:, None]

  def one(image_HxWxC, angle, shift_2, scale):
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    inverse_2x2 = jnp.array([[cos, sin], [-sin, cos]]) / scale  # output pixel -> source pixel
    source_2xP = inverse_2x2 @ (grid_2xP - shift_2[:, None]) + centre[:, None]
    channels = [
      jax.scipy.ndimage.map_coordinates(image_HxWxC[..., c], list(source_2xP), order=1, mode='constant')
      for c in range(image_HxWxC.shape[-1])
    ]
    return jnp.stack(channels, -1).reshape(image_HxWxC.shape)

  # Chunks of images under lax.map: the interpolation's intermediates (several floats per pixel) of a
  # phase's thousands of images, times vmapped members, would otherwise all be live at once.
  return jax.lax.map(lambda args: one(*args), (x_BxHxWxC, angle_B, shift_Bx2, scale_B), batch_size=AFFINE_CHUNK)


def random_flip(key: jax.Array, x_BxHxWxC: jax.Array) -> jax.Array:
  """Each image mirrored left-right with probability 1/2 (CIFAR-10's standard augmentation)."""
  flip_B = jax.random.bernoulli(key, 0.5, (x_BxHxWxC.shape[0],))
  return jnp.where(flip_B[:, None, None, None], x_BxHxWxC[:, :, ::-1], x_BxHxWxC)


def is_identity(cfg) -> bool:
  return cfg.rotation == 0 and cfg.shift == 0 and cfg.zoom == 0 and not cfg.flip


def apply(key: jax.Array, x_BxHxWxC: jax.Array, cfg) -> jax.Array:
  """The config's augmentation (``augment`` fields: rotation, shift, zoom, flip) of a batch of images."""
  if cfg.rotation or cfg.shift or cfg.zoom:
    x_BxHxWxC = random_affine(key, x_BxHxWxC, cfg.rotation, cfg.shift, cfg.zoom)
  if cfg.flip:
    x_BxHxWxC = random_flip(jax.random.fold_in(key, 1), x_BxHxWxC)
  return x_BxHxWxC
