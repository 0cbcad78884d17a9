"""Data and vocabulary parallelism with ``jax.sharding`` on a 2-D ``data`` x ``model`` mesh.

The training engine places its arrays with these helpers and lets XLA's SPMD
partitioner insert the collectives, so the same code runs on one CPU, on
``--xla_force_host_platform_device_count=8`` simulated CPUs, on a GPU/TPU host
and on a multi-host slice:

- the batch dimension (rows of the training stream, rows of the RNN state) is
  split over the ``data`` axis;
- every vocabulary-sized parameter (embedding rows, output-layer columns, the
  adaptive softmax's head and tail columns) and its optimizer state is split over the ``model`` axis (``config.mesh.model`` devices), on
  the vocabulary dimension when it divides evenly, else on its other dimension;
- the recurrent layers' weights and scalars are replicated.

Why the vocabulary and not FSDP (every parameter split over ``data`` and
all-gathered for each use): in these models the vocabulary matrices are nearly
all the parameters (a 793k x 2048 embedding is 6.5 GB) while the recurrent
weights are small and used at every time step.  Split over the vocabulary, each
device computes the logits of its own columns and exchanges only [tokens]-sized
softmax sums; FSDP would move the whole output matrix every step.

Multi-host jobs set ``LM_JAX_DISTRIBUTED=1`` (or run under a cluster that
``jax.distributed.initialize()`` detects and set it there); every process then
runs the same command and sees the global mesh.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from jax.experimental import mesh_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from lm_jax.errors import ConfigError

DATA_AXIS = "data"
MODEL_AXIS = "model"
DISTRIBUTED_ENV = "LM_JAX_DISTRIBUTED"


_COORDINATOR_ENV = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


def _coordinator_from_env() -> dict:
  """``jax.distributed.initialize`` arguments from the ``JAX_*`` variables ({} when none is set)."""
  given = {k: os.environ[k].strip() for k in _COORDINATOR_ENV if os.environ.get(k, "").strip()}
  if not given:
    return {}  # A cluster jax detects by itself (SLURM, Cloud TPU, MPI, ...).
  missing = [k for k in _COORDINATOR_ENV if k not in given]
  if missing:
    raise ConfigError(
      f"{', '.join(missing)} not set while {', '.join(given)} is: a multi-process job without a "
      "cluster manager needs all of JAX_COORDINATOR_ADDRESS (host:port of process 0), "
      "JAX_NUM_PROCESSES and JAX_PROCESS_ID (0 .. N-1)."
    )
  try:
    num, pid = int(given["JAX_NUM_PROCESSES"]), int(given["JAX_PROCESS_ID"])
  except ValueError:
    raise ConfigError(
      f"JAX_NUM_PROCESSES={given['JAX_NUM_PROCESSES']!r} and JAX_PROCESS_ID="
      f"{given['JAX_PROCESS_ID']!r} must be integers."
    ) from None
  if not (num >= 1 and 0 <= pid < num):
    raise ConfigError(f"JAX_PROCESS_ID={pid} must be in 0..{num - 1} (JAX_NUM_PROCESSES={num}).")
  return {
    "coordinator_address": given["JAX_COORDINATOR_ADDRESS"],
    "num_processes": num,
    "process_id": pid,
  }


def initialize_distributed() -> bool:
  """Calls ``jax.distributed.initialize()`` once if ``$LM_JAX_DISTRIBUTED`` is 1; True if it did.

  The coordinator comes from ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES`` and
  ``JAX_PROCESS_ID`` when they are set (passed explicitly: jax does not read them), else
  from the cluster (SLURM, Cloud TPU, ...).  CPU processes exchange collectives over gloo.
  """
  flag = os.environ.get(DISTRIBUTED_ENV, "").strip().lower()
  if flag in ("", "0", "false", "no"):
    return False
  if flag not in ("1", "true", "yes"):
    raise ConfigError(f"${DISTRIBUTED_ENV}={flag!r}; set it to 1 for a multi-host job or unset it.")
  if not jax.distributed.is_initialized():
    kwargs = _coordinator_from_env()
    # Only the CPU client reads this; GPUs and TPUs use their own interconnect.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
      jax.distributed.initialize(**kwargs)
    except (ValueError, RuntimeError) as e:
      raise ConfigError(
        f"${DISTRIBUTED_ENV}=1 but jax.distributed.initialize failed ({' '.join(str(e).split())}); "
        "outside SLURM or Cloud TPU set JAX_COORDINATOR_ADDRESS (host:port of process 0), "
        "JAX_NUM_PROCESSES and JAX_PROCESS_ID on every process."
      ) from None
  return True


def barrier(name: str) -> None:
  """Waits until every process reaches ``name`` (a no-op in a single-process job)."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # Deferred: only multi-process jobs need it.

    multihost_utils.sync_global_devices(name)


