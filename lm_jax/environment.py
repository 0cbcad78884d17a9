"""What ran a job: library versions, Python, platform, devices and XLA flags (``run.json``)."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata

_PACKAGES = (
  "lm_jax",
  "jax",
  "jaxlib",
  "flax",
  "optax",
  "orbax-checkpoint",
  "numpy",
  "ml-collections",
  "absl-py",
)


def environment() -> dict:
  """Library versions, Python, devices and XLA flags of this process."""
  import jax  # Deferred: importing jax is slow and not every caller needs it.

  versions = {}
  for p in _PACKAGES:
    try:
      versions[p] = metadata.version(p)
    except metadata.PackageNotFoundError:
      versions[p] = None
  return {
    "python": sys.version.split()[0],
    "platform": platform.platform(),
    "versions": versions,
    "devices": [str(d) for d in jax.devices()],
    "backend": jax.default_backend(),
    "process_count": jax.process_count(),
    "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
  }
