"""The out-of-core model on disk: per-order ``.npy`` arrays in trie order, and stage records.

``external.estimate_kneser_ney`` writes them; ``arrays_io`` turns them into an ARPA
file and a scoring model, reading a slice at a time.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import time

import numpy as np
from absl import logging

from lm_jax.ngram import npy


@dataclasses.dataclass(frozen=True)
class OrderArrays:
  """One order's n-grams in trie order, as ``.npy`` files ``{name}{k}.npy`` in ``directory``.

  ``suffix`` (rank of w2..wk at order k-1) and ``first`` (w1) as in ``counts.Order``;
  ``logp`` ln p(wk | w1..wk-1); ``logbow`` ln of its back-off weight as a context, NaN
  where it is not the context of a longer n-gram (ARPA writes no weight there).
  Order 1 has ``suffix`` = -1 and ``first`` = the word id.  ``read`` gives a slice with
  plain file reads; the attributes load a whole array (tests, small models).
  """

  directory: str
  k: int
  size: int

  def path(self, name: str) -> str:
    return os.path.join(self.directory, f"{name}{self.k}.npy")

  def read(self, name: str, lo: int = 0, hi: int | None = None) -> np.ndarray:
    return npy.read(self.path(name), lo, hi)

  suffix = property(lambda self: self.read("suffix"))
  first = property(lambda self: self.read("first"))
  logp = property(lambda self: self.read("logp"))
  logbow = property(lambda self: self.read("logbow"))


_FIELDS = (("suffix", np.int32), ("first", np.int32), ("logp", np.float64), ("logbow", np.float64))


@dataclasses.dataclass(frozen=True)
class Estimate:
  """The out-of-core model: per-order arrays plus what the run records."""

  vocab_size: int
  orders: tuple[OrderArrays, ...]  # orders 1..N
  info: dict

  def sizes(self) -> list[int]:
    return [o.size for o in self.orders]


class Stages:
  """Seconds, peak resident memory so far and the engine's disk use at the end of each stage."""

  def __init__(self, base: str):
    self.base, self.rows, self.t = base, [], time.perf_counter()

  def restart(self, base: str) -> None:
    """Goes on measuring the disk use of another directory (after the engine's is gone)."""
    self.base, self.t = base, time.perf_counter()

  def done(self, name: str) -> None:
    now = time.perf_counter()
    disk = sum(
      os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(self.base) for f in files
    )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    self.rows.append({"stage": name, "seconds": now - self.t, "peak_rss": rss, "disk": disk})
    logging.info(
      "n-gram stage %s: %.1fs, peak RSS %.0f MiB, disk %.0f MiB",
      name,
      now - self.t,
      rss / 2**20,
      disk / 2**20,
    )
    self.t = now


def log_nan(x: np.ndarray) -> np.ndarray:
  """ln x, NaN stays NaN (not a context), ln 0 = -inf."""
  with np.errstate(divide="ignore", invalid="ignore"):
    return np.log(x)
