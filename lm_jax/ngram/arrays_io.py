"""Files from an out-of-core model's per-order arrays (``external.Estimate``), chunk by chunk.

``ArrayModel`` gives ``arpa_writer.ArpaWriter`` the same interface as an in-memory
``NGramLM`` (sizes, and each order's n-grams chunk by chunk), so the ARPA file is the
same byte for byte; ``save_scoring`` writes the ``binary`` format that
``binary.load_binary`` scores from.  Memory stays bounded: each order
is read ``rows`` n-grams at a time, and an n-gram's words are read from its
suffix's (a contiguous range one order down, since the trie is sorted by suffix).
"""

from __future__ import annotations

import os

import numpy as np

from lm_jax.data.vocab import Vocab
from lm_jax.ngram import npy
from lm_jax.ngram.binary import write_header

ROWS = 1 << 18


class ArrayModel:
  """An ``external.Estimate`` with its vocabulary, as ``arpa_writer.ArpaWriter`` reads a model."""

  def __init__(self, estimate, vocab: Vocab, rows: int = ROWS):
    self.estimate, self.vocab, self.rows = estimate, vocab, rows

  def sizes(self) -> list[int]:
    return self.estimate.sizes()

  def _ids(self, k: int, lo: int, hi: int) -> np.ndarray:
    """Word ids [hi - lo, k] of n-grams ``lo:hi`` of order k, from their suffixes' (one order down)."""
    o = self.estimate.orders[k - 1]
    first = o.read("first", lo, hi)
    if k == 1:
      return first[:, None]
    suffix = o.read("suffix", lo, hi)
    if not len(suffix):
      return np.zeros((0, k), np.int32)
    base = int(suffix[0])  # Sorted: the suffixes are one contiguous range below.
    below = self._ids(k - 1, base, int(suffix[-1]) + 1)
    return np.column_stack([first, below[suffix - base]])

  def section(self, k: int):
    """``chunks(lo, hi)`` of order k, as ``arpa_writer.section_source``."""
    o = self.estimate.orders[k - 1]

    def chunks(lo: int, hi: int):
      for a in range(lo, hi, self.rows):
        b = min(a + self.rows, hi)
        yield self._ids(k, a, b), o.read("logp", a, b), o.read("logbow", a, b)

    return chunks


def save_scoring(estimate, vocab: Vocab, directory: str, smoothing: str, rows: int = ROWS) -> None:
  """Writes ``binary.save_binary``'s files from the arrays (back-off 0 where not a context)."""
  os.makedirs(directory, exist_ok=True)
  size = estimate.vocab_size
  bow32 = lambda b: np.where(np.isnan(b), 0.0, b).astype(np.float32)
  uni = estimate.orders[0]
  np.save(os.path.join(directory, "logp1.npy"), uni.logp.astype(np.float32))
  np.save(os.path.join(directory, "logbow1.npy"), bow32(uni.logbow))
  for k, o in enumerate(estimate.orders[1:], start=2):
    files = {
      name: npy.NpyWriter(os.path.join(directory, f"{name}{k}.npy"), dtype, o.size + 1)
      for name, dtype in (("keys", np.int64), ("logp", np.float32), ("logbow", np.float32))
    }
    for lo in range(0, o.size, rows):
      hi = min(lo + rows, o.size)
      files["keys"].write(
        o.read("suffix", lo, hi).astype(np.int64) * size + o.read("first", lo, hi)
      )
      files["logp"].write(o.read("logp", lo, hi))
      files["logbow"].write(bow32(o.read("logbow", lo, hi)))
    # The sentinels of ``NGramLM._score_arrays``: every gather stays in range.
    files["keys"].write([np.iinfo(np.int64).max])
    files["logp"].write([0.0])
    files["logbow"].write([0.0])
    for f in files.values():
      f.close()
  write_header(directory, vocab, size, smoothing, True, estimate.sizes())
