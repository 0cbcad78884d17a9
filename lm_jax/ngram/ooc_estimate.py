"""The out-of-core estimator's passes over its files (see ``external``): counting order by
order, counts-of-counts and discounts, interpolation in slabs of contexts."""

from __future__ import annotations

import os

import numpy as np

from lm_jax.ngram import kneser_ney as kn_lib
from lm_jax.ngram import npy, ooc_stream
from lm_jax.ngram.ooc_arrays import Estimate, OrderArrays, log_nan
from lm_jax.ngram.ooc_count import Counter, OnDisk


class Estimator:
  """Stages 2-4 of ``external``: counting, discounts and interpolation over the files."""

  def __init__(self, disk: OnDisk, w: ooc_stream.Windows, out_dir, budget, pool, stages):
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
