"""ARPA back-off files: log10 probabilities and back-off weights, read strictly and written.

Values are written with the shortest digits that read back to the same float64
(Python's ``repr``, formatted a chunk at a time by ``arpa_format``), so a model
read back has the same log10 values bit for bit.  ``-99`` stands for
probability zero (``<s>``, which is never predicted, and zero-count words of
unsmoothed models).  Files ending in ``.gz`` are (de)compressed on the fly.

Reading checks everything, vectorized: header counts against sections, no
section or ``\\end\\`` missing, log10 probabilities <= 0, finite back-off
weights, no n-gram twice; a failure is an ``ArpaError`` naming file, line,
cause and fix.  Word-level lines split at any whitespace (as KenLM's reader);
character-level lines are read in ``write_arpa``'s exact layout
(``log10p<TAB>c1 c2 .. ck[<TAB>log10bow]``), so whitespace characters are tokens.
"""

from __future__ import annotations

import gzip
import math
import os
import shutil
import sys

import numpy as np

from lm_jax.data.vocab import BOS, EOS, UNK, Vocab
from lm_jax.errors import ArpaError
from lm_jax.ngram import arpa_format
from lm_jax.ngram.arpa_reader import REWRITE, _Reader
from lm_jax.ngram.counts import Counts, extend
from lm_jax.ngram.smoothing import Tables


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


def _sections(model, orders, out) -> None:
  """Writes the ``\\k-grams:`` section of each order in ``orders`` to ``out(k)`` (binary).

  Lines are built ``SECTION_ROWS`` n-grams at a time by ``arpa_format.lines`` from
  the n-grams' word ids, which the trie's suffix links give.
  """
  trie, tables, vocab = model.trie, model.tables, model.vocab
  words = arpa_format.Words(vocab.tokens)
  for k in sorted(orders):
    logp = tables.logp[k - 1]
    if k == 1:
      logp = logp.copy()
      logp[vocab.bos_id] = -math.inf
    # Back-off weights belong to n-grams that are contexts of a longer n-gram.
    logbow = np.full(len(logp), np.nan)
    if k < trie.order:
      is_context = np.bincount(trie.orders[k - 1].prefix, minlength=len(logp)) > 0
      logbow[is_context] = tables.logbow[k - 1][is_context]
    write_section(out(k), k, _trie_chunks(trie, k, logp, logbow), words)


def _trie_chunks(trie, k: int, logp, logbow):
  for lo in range(0, len(logp), SECTION_ROWS):
    hi = min(lo + SECTION_ROWS, len(logp))
    yield _trie_ids(trie, k, lo, hi), logp[lo:hi], logbow[lo:hi]


SECTION_ROWS = 1 << 18  # n-grams per formatted chunk: about 16 MiB of text.


