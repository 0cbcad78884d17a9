"""Writing a model as an ARPA file, in two processes where that pays.

A model is written as one sequence of lines, orders 1..N one after the other.  A
model gives, for each order k, ``chunks``: ``chunks(lo, hi)`` yields
(word ids [n, k], ln p, ln back-off or NaN) for its n-grams ``lo:hi`` in file order;
``arpa_format.lines`` turns each into bytes.  ``section_source`` gives that for an
in-memory ``NGramLM`` (word ids along the trie's suffix links); the out-of-core
``arrays_io.ArrayModel`` has its own ``section``.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import shutil
import sys

import numpy as np

from lm_jax.ngram import arpa_format

END = b"\n\\end\\\n"


def _open_bytes(path: str):
  return gzip.open(path, "wb") if str(path).endswith(".gz") else open(path, "wb")


def _trie_ids(trie, k: int, lo: int, hi: int) -> np.ndarray:
  """Word ids [hi - lo, k] of n-grams ``lo:hi`` of order k (w1 first), along suffix links."""
  if k == 1:
    return np.arange(lo, hi)[:, None]
  o = trie.orders[k - 2]
  cols, s = [o.first[lo:hi]], o.suffix[lo:hi]
  for j in range(k - 1, 1, -1):
    o = trie.orders[j - 2]
    cols.append(o.first[s])
    s = o.suffix[s]
  cols.append(s)  # Unigram ranks are word ids.
  return np.stack(cols, axis=1)


ROWS = 1 << 18  # n-grams per chunk of an in-memory model.


def section_source(model, k: int):
  """``chunks`` of order k of a model: ``NGramLM``, or anything with ``section``."""
  if hasattr(model, "section"):
    return model.section(k)
  trie, tables, vocab = model.trie, model.tables, model.vocab
  logp = tables.logp[k - 1]
  if k == 1:
    logp = logp.copy()
    logp[vocab.bos_id] = -math.inf  # <s> is never predicted: ARPA's -99.
  # Back-off weights belong to n-grams that are contexts of a longer n-gram.
  logbow = np.full(len(logp), np.nan)
  if k < trie.order:
    is_context = np.bincount(trie.orders[k - 1].prefix, minlength=len(logp)) > 0
    logbow[is_context] = tables.logbow[k - 1][is_context]

  def chunks(lo: int, hi: int):
    for a in range(lo, hi, ROWS):
      b = min(a + ROWS, hi)
      yield _trie_ids(trie, k, a, b), logp[a:b], logbow[a:b]

  return chunks


def _shape(model) -> list[int]:
  """n-grams per order of an ``NGramLM`` or an ``arrays_io.ArrayModel``."""
  return model.sizes() if hasattr(model, "section") else model.trie.sizes()


def write_lines(model, f, start: int, stop: int) -> None:
  """Writes lines ``start:stop`` of the model's n-gram sequence (orders 1..N in turn).

  An order's ``\\k-grams:`` header goes with the range holding the order's first
  position, so ranges that tile ``[0, total + 1)`` write the whole body once.
  """
  words = arpa_format.Words(model.vocab.tokens)
  at = 0
  for k, size in enumerate(_shape(model), start=1):
    lo, hi = max(start - at, 0), min(stop - at, size)
    if start <= at < stop:
      f.write(f"\n\\{k}-grams:\n".encode())
      if not size:
        f.write(b"\n")
    if hi > lo:
      for ids, logp, logbow in section_source(model, k)(lo, hi):
        f.write(arpa_format.lines(words, ids, logp, logbow))
    at += size


def _header(f, sizes: list[int]) -> None:
  f.write(b"\\data\\\n")
  for k, size in enumerate(sizes, start=1):
    f.write(f"ngram {k}={size}\n".encode())


def cut(sizes: list[int], busy: float = 0.0) -> int:
  """Where the forked child's lines begin, so that both processes finish together.

  A line costs 1, or 1.3 below the top order (a back-off number to format too, on
  most of them); this process also has ``busy`` lines' worth of other work meanwhile.
  """
  weights = [1.3] * (len(sizes) - 1) + [1.0]
  total = sum(w * s for w, s in zip(weights, sizes))
  mine = max(0.0, (total - busy) / 2)  # The cost of the lines this process writes.
  at = 0
  for w, s in zip(weights, sizes):
    if mine <= w * s:
      return at + int(mine / w)
    mine -= w * s
    at += s
  return at


def _append(f, path: str) -> None:
  """Appends the file at ``path`` to the open binary file ``f`` (in the kernel if it can)."""
  with open(path, "rb") as src:
    if isinstance(f, io.BufferedWriter) and hasattr(os, "copy_file_range"):
      f.flush()
      while os.copy_file_range(src.fileno(), f.fileno(), 1 << 30):
        pass
    else:
      shutil.copyfileobj(src, f, 1 << 22)


# Below this many n-grams one process writes the file (a fork costs more than it saves).
PARALLEL_MIN_NGRAMS = 1_000_000


def write_arpa(model, path: str, parallel: bool = True) -> None:
  """Writes a model (``NGramLM``) as an ARPA file (see ``ArpaWriter``)."""
  writer = ArpaWriter(model, path, parallel)
  try:
    writer.finish()
  finally:
    writer.close()


class ArpaWriter:
  """Writes a model as an ARPA file: started by the constructor, completed by ``finish``.

  With ``parallel``, a large model on a machine with more than one core, and no jax
  started in this process (forking a process with runtime threads is unsafe), the
  constructor forks a child that writes the lines from ``cut`` on into a part file
  while the caller goes on (scoring, sampling; ``busy`` is that work's estimate, in
  n-gram lines, if it is large); ``finish`` writes the lines before the cut into the
  file, waits and appends the part, so the file is the same byte for byte.  ``close``
  (always call it) reaps the child and removes the part.
  """

  def __init__(self, model, path: str, parallel: bool = True, busy: float = 0.0):
    self.model, self.path = model, path
    sizes = _shape(model)
    self.total, self.cut = sum(sizes), sum(sizes)
    self.pid, self.part = None, None
    fork = (
      parallel
      and len(sizes) > 1
      and self.total >= PARALLEL_MIN_NGRAMS
      and hasattr(os, "fork")
      and len(os.sched_getaffinity(0)) > 1
      and "jax" not in sys.modules
    )
    if not fork:
      return
    self.cut = cut(sizes, busy)
    self.part = f"{path}.part-{os.getpid()}"
    pid = os.fork()
    if pid == 0:  # The child: its lines and the end into the part, then exit without cleanup.
      code = 1
      try:
        with open(self.part, "wb") as f:
          write_lines(model, f, self.cut, self.total + 1)
          f.write(END)
        code = 0
      finally:
        os._exit(code)
    self.pid = pid

  def finish(self) -> None:
    with _open_bytes(self.path) as f:
      _header(f, _shape(self.model))
      write_lines(self.model, f, 0, self.cut if self.part else self.total + 1)
      if not self.part:
        f.write(END)
        return
      _, status = os.waitpid(self.pid, 0)
      self.pid = None
      if status != 0:
        raise OSError(f"the process writing the end of {self.path} failed ({status})")
      _append(f, self.part)

  def close(self) -> None:
    if self.pid is not None:
      os.waitpid(self.pid, 0)
      self.pid = None
    if self.part and os.path.exists(self.part):
      os.remove(self.part)
