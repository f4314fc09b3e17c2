"""The one place adjax touches orbax: save and restore a run's arrays and its JSON metadata."""

import os

from absl import logging
import jax
import numpy as np
import orbax.checkpoint as ocp


def _not_orbax(record) -> bool:
  return '/orbax/' not in record.pathname


class Checkpoints:
  """Per-round checkpoints of a pytree of arrays plus a JSON-able dict, keeping the last two."""

  def __init__(self, directory: str):
    logging.get_absl_handler().addFilter(_not_orbax)  # orbax logs each save at INFO
    options = ocp.CheckpointManagerOptions(max_to_keep=2, create=True, enable_async_checkpointing=False)
    self._manager = ocp.CheckpointManager(os.path.abspath(directory), options=options, item_names=('arrays', 'meta'))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, arrays, meta: dict) -> None:
    # A host copy: the device buffers are donated to the next round.
    host = jax.tree.map(np.asarray, jax.device_get(arrays))
    self._manager.save(
      step, args=ocp.args.Composite(arrays=ocp.args.StandardSave(host), meta=ocp.args.JsonSave(meta)), force=True
    )
    self._manager.wait_until_finished()

  def restore(self, step: int, like):
    """Arrays shaped like ``like`` (a pytree of arrays or ShapeDtypeStructs), and the metadata."""
    abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), like)
    out = self._manager.restore(
      step, args=ocp.args.Composite(arrays=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore())
    )
    return out['arrays'], out['meta']

  def close(self) -> None:
    self._manager.close()


def save_tree(path: str, tree) -> None:
  """One pytree of arrays to ``path`` (a directory orbax writes atomically)."""
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(os.path.abspath(path), jax.tree.map(np.asarray, jax.device_get(tree)))
  checkpointer.wait_until_finished()
  checkpointer.close()


def load_tree(path: str, like):
  """The pytree saved at ``path``, shaped like ``like``."""
  abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), like)
  checkpointer = ocp.StandardCheckpointer()
  tree = checkpointer.restore(os.path.abspath(path), abstract)
  checkpointer.close()
  return tree
