"""What ran a job: library versions, Python, platform, devices, XLA flags and host allocator (``run.json``)."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata

from lm_jax import host_memory

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
  """Library versions, Python, devices and XLA flags of this process.

  A job that never started jax (an n-gram run: numpy on the host CPU) records that
  device rather than starting jax (about 1.5 s) to list devices it does not use.
  """
  jax = sys.modules.get("jax")
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
    "devices": [str(d) for d in jax.devices()] if jax else [f"host CPU ({_cpu()}), numpy"],
    "backend": jax.default_backend() if jax else "numpy",
    "process_count": jax.process_count() if jax else 1,
    "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
    "host_malloc": host_memory.setting(),
  }


def _cpu() -> str:
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()
