"""Large host buffers reused from step to step instead of mapped afresh (glibc malloc).

XLA's CPU runtime allocates a training step's large temporaries and outputs (a block
of logits, a weight gradient, the updated parameters) from its worker threads.  glibc
gives such a thread its own arena, whose heaps hold at most 64 MiB, so each larger
buffer is a fresh ``mmap``: the kernel faults and zeroes every page on first touch and
unmaps it when the buffer is freed, on every step.  On the benchmark machine a 152 MB
elementwise output took 72 ms in a fresh buffer against 7 ms in place, and the
adaptive-softmax step at V = 793,471 trained 1,016 tokens/s with freed memory reused
against 657 without (BENCHMARKS.md, large vocabulary).

``keep_freed_memory()`` sets glibc's allocator, before the jax backend starts its
threads, to one arena (``M_ARENA_MAX`` 1), large blocks from the heap rather than from
``mmap`` (``M_MMAP_MAX`` 0) and no giving back of a free heap top under 2 GiB
(``M_TRIM_THRESHOLD``): the next step reuses the blocks the last one freed.  The
price is that the process keeps its peak heap; a training process holds its peak
every step anyway.  The same effect for any program: ``MALLOC_ARENA_MAX=1
MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647``.

Training calls ``for_training(model.output)``: only the output layers whose step makes
no [rows x vocabulary] buffer (``adaptive``, ``sampled``) keep freed memory.  A heap
that keeps every freed block fragments when the blocks are gigabytes: with the full
softmax at V = 793,471 (a 2 GB block of logits per step) the process peaked at 18.7 GB
resident against 10.8 GB with glibc's default, and one such run was killed for memory
at 24 GB, while the adaptive step peaked at 7.16 GB against 7.11 GB.  At Penn Treebank
size a full softmax's block of logits (700 x 10,000 floats, 28 MB) is under the 32 MiB
to which glibc's own mmap threshold rises.

Left alone (and said so in ``run.json``): ``LM_JAX_HOST_MALLOC=system``, malloc
settings already in the environment, an allocator in ``LD_PRELOAD``, and any C library
but glibc.  Called after the backend has started, it changes only later arenas; the
launchers call it first.  N-gram jobs do not call it: their memory budget counts the
heap they free.
"""

from __future__ import annotations

import ctypes
import os
import platform

OPT_OUT = "LM_JAX_HOST_MALLOC"
# mallopt parameters, from glibc's malloc.h.
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8
_TRIM = 2**31 - 1  # mallopt takes an int: the largest free heap top kept is 2 GiB.
_ENV = (
  "MALLOC_ARENA_MAX",
  "MALLOC_MMAP_MAX_",
  "MALLOC_MMAP_THRESHOLD_",
  "MALLOC_TRIM_THRESHOLD_",
  "MALLOC_TOP_PAD_",
)
ENV_SETTINGS = {
  "MALLOC_ARENA_MAX": "1",
  "MALLOC_MMAP_MAX_": "0",
  "MALLOC_TRIM_THRESHOLD_": str(_TRIM),
}

_setting: str | None = None


def keep_freed_memory() -> str:
  """Sets glibc's malloc to reuse freed large blocks (see the module docstring); says what it did."""
  global _setting
  if _setting is None:
    _setting = _apply()
  return _setting


# The output layers whose training step makes no [rows x vocabulary] buffer.
KEEPING_OUTPUTS = ("adaptive", "sampled")


def for_training(output: str) -> str:
  """``keep_freed_memory()`` for a model whose output layer is in ``KEEPING_OUTPUTS``;
  glibc's default for the others (see the module docstring).  Says what was done."""
  global _setting
  if output in KEEPING_OUTPUTS:
    return keep_freed_memory()
  if _setting is None:
    _setting = (
      f"system default (model.output={output}: blocks of rows x vocabulary would fragment "
      "a heap that keeps them)"
    )
  return _setting


def setting() -> str:
  """What ``keep_freed_memory`` or ``for_training`` did in this process (for ``run.json``)."""
  return _setting or "system default (not changed by lm_jax)"


def environ_without_settings() -> dict[str, str]:
  """This process's environment less every malloc setting and the opt-out: a child process
  started with it has glibc's default allocator until it calls ``keep_freed_memory``."""
  return {k: v for k, v in os.environ.items() if k not in (*_ENV, OPT_OUT)}


def _apply() -> str:
  if os.environ.get(OPT_OUT, "").strip().lower() == "system":
    return f"system default ({OPT_OUT}=system)"
  given = [k for k in _ENV if k in os.environ]
  if "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
    given.append("GLIBC_TUNABLES")
  if given:
    return f"set by the environment ({', '.join(given)})"
  preload = os.environ.get("LD_PRELOAD", "")
  if any(name in preload for name in ("jemalloc", "tcmalloc", "mimalloc")):
    return f"LD_PRELOAD allocator ({preload})"
  if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
    return "system default (not glibc)"
  mallopt = ctypes.CDLL(None).mallopt
  ok = all(
    mallopt(param, value) == 1
    for param, value in ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _TRIM))
  )
  if not ok:
    return "system default (mallopt refused the settings)"
  return "glibc malloc: one arena, no mmap for large blocks, heap top kept up to 2 GiB"
