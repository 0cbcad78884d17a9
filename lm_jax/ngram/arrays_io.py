"""Files from an out-of-core model's per-order arrays (``external.Estimate``), chunk by chunk.

``ArrayModel`` gives ``arpa.ArpaWriter`` the same interface as an in-memory
``NGramLM`` (sizes and the text of each order's section), so the ARPA file is the
same byte for byte; ``save_scoring`` writes the ``binary`` format that
``binary.load_binary`` scores from.  Memory stays bounded: each order
is read ``rows`` n-grams at a time, and an n-gram's text is built from its
suffix's (a contiguous range one order down, since the trie is sorted by suffix).
"""

from __future__ import annotations

import os

import numpy as np

from lm_jax.data.vocab import Vocab
from lm_jax.ngram import npy
from lm_jax.ngram.arpa import format_lines
from lm_jax.ngram.binary import write_header

ROWS = 1 << 18


class ArrayModel:
  """An ``external.Estimate`` with its vocabulary, as ``arpa.ArpaWriter`` reads a model."""

  def __init__(self, estimate, vocab: Vocab, rows: int = ROWS):
    self.estimate, self.vocab, self.rows = estimate, vocab, rows
    self.order = len(estimate.orders)

  def sizes(self) -> list[int]:
    return self.estimate.sizes()

  def _names(self, k: int, lo: int, hi: int) -> list[str]:
    """The text of n-grams ``lo:hi`` of order k, from their suffixes' (one order down)."""
    o = self.estimate.orders[k - 1]
    toks = self.vocab.tokens
    first = o.read("first", lo, hi).tolist()
    if k == 1:
      return [toks[w] for w in first]
    suffix = o.read("suffix", lo, hi)
    if not len(suffix):
      return []
    base = int(suffix[0])  # Sorted: the suffixes are one contiguous range below.
    below = self._names(k - 1, base, int(suffix[-1]) + 1)
    return [toks[w] + " " + below[s - base] for w, s in zip(first, suffix.tolist())]

  def write_sections(self, orders, out) -> None:
    for k in sorted(orders):
      o = self.estimate.orders[k - 1]
      f = out(k)
      f.write(f"\n\\{k}-grams:\n")
      for lo in range(0, o.size, self.rows):
        hi = min(lo + self.rows, o.size)
        logbow = o.read("logbow", lo, hi)
        lines = format_lines(
          o.read("logp", lo, hi), self._names(k, lo, hi), logbow, ~np.isnan(logbow)
        )
        f.write("\n".join(lines))
        f.write("\n")


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
