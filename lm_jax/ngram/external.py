"""Out-of-core (modified) Kneser-Ney estimation in a memory budget, as lmplz ``-S``/``-T``.

The in-memory path (``counts.count_ngrams``, ``kneser_ney.kneser_ney``) keeps every
n-gram in RAM.  Here the same arrays live on disk under ``temp_dir`` and every stage is
a pass over them a slice at a time (KenLM's builder's stages, on sorted files):

1. Reading: the training text streams in chunks to the stream of ids on disk, with
   each token's position in its sentence; the unigram counts and what lmplz's
   statistics need are tracked on the way (``ooc_stream.Windows``).
2. Counting, order by order: an external sort of the n-grams by (suffix id, first
   word), as ``count_ngrams``' keys (``ooc_count``).  Each order comes out in trie
   order, with its raw counts, its prefixes (contexts) and the continuation counts of
   the order below.
3. Adjusted counts and discounts: counts-of-counts per order in one pass (with lmplz's
   one-n-gram-per-order statistics), then Chen & Goodman's formula.
4. Interpolation, lowest order first: each order's context sums and gammas, then its
   probabilities mixed with its suffix's, in slabs of contexts that fit the budget.

Every probability takes the same IEEE operations, in the same order, as
``kneser_ney.kneser_ney``: the arrays are equal bit for bit.  ``arrays_io.ArrayModel``
writes the ARPA file from them (byte-identical to the in-memory writer's) and
``arrays_io.save_scoring`` the scoring model read from disk.
"""

from __future__ import annotations

import concurrent.futures
import errno
import os
import re
import shutil
import tempfile
from collections.abc import Iterable

import numpy as np

from lm_jax.data.tokens import TokenArray
from lm_jax.errors import ConfigError
from lm_jax.ngram import kneser_ney as kn_lib
from lm_jax.ngram import npy, ooc_stream
from lm_jax.ngram.ooc_arrays import Estimate, OrderArrays, Stages, log_nan
from lm_jax.ngram.ooc_count import POS_CAP, Counter, OnDisk

_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
MIN_MEMORY = 48 * 2**20
# Bytes of working memory per position in a partition chunk, per record in a sorted
# bucket and per context in a slab (measured peaks of those passes, with their temporaries).
CHUNK_BYTES, BUCKET_BYTES, SLAB_BYTES, ROW_BYTES = 72, 72, 32, 128


def parse_memory(value) -> int | None:
  """Bytes from ``"2G"``, ``"500M"``, ``"80%"`` (of physical memory) or a number; None: off."""
  if value in (None, "", 0):
    return None
  text = str(value).strip().upper()
  m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)B?", text)
  pct = re.fullmatch(r"(\d+(?:\.\d+)?)\s*%", text)
  if m:
    nbytes = int(float(m.group(1)) * _UNITS[m.group(2)])
  elif pct:
    nbytes = int(
      float(pct.group(1)) / 100 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    )
  else:
    raise ConfigError(
      f"memory={value!r} is not a size; use bytes or a string such as '2G', '500M' or '50%' "
      "(as lmplz -S)."
    )
  if nbytes < MIN_MEMORY:
    raise ConfigError(
      f"memory={value!r} is {nbytes} bytes; out-of-core estimation needs at least "
      f"{MIN_MEMORY // 2**20}M (the working set of its passes). Give a larger budget."
    )
  return nbytes