def make_mesh(model: int = 1) -> Mesh:
  """A ``data`` x ``model`` mesh over every device of every process (``model`` from the config)."""
  devices = jax.devices()
  if model < 1 or len(devices) % model:
    raise ConfigError(
      f"mesh.model={model} does not divide the {len(devices)} devices ({jax.default_backend()}); "
      f"use a divisor of {len(devices)} (1 = data parallelism only)."
    )
  shape = (len(devices) // model, model)
  try:  # Topology-aware order (rings on TPU); any order is correct.
    grid = mesh_utils.create_device_mesh(shape, devices)
  except (ValueError, NotImplementedError, AssertionError):
    grid = np.asarray(devices).reshape(shape)
  return Mesh(grid, (DATA_AXIS, MODEL_AXIS))


def vocab_spec(
  shape: tuple[int, ...], vocab_sizes: frozenset[int], mesh: Mesh, uneven: bool = False
) -> PartitionSpec:
  """Where a parameter (or its optimizer-state twin) of ``shape`` lives on the ``model`` axis.

  An array with a vocabulary-sized dimension (one of ``vocab_sizes``) is split on
  that dimension when it divides evenly over the axis, else on its largest other
  dimension that does; anything else (and a 1-device axis) is replicated.  With
  ``uneven`` (a value inside a jitted function, which XLA pads) always on the
  vocabulary dimension.
  """
  n = mesh.shape[MODEL_AXIS]
  vocab_dims = [d for d, size in enumerate(shape) if size in vocab_sizes]
  if n == 1 or not vocab_dims:
    return PartitionSpec()
  if uneven:
    return PartitionSpec(*([None] * vocab_dims[0]), MODEL_AXIS)
  others = sorted((d for d in range(len(shape)) if d not in vocab_dims), key=lambda d: -shape[d])
  for d in vocab_dims + others:
    if shape[d] % n == 0:
      return PartitionSpec(*([None] * d), MODEL_AXIS)
  return PartitionSpec()


def scores_sharding(mesh: Mesh, ids: NamedSharding) -> NamedSharding | None:
  """Where an evaluation's [B, T, V] scores live: their rows split over the ``data`` axis
  when ``ids`` (the placement of the [S, B, T] grid) splits them, the vocabulary over the
  ``model`` axis; None on a 1-device model axis.

  The vocabulary axis is split even when V does not divide over the axis (XLA pads an
  intermediate; only arguments and outputs must divide).  Without this, an output matrix
  that ``vocab_spec`` had to split on its other dimension makes every device hold all
  rows' scores: 15.5 GiB per device for ``lstm_2048_512_lm1b``'s 128 x 20 evaluation
  rows at V = 793,471 on a model axis of 8.
  """
  if mesh.shape[MODEL_AXIS] == 1:
    return None
  rows = DATA_AXIS if DATA_AXIS in tuple(ids.spec) else None
  return NamedSharding(mesh, PartitionSpec(rows, None, MODEL_AXIS))


def check_divisible(batch_size: int, mesh: Mesh, field: str) -> None:
  """ConfigError unless ``batch_size`` splits evenly over the mesh's data axis."""
  n = mesh.shape[DATA_AXIS]
  if batch_size % n:
    raise ConfigError(
      f"{field}={batch_size} is not divisible by the {n} devices of the mesh's data axis "
      f"({jax.default_backend()}); use a multiple of {n} (e.g. {max(n, batch_size // n * n)}), "
      "or run on fewer devices (CUDA_VISIBLE_DEVICES, --xla_force_host_platform_device_count)."
    )


def replicated(mesh: Mesh) -> NamedSharding:
  """Every device holds the whole array."""
  return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh, axis: int = 0) -> NamedSharding:
  """Dimension ``axis`` split over the data axis, the others whole."""
  if mesh.shape[DATA_AXIS] == 1:
    # Splitting over one device is replication, and XLA labels such step outputs so;
    # the same label on the inputs keeps the train step compiled once.
    return replicated(mesh)
  return NamedSharding(mesh, PartitionSpec(*([None] * axis), DATA_AXIS))


def rows_sharding(mesh: Mesh, x, batch_size: int, axis: int = 0) -> NamedSharding:
  """Batch-sharded if ``x`` has ``batch_size`` rows on ``axis`` that split evenly, else replicated.

  Eval grids with batch 1 (Zaremba's and Mikolov's test pass) cannot be split;
  replicating them runs the same computation on every device.
  """
  n = mesh.shape[DATA_AXIS]
  if np.ndim(x) > axis and np.shape(x)[axis] == batch_size and batch_size % n == 0:
    return batch_sharded(mesh, axis)
  return replicated(mesh)


def put(x, sharding: NamedSharding) -> jax.Array:
  """A global array from a host value that every process holds whole (works across hosts)."""
  host = np.asarray(x)
  return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def put_segment(stream, pos: int, sharding: NamedSharding) -> dict[str, jax.Array]:
  """Segment ``pos`` of a ``TrainStream`` as global [B, T] arrays; each process cuts only the
  rows its devices hold (devices that share rows share one cut)."""
  shape = (stream.batch_size, stream.seq_len)
  cuts = {}

  def part(k: int):
    def cut(index):
      rows = index[0]
      key = (rows.start, rows.stop)
      if key not in cuts:
        cuts[key] = stream.segment(pos, rows)
      return cuts[key][k][:, index[1]]

    return jax.make_array_from_callback(shape, sharding, cut)

  return {"inputs": part(0), "targets": part(1)}


def put_tree(tree, shardings) -> Any:
  """``put`` over a pytree with a matching pytree of shardings (or one sharding for all)."""
  host = jax.tree.map(fetch, tree)
  if isinstance(shardings, NamedSharding):
    return jax.tree.map(lambda x: put(x, shardings), host)
  return jax.tree.map(put, host, shardings)


def fetch(x) -> np.ndarray:
  """The host value of an array, also when it spans processes (replicated or gathered)."""
  if not isinstance(x, jax.Array) or x.is_fully_addressable:
    return np.asarray(x)
  if x.sharding.is_fully_replicated:
    return np.asarray(x.addressable_data(0))
  from jax.experimental import multihost_utils  # Deferred: only multi-host runs need it.

  return np.asarray(multihost_utils.process_allgather(x, tiled=True))