def write_section(f, k: int, chunks, words) -> None:
  """Writes ``\\k-grams:`` and the lines of ``chunks``: (word ids, ln p, ln bow or NaN) each."""
  f.write(f"\n\\{k}-grams:\n".encode())
  empty = True
  for ids, logp, logbow in chunks:
    f.write(arpa_format.lines(words, ids, logp, logbow))
    empty = False
  if empty:
    f.write(b"\n")


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

  Formatting millions of shortest round-trip floats is the cost.  With ``parallel``, a
  large model on a machine with more than one core, and no jax started in this
  process (forking a process with runtime threads is unsafe), the constructor forks
  a child that writes some orders (``_assign``) while the caller goes on (scoring,
  sampling; ``busy`` is that work's estimate, in n-gram lines, if it is large);
  ``finish`` writes this process's orders, waits and joins the per-order parts, so
  the file is the same byte for byte.  ``close`` (always call it) reaps the child and
  removes the parts if ``finish`` did not run to the end.
  """

  def __init__(self, model, path: str, parallel: bool = True, busy: float = 0.0):
    self.model, self.path = model, path
    n, sizes = _shape(model)
    self.pid, self.parts = None, {}
    fork = (
      parallel
      and n > 1
      and sum(sizes) >= PARALLEL_MIN_NGRAMS
      and hasattr(os, "fork")
      and len(os.sched_getaffinity(0)) > 1
      and "jax" not in sys.modules
    )
    if not fork:
      return
    self.mine, self.theirs = _assign(sizes, busy)
    self.parts = {k: f"{path}.part{k}-{os.getpid()}" for k in range(1, n + 1)}
    pid = os.fork()
    if pid == 0:  # The child: its orders into their part files, then exit without cleanup.
      code = 1
      try:
        _write_parts(model, self.theirs, self.parts)
        code = 0
      finally:
        os._exit(code)
    self.pid = pid

  def finish(self) -> None:
    n, sizes = _shape(self.model)
    if not self.parts:  # One process: straight into the file.
      with _open_bytes(self.path) as f:
        _header(f, sizes)
        _write(self.model, range(1, n + 1), lambda k: f)
        f.write(b"\n\\end\\\n")
      return
    _write_parts(self.model, self.mine, self.parts)
    _, status = os.waitpid(self.pid, 0)
    self.pid = None
    if status != 0:
      raise OSError(
        f"the process writing orders {sorted(self.theirs)} of {self.path} failed ({status})"
      )
    with _open_bytes(self.path) as f:
      _header(f, sizes)
      for k in range(1, n + 1):
        with open(self.parts[k], "rb") as src:
          shutil.copyfileobj(src, f, 1 << 22)
      f.write(b"\n\\end\\\n")

  def close(self) -> None:
    if self.pid is not None:
      os.waitpid(self.pid, 0)
      self.pid = None
    for part in self.parts.values():
      if os.path.exists(part):
        os.remove(part)


def _shape(model) -> tuple[int, list[int]]:
  """Order and n-grams per order of an ``NGramLM`` or an ``arrays_io.ArrayModel``."""
  if hasattr(model, "write_sections"):
    return model.order, model.sizes()
  return model.trie.order, model.trie.sizes()


def _write(model, orders, out) -> None:
  if hasattr(model, "write_sections"):
    model.write_sections(orders, out)
  else:
    _sections(model, orders, out)


def _header(f, sizes: list[int]) -> None:
  f.write(b"\\data\\\n")
  for k, size in enumerate(sizes, start=1):
    f.write(f"ngram {k}={size}\n".encode())


def _write_parts(model, orders: set[int], parts: dict[int, str]) -> None:
  files = {k: open(parts[k], "wb") for k in orders}
  try:
    _write(model, orders, files.__getitem__)
  finally:
    for f in files.values():
      f.close()


def _assign(sizes: list[int], busy: float = 0.0) -> tuple[set[int], set[int]]:
  """Orders for (this process, the child), balancing the estimated work.

  A line costs about one float format (two below the top order: its back-off too); a
  process writing up to order m also builds the text of every n-gram of orders 2..m
  (about half a format each); this process also has ``busy`` formats' worth of other
  work meanwhile.  Exhaustive over the splits for the usual orders.
  """
  n = len(sizes)
  fmt = [2 * s for s in sizes[:-1]] + [sizes[-1]]

  def cost(orders: set[int]) -> float:
    if not orders:
      return 0.0
    return sum(fmt[k - 1] for k in orders) + 0.5 * sum(sizes[1 : max(orders)])

  if n > 10:  # Contiguous halves: 2^(n-1) splits would be too many to try.
    half = {k for k in range(1, n + 1) if k > n // 2}
    return set(range(1, n + 1)) - half, half
  best = None
  for mask in range(1 << (n - 1)):  # The child always writes the top order.
    theirs = {n} | {k + 1 for k in range(n - 1) if mask >> k & 1}
    mine = set(range(1, n + 1)) - theirs
    key = max(cost(mine) + busy, cost(theirs))
    if best is None or key < best[0]:
      best = (key, mine, theirs)
  return best[1], best[2]


def read_arpa(path: str, level: str = "word"):
  """Reads an ARPA file into an ``NGramLM`` with a vocabulary taken from its unigrams.

  Raises ``ArpaError`` (one line: file, line, cause, fix) for any inconsistency.
  """
  from lm_jax.ngram.model import NGramLM  # model imports this module.

  r = _Reader(path, level)
  sections = r.sections()
  (rows, lines), n = sections[0], len(sections)
  logp_col, keys, bow_col = r.columns(rows, lines, 1)
  uni = r.tokens(keys[0])
  vocab = Vocab(
    tokens=(UNK, EOS, *[w for w in dict.fromkeys(uni) if w not in (UNK, EOS, BOS)], BOS),
    level=level,
  )
  ids = np.array(list(map(vocab.index.get, uni)), dtype=np.int64)
  _, seen, inverse = np.unique(ids, return_index=True, return_inverse=True)
  again = np.nonzero(seen[inverse] != np.arange(len(ids)))[0]  # Not where its word first was.
  if len(again):
    raise r.fail(
      lines[again[0]],
      f"the 1-gram {uni[again[0]]!r} is listed twice (also on line "
      f"{lines[seen[inverse[again[0]]]]})",
    )
  logp1, logbow1 = np.full(vocab.size, -math.inf), np.zeros(vocab.size)
  logp1[ids] = r.log10(logp_col, lines, 1, bow=False)
  logbow1[ids] = r.log10(bow_col, lines, 1, bow=True)
  logp1[vocab.bos_id] = -math.inf
  trie = Counts(
    vocab_size=vocab.size, bos_id=vocab.bos_id, unigram=np.zeros(vocab.size, np.int64), orders=()
  )
  logps, logbows = [logp1], [logbow1]
  for k in range(2, n + 1):
    rows, lines = sections[k - 1]
    logp_col, keys, bow_col = r.columns(rows, lines, k)
    words = r.ids(keys, vocab)
    if np.any(words < 0):
      i, j = np.argwhere(words < 0)[0]
      raise r.fail(
        lines[i],
        f"the {k}-gram section uses {r.tokens(keys[j][i : i + 1])[0]!r}, "
        "which is not a unigram (not in the \\1-grams: section)",
      )
    trie, order, missing = extend(trie, words, np.zeros(len(words), np.int64))
    if len(missing):
      raise r.fail(
        lines[missing[0]],
        f"{k}-gram {' '.join(vocab.decode(words[missing[0]]))!r} "
        f"lacks its ({k - 1})-gram prefix or suffix; lm_jax needs ARPA files closed "
        "under both, as KenLM and SRILM write them",
      )
    o = trie.orders[-1]
    dup = np.nonzero((o.suffix[1:] == o.suffix[:-1]) & (o.first[1:] == o.first[:-1]))[0]
    if len(dup):  # Sorted by (suffix, first): a repeated n-gram sits next to its twin.
      a, b = sorted(order[dup[0] : dup[0] + 2].tolist())
      raise r.fail(
        lines[b],
        f"the {k}-gram {' '.join(vocab.decode(words[b]))!r} is listed "
        f"twice (also on line {lines[a]})",
      )
    logps.append(r.log10(logp_col, lines, k, bow=False)[order])
    logbows.append(r.log10(bow_col, lines, k, bow=True)[order])
  return NGramLM(vocab, "arpa", trie, Tables(tuple(logps), tuple(logbows)))


def check_normalization(source, tol: float = 1e-4, level: str = "word") -> float:
  """Checks that the unigram distribution sums to one; returns the sum.

  ``source`` is an ARPA path or an ``NGramLM``.  The sum is of 10**log10p over the
  predictable unigrams (every type but ``<s>``, which is never predicted); an
  ``ArpaError`` naming the sum is raised unless it is within ``tol`` of 1.
  """
  is_path = isinstance(source, (str, os.PathLike))
  model = read_arpa(source, level) if is_path else source
  total = math.fsum(np.exp(model.tables.logp[0][: model.vocab.num_predictable]).tolist())
  if not abs(total - 1.0) <= tol:
    raise ArpaError(
      f"{source if is_path else 'the model'}: the unigram probabilities sum to "
      f"{total:.9g}, not 1 (tolerance {tol:g}); the file was edited or the model is "
      "not normalized (stupid_backoff scores are not probabilities) — "
      f"{REWRITE} with katz or kneser_ney."
    )
  return total
