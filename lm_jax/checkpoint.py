"""Orbax checkpoints of the whole train state, with a strict, explained restore.

Each step directory holds two items: ``state`` (params, optimizer state, step,
PRNG key, RNN carry, plateau state) and ``meta`` (JSON: the config that shaped
the run, the vocabulary hash and every parameter's shape).  ``restore`` reads
``meta`` first and refuses -- with a diff -- a checkpoint written by a different
model, config or vocabulary, instead of loading part of it (orbax #2972).

Every completed save is hashed (sha256 of each file, in ``WORKDIR/checksums.json``).
Opening the checkpoints verifies them: a damaged or unhashed step (a flipped
byte, a truncated file, a save killed before its hash was written) is moved to
``WORKDIR/corrupt_checkpoints/`` with a warning naming it, and the run resumes
from the newest intact step; if no step is intact the run stops, saying so.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import resource
import shutil
import signal
import threading
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from lm_jax import parallel
from lm_jax.checkpoint_meta import check_meta, diff_meta, flat_config, run_meta
from lm_jax.errors import CheckpointError

CHECKSUMS = "checksums.json"  # In the workdir: sha256 of every file of every kept step.
# The meta functions are part of this module's interface (the training loop, sampling, tests).
__all__ = [
  "Checkpointer",
  "Preemption",
  "check_meta",
  "diff_meta",
  "flat_config",
  "restore_params",
  "run_meta",
]


def _file_hashes(step_dir: str) -> dict[str, str]:
  out = {}
  for root, _, files in os.walk(step_dir):
    for name in files:
      path = os.path.join(root, name)
      h = hashlib.sha256()
      with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
          h.update(block)
      out[os.path.relpath(path, step_dir)] = h.hexdigest()
  return dict(sorted(out.items()))


def _damage(step_dir: str, saved: dict[str, str] | None) -> str | None:
  """Why ``step_dir`` is not intact, or None.

  A step without a recorded checksum (a kill between orbax's atomic commit and the
  hash, or a lost ``checksums.json``) is complete by orbax's rename: it is used
  unverified, with a warning, and hashed again.
  """
  if saved is None:
    if not os.path.isfile(os.path.join(step_dir, "commit_success.txt")) and not os.listdir(
      step_dir
    ):
      return "it is empty"
    logging.warning("checkpoint %s has no recorded checksum; using it unverified", step_dir)
    return None
  now = _file_hashes(step_dir)
  for name in sorted(set(saved) | set(now)):
    if name not in now:
      return f"{name} is missing"
    if saved.get(name) != now[name]:
      return f"{name} changed after it was saved" if name in saved else f"{name} was added"
  return None


class Checkpointer:
  """``WORKDIR/checkpoints``: save every so often, keep the latest ``keep``, restore strictly."""

  def __init__(self, workdir: str, keep: int = 2, primary: bool = True):
    self.workdir = os.path.abspath(workdir)
    self.directory = os.path.join(self.workdir, "checkpoints")
    self.primary = primary
    if primary:
      self._verify()
    parallel.barrier("lm_jax:checkpoints-verified")  # Others open them once damaged ones are aside.
    options = ocp.CheckpointManagerOptions(
      preservation_policy=ocp.checkpoint_managers.LatestN(keep),
      create=True,
      # Saves write STEP.orbax-checkpoint-tmp-* and rename it when complete, so a killed
      # save never replaces the last good step; its leftover is removed here.
      cleanup_tmp_directories=True,
      # Saves are hashed at once anyway; synchronous saves fail in one place, not in threads.
      enable_async_checkpointing=False,
    )
    self.manager = ocp.CheckpointManager(
      self.directory, item_names=("state", "meta"), options=options
    )

  def _checksums(self) -> dict[str, dict[str, str]]:
    try:
      with open(os.path.join(self.workdir, CHECKSUMS), encoding="utf-8") as f:
        sums = json.load(f)
      return sums if isinstance(sums, dict) else {}
    except (OSError, ValueError):
      return {}  # Missing or unreadable: steps are used unverified (with a warning) and rehashed.

  def _write_checksums(self, sums: dict) -> None:
    path = os.path.join(self.workdir, CHECKSUMS)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
      json.dump(sums, f, indent=1, sort_keys=True)
    os.replace(path + ".tmp", path)

  def _verify(self) -> None:
    """Moves damaged steps aside (warning for each); CheckpointError if none is intact."""
    if not os.path.isdir(self.directory):
      return
    steps = sorted((int(n) for n in os.listdir(self.directory) if n.isdigit()), reverse=True)
    sums = self._checksums()
    bad = {
      s: why
      for s in steps
      if (why := _damage(os.path.join(self.directory, str(s)), sums.get(str(s))))
    }
    unhashed = [s for s in steps if str(s) not in sums and s not in bad]
    if unhashed:  # Hash what was used unverified, so the next restart checks it.
      sums = {
        **sums,
        **{str(s): _file_hashes(os.path.join(self.directory, str(s))) for s in unhashed},
      }
      self._write_checksums({k: v for k, v in sums.items() if k.isdigit() and int(k) not in bad})
    if not bad:
      return
    listing = "; ".join(f"step {s}: {why}" for s, why in bad.items())
    if len(bad) == len(steps):
      raise CheckpointError(
        f"no intact checkpoint in {self.directory} ({listing}); move that folder away to "
        "start the run over."
      )
    aside = os.path.join(self.workdir, "corrupt_checkpoints")
    os.makedirs(aside, exist_ok=True)
    for s, why in bad.items():
      dest = os.path.join(aside, f"{s}-{time.strftime('%Y%m%d-%H%M%S')}")
      shutil.move(os.path.join(self.directory, str(s)), dest)
      logging.warning("checkpoint step %d is damaged (%s); moved it to %s", s, why, dest)
    self._write_checksums({k: v for k, v in sums.items() if k.isdigit() and int(k) not in bad})
    logging.warning(
      "resuming from step %d, the newest intact checkpoint", max(set(steps) - set(bad))
    )

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def save(self, step: int, state, meta: dict) -> None:
    """Saves a host copy of ``state`` and hashes it once it is on disk.

    Arrays that span processes stay jax.Arrays: each process writes its shards.
    """
    host_state = jax.tree.map(
      lambda x: np.asarray(x) if getattr(x, "is_fully_addressable", True) else x, state
    )
    _check_room(self.directory, sum(x.nbytes for x in jax.tree.leaves(host_state)))
    self.manager.save(
      step,
      args=ocp.args.Composite(
        state=ocp.args.StandardSave(host_state), meta=ocp.args.JsonSave(meta)
      ),
    )
    self.manager.wait_until_finished()
    if self.primary:
      on_disk = {n for n in os.listdir(self.directory) if n.isdigit()}
      sums = {k: v for k, v in self._checksums().items() if k in on_disk}
      sums[str(step)] = _file_hashes(os.path.join(self.directory, str(step)))
      self._write_checksums(sums)

  def restore(self, abstract_state, meta: dict, step: int | None = None):
    """The state at ``step`` (default: latest), after checking ``meta`` matches exactly."""
    step = self.latest_step() if step is None else step
    if step is None:
      raise CheckpointError(f"no checkpoint in {self.directory}; train first (experiments.train).")
    saved = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    check_meta(saved, meta, step, self.directory)
    try:
      restored = self.manager.restore(
        step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state))
      )["state"]
    except (ValueError, KeyError, TypeError) as e:
      raise CheckpointError(
        f"checkpoint step {step} in {self.directory} does not match this "
        f"train state ({e}); it may come from another lm_jax version."
      ) from None
    return restored

  def wait(self) -> None:
    """Blocks until pending saves are on disk (call before exit)."""
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()


def _check_room(directory: str, nbytes: int) -> None:
  """OSError before a save that cannot fit: the disk's free space or the process's file-size
  limit (``ulimit -f``).  Orbax fails later and noisily, in its writer threads."""
  os.makedirs(directory, exist_ok=True)
  free = shutil.disk_usage(directory).free
  if free < nbytes + (1 << 20):
    raise OSError(errno.ENOSPC, f"{free} bytes free, a checkpoint needs about {nbytes}", directory)
  limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
  if limit != resource.RLIM_INFINITY and limit < nbytes:
    raise OSError(
      errno.EFBIG,
      f"files are limited to {limit} bytes (ulimit -f), a checkpoint needs about {nbytes}",
      directory,
    )


def restore_params(workdir: str, abstract_params, meta: dict):
  """``(step, params)`` of the newest intact checkpoint, parameters only (no optimizer state).

  Reads without taking the run's lock or writing anything: sampling works beside a
  running job.  Steps are checked against their checksums first.
  """
  directory = os.path.join(os.path.abspath(workdir), "checkpoints")
  steps = (
    sorted((int(n) for n in os.listdir(directory) if n.isdigit()), reverse=True)
    if os.path.isdir(directory)
    else []
  )
  if not steps:
    raise CheckpointError(f"no checkpoint in {directory}; train first (experiments.train).")
  one = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  target = jax.tree.map(  # Saved on any mesh, read onto this process's first device.
    lambda x: (
      x if getattr(x, "sharding", None) else jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=one)
    ),
    abstract_params,
  )
  try:
    with open(os.path.join(os.path.dirname(directory), CHECKSUMS), encoding="utf-8") as f:
      sums = json.load(f)
  except (OSError, ValueError):
    sums = {}
  problems = []
  for step in steps:
    step_dir = os.path.join(directory, str(step))
    why = _damage(step_dir, sums.get(str(step)))
    if why:
      problems.append(f"step {step}: {why}")
      continue
    if problems:
      logging.warning(
        "using checkpoint step %d; newer ones are damaged (%s)", step, "; ".join(problems)
      )
    saved = ocp.Checkpointer(ocp.JsonCheckpointHandler()).restore(os.path.join(step_dir, "meta"))
    check_meta(saved, meta, step, directory)
    try:
      restored = ocp.PyTreeCheckpointer().restore(
        os.path.join(step_dir, "state"),
        args=ocp.args.PyTreeRestore(item={"params": target}, partial_restore=True),
      )
    except (ValueError, KeyError, TypeError) as e:
      raise CheckpointError(
        f"checkpoint step {step} in {directory} does not hold these parameters ({e})."
      ) from None
    return step, restored["params"]
  raise CheckpointError(
    f"no intact checkpoint in {directory} ({'; '.join(problems)}); "
    "retrain, or restore the folder from a backup."
  )


class Preemption:
  """Turns SIGTERM into "save a checkpoint after this step and exit" (main thread only)."""

  def __init__(self):
    self.requested, self._previous = False, None

  def __enter__(self) -> Preemption:
    if threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    return self

  def _handle(self, signum, frame) -> None:
    logging.warning("SIGTERM: saving a checkpoint after this step, then exiting.")
    self.requested = True

  def __exit__(self, *exc) -> None:
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
