"""Orbax checkpoints of the whole train state, with a strict, explained restore.

Each step directory holds two items: ``state`` (params, optimizer state, step,
PRNG key, RNN carry, plateau state) and ``meta`` (JSON: the config that shaped
the run, the vocabulary hash and every parameter's shape).  ``restore`` reads
``meta`` first and refuses -- with a diff -- a checkpoint written by a different
model, config or vocabulary, instead of loading part of it (orbax #2972).
"""

from __future__ import annotations

import json
import os
import signal
import threading
from typing import Any

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from lm_jax.data.vocab import Vocab
from lm_jax.errors import CheckpointError

# Config keys that may change between a run and its resumption: they affect
# logging, storage or extra outputs, not the trained numbers.  (eval.batch_size
# is not here: it changes the per-epoch validation loss that the plateau
# schedule reacts to; data.dir may move, but the corpus checksums must match.)
RESUMABLE_KEYS = frozenset({
    "train.log_every_steps", "train.checkpoint_every_steps", "train.keep_checkpoints",
    "eval.dump_tokens", "data.dir", "data.download",
})
# Keys that older checkpoints did not record (they were resumable then): a
# checkpoint without them restores; one that records a different value does not.
UNRECORDED_BEFORE = frozenset({"config.eval.batch_size"})


def flat_config(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """``{"model.hidden_dim": 200, ...}`` with JSON values, minus the resumable keys."""
  out = {}

  def walk(prefix: str, d: dict) -> None:
    for k, v in d.items():
      key = f"{prefix}{k}"
      if isinstance(v, dict):
        walk(key + ".", v)
      elif key not in RESUMABLE_KEYS:
        out[key] = v

  walk("", config.to_dict())
  return json.loads(json.dumps(out, default=str))  # Tuples become lists, as they come back.


def param_shapes(params) -> dict[str, str]:
  """``{"layers/0/W_h": "float32[200,200]", ...}``."""
  leaves = jax.tree_util.tree_flatten_with_path(params)[0]
  return {"/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path):
          f"{np.dtype(x.dtype).name}[{','.join(map(str, x.shape))}]" for path, x in leaves}


def run_meta(config: ml_collections.ConfigDict, vocab: Vocab, params,
             corpus_checksums: dict | None = None) -> dict:
  """What a checkpoint must agree on with the run that restores it.

  ``corpus_checksums`` (the training run's) are compared when both sides have
  them: the same vocabulary can come from a different text.
  """
  meta = {"config": flat_config(config), "vocab_hash": vocab.hash, "vocab_size": vocab.size,
          "params": param_shapes(params)}
  if corpus_checksums is not None:
    meta["corpus_checksums"] = dict(corpus_checksums)
  return meta


def diff_meta(saved: dict, current: dict) -> list[str]:
  """One line per difference: ``key: <checkpoint> (checkpoint) != <this run> (this run)``."""
  lines = []
  for section in ("vocab_hash", "vocab_size", "corpus_checksums"):
    if section == "corpus_checksums" and (section not in saved or section not in current):
      continue  # Sampling restores without reading the corpus.
    if saved.get(section) != current.get(section):
      lines.append(f"{section}: {saved.get(section)!r} (checkpoint) != {current.get(section)!r} (this run)")
  for section in ("config", "params"):
    a, b = saved.get(section, {}), current.get(section, {})
    for k in sorted(set(a) | set(b)):
      if k not in a and f"{section}.{k}" in UNRECORDED_BEFORE:
        continue
      if a.get(k, "<absent>") != b.get(k, "<absent>"):
        lines.append(f"{section} {k}: {a.get(k, '<absent>')!r} (checkpoint) != "
                     f"{b.get(k, '<absent>')!r} (this run)")
  return lines


class Checkpointer:
  """``WORKDIR/checkpoints``: save every so often, keep the latest ``keep``, restore strictly."""

  def __init__(self, workdir: str, keep: int = 2, read_only: bool = False):
    self.directory = os.path.join(os.path.abspath(workdir), "checkpoints")
    options = ocp.CheckpointManagerOptions(
        preservation_policy=ocp.checkpoint_managers.LatestN(keep), create=not read_only,
        read_only=read_only,
        # Saves write STEP.orbax-checkpoint-tmp-* and rename it when complete, so a killed
        # save never replaces the last good step; its leftover is removed here.
        cleanup_tmp_directories=not read_only)
    self.manager = ocp.CheckpointManager(self.directory, item_names=("state", "meta"),
                                         options=options)

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def save(self, step: int, state, meta: dict) -> None:
    """Starts an asynchronous save of a host copy (later steps may reuse the device buffers).

    Arrays that span processes stay jax.Arrays: each process writes its shards, and
    orbax copies them to host before ``save`` returns.
    """
    host_state = jax.tree.map(
        lambda x: np.asarray(x) if getattr(x, "is_fully_addressable", True) else x, state)
    self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(host_state), meta=ocp.args.JsonSave(meta)))

  def restore(self, abstract_state, meta: dict, step: int | None = None):
    """The state at ``step`` (default: latest), after checking ``meta`` matches exactly."""
    step = self.latest_step() if step is None else step
    if step is None:
      raise CheckpointError(f"no checkpoint in {self.directory}; train first (experiments.train).")
    saved = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    diffs = diff_meta(saved, meta)
    if diffs:
      raise CheckpointError(
          f"the checkpoint at step {step} in {self.directory} was written by a different run; "
          "refusing a partial or mismatched restore. Differences:\n  " + "\n  ".join(diffs) +
          "\nUse a fresh --workdir for a new configuration, or restore with the original config.")
    try:
      restored = self.manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract_state)))["state"]
    except (ValueError, KeyError, TypeError) as e:
      raise CheckpointError(f"checkpoint step {step} in {self.directory} does not match this "
                            f"train state ({e}); it may come from another lm_jax version.") from None
    return restored

  def wait(self) -> None:
    """Blocks until pending saves are on disk (call before exit)."""
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()


def rewind_metrics(path: str, step: int) -> None:
  """Drops the records a resumed run writes again: steps after ``step`` and final evaluations.

  Kept lines stay byte-identical, so a resumed run's ``metrics.jsonl`` equals an
  uninterrupted one's (wall-clock fields aside).
  """
  try:
    with open(path, encoding="utf-8") as f:
      lines = [l for l in f if l.strip()]
  except FileNotFoundError:
    return
  keep = []
  for line in lines:
    try:
      rec = json.loads(line)
    except json.JSONDecodeError:
      continue  # A line torn by a kill mid-write: the resumed run writes it again.
    if rec.get("step", 0) <= step and not rec.get("final"):
      keep.append(line if line.endswith("\n") else line + "\n")
  with open(path, "w", encoding="utf-8") as f:
    f.writelines(keep)


class Preemption:
  """Turns SIGTERM into "save a checkpoint after this step and exit" (main thread only)."""

  def __init__(self):
    self.requested, self._previous = False, None

  def __enter__(self) -> "Preemption":
    if threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    return self

  def _handle(self, signum, frame) -> None:
    logging.warning("SIGTERM: saving a checkpoint after this step, then exiting.")
    self.requested = True

  def __exit__(self, *exc) -> None:
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