def chunk_tokens(memory: int) -> int:
  """Tokens per text chunk: as Python token lists about 100 bytes each, in a sixteenth of
  the budget (Python keeps freed list memory in its arenas, so a text chunk's peak stays
  resident for the rest of the run)."""
  return max(1 << 14, memory // 16 // 100)


class _Budget:
  """How the budget splits, given the corpus: the ids per position (4 bytes each, held
  while an order is sorted) and the vocabulary's arrays are fixed; the rest is working
  memory for chunks, buckets and slabs.  As lmplz's ``-S``, the budget is the data's: the
  interpreter and its libraries (about 100 MiB) come on top.  ``sizes`` overrides the
  split (``chunk``, ``bucket_rows``, ``rows``, ``slab``; tests use it to force many of each)."""

  def __init__(self, memory: int, positions: int, vocab_size: int, sizes: dict | None = None):
    fixed = 4 * positions + 64 * vocab_size
    work = memory - fixed
    if work < 16 * 2**20:
      raise ConfigError(
        f"memory={memory / 2**20:.0f} MiB is too small for this corpus: its {positions} "
        f"positions and {vocab_size} words take {fixed / 2**20:.0f} MiB (4 bytes a token, "
        "64 a word) and the passes need 16 MiB more. Give a larger budget "
        f"(--config.memory=...), at least {(fixed >> 20) + 17}M."
      )
    self.chunk = max(1 << 12, work // 4 // CHUNK_BYTES)  # three in flight
    # Up to 1.5x, three at a time; at most 4M (np.sort runs about 25% faster than on 16M).
    self.bucket_rows = max(1 << 12, min(work // 5 // BUCKET_BYTES, 1 << 22))
    self.rows = max(1 << 12, work // 8 // ROW_BYTES)  # n-grams per pass over an order
    self.slab = max(1 << 12, work * 3 // 4 // SLAB_BYTES)
    for name, value in (sizes or {}).items():
      setattr(self, name, value)


def estimate_kneser_ney(
  chunks: Iterable[TokenArray],
  vocab_size: int,
  bos_id: int,
  order: int,
  memory: int,
  temp_dir: str | None,
  modified: bool = True,
  fallback: tuple[float, ...] | None = None,
  lmplz_statistics: bool = True,
  out_dir: str = "",
  threads: int | None = None,
  stages: Stages | None = None,
  sizes: dict | None = None,
) -> Estimate:
  """Interpolated (modified) Kneser-Ney of order >= 2 from streamed chunks of whole sentences,
  within ``memory`` bytes, with temporary files in a directory under ``temp_dir`` (removed
  at the end); the arrays land in ``out_dir``.  Equal to ``kneser_ney.kneser_ney``."""
  if order < 2:
    raise ConfigError("out-of-core estimation needs order >= 2; unigrams fit in memory anyway.")
  if order > POS_CAP:
    raise ConfigError(f"out-of-core estimation supports orders up to {POS_CAP}, got {order}.")
  if vocab_size >= 2**23:
    raise ConfigError(
      f"out-of-core estimation packs word ids in 23 bits; this vocabulary has {vocab_size} "
      "words. Map rare words to <unk> (data.min_count) to shrink it."
    )
  if not out_dir:
    raise ValueError("out_dir is required: the directory for the model's arrays.")
  os.makedirs(out_dir, exist_ok=True)
  base = tempfile.mkdtemp(prefix="lm_jax-ngram-sort-", dir=temp_dir)
  threads = threads or min(2, len(os.sched_getaffinity(0)))
  try:
    stages = stages or Stages(base)
    stages.restart(base)
    disk = OnDisk(base)
    windows = ooc_stream.Windows(order, vocab_size, bos_id)
    with open(disk.path("stream"), "wb") as fs, open(disk.path("pos"), "wb") as fp:
      for chunk in chunks:
        stream, pos = windows.add(chunk)
        stream.tofile(fs)
        np.minimum(pos, POS_CAP).astype(np.uint8).tofile(fp)
    if windows.window is None:
      raise ConfigError("the training text is empty; give a corpus with at least one sentence.")
    if windows.offset >= 2**32:
      raise ConfigError(
        f"the training text has {windows.offset} tokens with <s>; out-of-core estimation "
        "counts positions in 32 bits (< 4.29e9): split the corpus."
      )
    budget = _Budget(memory, windows.offset, vocab_size, sizes)
    stages.done("read")
    pool = concurrent.futures.ThreadPoolExecutor(threads) if threads > 1 else None
    try:
      est = _Estimator(disk, windows, out_dir, budget, pool, stages)
      est.count()
      return est.estimate(modified, fallback, lmplz_statistics)
    finally:
      if pool is not None:
        pool.shutdown()
  except MemoryError:
    raise ConfigError(
      f"memory={memory / 2**20:.0f} MiB: the machine could not give the passes their share "
      "of it; give a budget the machine has free (--config.memory=...)."
    ) from None
  except OSError as e:
    if e.errno not in (errno.ENOSPC, errno.EDQUOT):
      raise
    raise ConfigError(
      f"out-of-core estimation could not write its temporary files under {base} ({e}); free "
      "disk space there or point temp_dir at a larger disk (--config.temp_dir=DIR)."
    ) from None
  finally:
    shutil.rmtree(base, ignore_errors=True)


class _Estimator:
  def __init__(self, disk: OnDisk, w: ooc_stream.Windows, out_dir, budget: _Budget, pool, stages):
    self.d, self.w, self.out, self.budget, self.pool, self.stages = (
      disk,
      w,
      out_dir,
      budget,
      pool,
      stages,
    )
    self.n, self.size, self.bos = w.n, w.size, w.bos
    self.sizes = [w.size]

  def _npy(self, name: str, k: int, lo: int = 0, hi: int | None = None) -> np.ndarray:
    return npy.read(os.path.join(self.out, f"{name}{k}.npy"), lo, hi)

  def _rows(self, k: int, step: int | None = None):
    step = step or self.budget.rows
    for lo in range(0, self.sizes[k - 1], step):
      yield lo, min(lo + step, self.sizes[k - 1])

  def count(self) -> None:
    counter = Counter(
      self.d,
      self.out,
      self.w.offset,
      self.size,
      self.bos,
      chunk=self.budget.chunk,
      bucket_rows=self.budget.bucket_rows,
    )
    for k in range(2, self.n + 1):
      if k == 2:  # Words at positions after <s>: every occurrence but <s>'s own.
        occ = iter([np.where(np.arange(self.size) == self.bos, 0, self.w.unigram)])
      else:  # (k-1)-grams not starting with <s> are preceded at each occurrence.
        occ = (
          np.where(
            self._npy("first", k - 1, lo, hi) == self.bos,
            0,
            self.d.read(f"count{k - 1}", np.uint32, lo, hi).astype(np.int64),
          )
          for lo, hi in self._rows(k - 1)
        )
      self.sizes.append(counter.count(k, self.sizes[-1], occ, last=k == self.n, pool=self.pool))
      self.stages.done(f"count {k}")

  def adjusted(self, k: int, lo: int, hi: int) -> np.ndarray:
    """Kneser-Ney adjusted counts of order-k n-grams ``lo:hi`` (``kn_lib.adjusted_counts``)."""
    if k == 1:
      cont = self.d.read("cont1", np.int32, lo, hi).astype(np.int64)
      ids = np.arange(lo, hi)
      return np.where(ids == self.bos, 0, cont)
    count = self.d.read(f"count{k}", np.uint32, lo, hi).astype(np.int64)
    if k == self.n:
      return count
    cont = self.d.read(f"cont{k}", np.int32, lo, hi).astype(np.int64)
    return np.where(self._npy("first", k, lo, hi) == self.bos, count, cont)

  def _find(self, gram: tuple[int, ...]) -> int:
    """The id of an n-gram of the text at its order (``counts.find``), from the files."""
    node = gram[-1]
    for j in range(2, len(gram) + 1):
      suffix = npy.FileArray(os.path.join(self.out, f"suffix{j}.npy"))
      lo, hi = (int(x) for x in suffix.searchsorted(np.array([node, node + 1])))
      del suffix
      node = lo + int(np.searchsorted(self._npy("first", j, lo, hi), gram[-j]))
    return node

  def estimate(self, modified, fallback, lmplz_stats) -> Estimate:
    n = self.n
    coc = []
    for k in range(1, n + 1):
      c = np.zeros(6, np.int64)
      for lo, hi in self._rows(k):
        c += np.bincount(np.minimum(self.adjusted(k, lo, hi), 5), minlength=6)
      coc.append(c[:5])
    for gram in ooc_stream.lmplz_grams(self.w) if lmplz_stats else []:
      k = len(gram)
      gid = self._find(gram)
      raw = (
        int(self.w.unigram[gid])
        if k == 1
        else int(self.d.read(f"count{k}", np.uint32, gid, gid + 1)[0])
      )
      adj = int(self.adjusted(k, gid, gid + 1)[0])
      for value, step in ((adj, -1), (raw, 1)):
        if value < len(coc[k - 1]):
          coc[k - 1][value] += step
    ds, notes = kn_lib.discounts_from_counts(coc, modified, fallback)
    self.stages.done("discounts")
    # Order 1 in memory, as kneser_ney.kneser_ney; its back-off weights come with order 2.
    d = ds[0]
    adj1 = self.adjusted(1, 0, self.size)
    pred = np.arange(self.size) != self.bos
    disc = d[np.minimum(adj1, 3)]
    bucket = [(adj1 == 1).astype(np.float64), (adj1 == 2).astype(np.float64)]
    bucket.append((adj1 >= 3).astype(np.float64))
    denom1 = float(adj1.sum())
    gamma1 = sum(d[j + 1] * bucket[j].sum() for j in range(3)) / denom1
    prob1 = np.where(pred, (adj1 - disc) / denom1 + gamma1 / int(pred.sum()), 0.0)
    prob1.tofile(self.d.path("prob1"))
    np.save(os.path.join(self.out, "suffix1.npy"), np.full(self.size, -1, np.int32))
    np.save(os.path.join(self.out, "first1.npy"), np.arange(self.size, dtype=np.int32))
    np.save(os.path.join(self.out, "logp1.npy"), log_nan(prob1))
    for k in range(2, n + 1):
      self._interpolate(k, ds[k - 1])
      self.d.remove(f"prob{k - 1}", f"cont{k - 1}", f"prefix{k}", f"count{k}")
      self.stages.done(f"interpolate {k}")
    self.d.remove(f"prob{n}")
    logbow = npy.NpyWriter(os.path.join(self.out, f"logbow{n}.npy"), np.float64, self.sizes[-1])
    for lo, hi in self._rows(n):
      logbow.write(np.full(hi - lo, np.nan))
    logbow.close()
    arrays = tuple(OrderArrays(self.out, k, m) for k, m in enumerate(self.sizes, start=1))
    info = {"discounts": [list(map(float, x[1:])) for x in ds], "discount_notes": notes}
    return Estimate(self.size, arrays, info)

  def _interpolate(self, k: int, d: np.ndarray) -> None:
    """Order k's probabilities (``logp{k}``, ``prob{k}``) and order k-1's back-off weights
    (``logbow{k-1}``), a slab of contexts at a time (one pass over order k per slab)."""
    prev = self.sizes[k - 2]
    slabs = [(c0, min(c0 + self.budget.slab, prev)) for c0 in range(0, prev, self.budget.slab)]
    logbow = npy.NpyWriter(os.path.join(self.out, f"logbow{k - 1}.npy"), np.float64, prev)
    pieces = []
    logp = npy.NpyWriter(os.path.join(self.out, f"logp{k}.npy"), np.float64, self.sizes[k - 1])
    for s, (c0, c1) in enumerate(slabs):
      whole = len(slabs) == 1
      # Per context: Σa (below 2**40: at most the positions) with the count of a = 1 above
      # it, and the counts of a = 2 and a >= 3 side by side: two scatters per n-gram.
      sum_n1, n2_n3 = np.zeros(c1 - c0, np.int64), np.zeros(c1 - c0, np.int64)
      for lo, hi in self._rows(k):
        p, a = self.d.read(f"prefix{k}", np.int32, lo, hi), self.adjusted(k, lo, hi)
        if not whole:
          m = (p >= c0) & (p < c1)
          p, a = p[m] - c0, a[m]
        np.add.at(sum_n1, p, a + ((a == 1).astype(np.int64) << 40))
        np.add.at(n2_n3, p, (a == 2).astype(np.int64) + ((a >= 3).astype(np.int64) << 31))
      # Integer sums, exact in float64: as kneser_ney's bincounts of float64 weights; the
      # mass d1 n1 + d2 n2 + d3 n3 summed in that order, a block of contexts at a time.
      denom, gamma = np.empty(c1 - c0), np.empty(c1 - c0)
      for a in range(0, c1 - c0, self.budget.rows):
        part = slice(a, min(a + self.budget.rows, c1 - c0))
        s1, n23 = sum_n1[part], n2_n3[part]
        denom[part] = s1 & ((1 << 40) - 1)
        g = (s1 >> 40).astype(np.float64) * d[1]
        g += (n23 & ((1 << 31) - 1)).astype(np.float64) * d[2]
        g += (n23 >> 31).astype(np.float64) * d[3]
        with np.errstate(invalid="ignore", divide="ignore"):
          gamma[part] = g / denom[part]
      del sum_n1, n2_n3, s1, n23
      for a in range(0, c1 - c0, self.budget.rows):
        part = slice(a, min(a + self.budget.rows, c1 - c0))
        logbow.write(np.where(denom[part] > 0, log_nan(gamma[part]), np.nan))
      name = f"piece{k}_{s}" if len(slabs) > 1 else f"prob{k}"
      with open(self.d.path(name), "wb") as f:
        for lo, hi in self._rows(k):
          p, a = self.d.read(f"prefix{k}", np.int32, lo, hi), self.adjusted(k, lo, hi)
          suffix = self._npy("suffix", k, lo, hi)
          if not whole:
            m = (p >= c0) & (p < c1)
            p, a, suffix = p[m] - c0, a[m], suffix[m]
          base = int(suffix[0]) if len(suffix) else 0
          below = self.d.read(f"prob{k - 1}", np.float64, base, int(suffix.max(initial=0)) + 1)
          disc = d[np.minimum(a, 3)]
          # Chen & Goodman eq. (interpolated): p(w|h) = (a - D(a)) / Σa + gamma(h) p(w|h').
          prob = (a - disc) / denom[p] + gamma[p] * below[suffix - base]
          prob.tofile(f)
          if whole:
            logp.write(log_nan(prob))
      pieces.append(name)
      del denom, gamma
    logbow.close()
    if len(slabs) > 1:
      self._merge_pieces(k, slabs, pieces, logp)
    logp.close()

  def _merge_pieces(self, k: int, slabs, pieces, logp) -> None:
    """``prob{k}`` and ``logp{k}`` in row order from the slabs' pieces (each in row order)."""
    taken = [0] * len(slabs)
    edges = np.array([c0 for c0, _ in slabs[1:]], np.int64)
    with open(self.d.path(f"prob{k}"), "wb") as f:
      for lo, hi in self._rows(k):
        slab = np.searchsorted(edges, self.d.read(f"prefix{k}", np.int32, lo, hi), side="right")
        prob = np.empty(hi - lo)
        for s, name in enumerate(pieces):
          m = slab == s
          prob[m] = self.d.read(name, np.float64, taken[s], taken[s] + int(m.sum()))
          taken[s] += int(m.sum())
        prob.tofile(f)
        logp.write(log_nan(prob))
    self.d.remove(*pieces)
