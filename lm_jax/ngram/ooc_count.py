"""Out-of-core counting: ``counts.count_ngrams``'s suffix trie, sorted on disk in a budget.

The text lies on disk as the stream ``<s> w1 .. wn </s> <s> ...`` (int32 ids) and each
token's position in its sentence.  As in ``count_ngrams``, order k's n-gram ending at a
position has the key ``(id of the (k-1)-gram ending there, the word k-1 back)``, and its
id is the key's rank; one int32 id per position carries the ranks to the next order.

Each order is one external sort by key, as two passes:

1. Partition: the positions stream by in chunks; each goes to the bucket of its key's
   suffix id (buckets are ranges of suffix ids, so bucket after bucket is key order),
   as a record (suffix, first word, prefix id, position) appended to one file (each
   chunk's records as four columns, ordered by bucket).
2. Per bucket, in key order: one ``np.sort`` of 64-bit words packing the key's bits
   above the record's index in the bucket (no argsort, whose index array costs twice
   the time); runs of equal keys are the distinct n-grams, their lengths the counts.
   The n-grams go out in trie order, each position gets its n-gram's id, and the order
   below gets its continuation counts (distinct extensions per suffix) in rank order.

Buckets are cut so the packed words fit: at most ``bucket_rows`` positions (one id may
exceed it alone) and a suffix-id span small enough for the key's bits.
"""

from __future__ import annotations

import collections
import os

import numpy as np

from lm_jax.errors import ConfigError
from lm_jax.ngram import npy

POS_CAP = 255  # positions in a sentence are stored as uint8, capped: orders up to 256


def bits(x: int) -> int:
  return int(x).bit_length()


class OnDisk:
  """Raw arrays in ``base``: appended in slices, read back a slice at a time."""

  def __init__(self, base: str):
    self.base = base

  def path(self, name: str) -> str:
    return os.path.join(self.base, name + ".bin")

  def read(self, name: str, dtype, lo: int, hi: int) -> np.ndarray:
    dtype = np.dtype(dtype)
    with open(self.path(name), "rb") as f:
      return np.fromfile(f, dtype, count=max(hi - lo, 0), offset=lo * dtype.itemsize)

  def remove(self, *names: str) -> None:
    for name in names:
      if os.path.exists(self.path(name)):
        os.remove(self.path(name))


def bucket_bounds(occ_chunks, size: int, rows: int, span: int) -> np.ndarray:
  """First suffix id of each bucket (and ``size`` last), from the occurrences per suffix id.

  A bucket ends where the running occurrence total enters the next multiple of ``rows``,
  at every multiple of ``span`` ids, and around any id with more than ``rows // 2``
  occurrences: a bucket of several ids holds fewer than ``1.5 rows`` positions.
  """
  cuts, total, lo = [np.arange(0, size, span, dtype=np.int64)], 0, 0
  for occ in occ_chunks:
    before = total + np.cumsum(occ) - occ  # positions before each id
    block = before // rows
    new = np.flatnonzero(np.diff(block)) + 1
    heavy = np.flatnonzero(occ > rows // 2)
    cuts += [lo + new, lo + heavy, lo + heavy + 1]
    if lo and len(occ) and (total // rows) != block[0]:
      cuts.append(np.array([lo], np.int64))
    total += int(occ.sum())
    lo += len(occ)
  b = np.unique(np.concatenate(cuts + [np.array([0, size], np.int64)]))
  return b[b <= size]


def ordered(fn, items, pool, ahead: int = 2):
  """``map(fn, items)`` with up to ``ahead`` calls running in ``pool`` (None: in turn)."""
  if pool is None:
    yield from map(fn, items)
    return
  running = collections.deque()
  for item in items:
    running.append(pool.submit(fn, item))
    if len(running) >= ahead:
      yield running.popleft().result()
  while running:
    yield running.popleft().result()


class Counter:
  """Counts orders 2..n from the stream on disk; see the module docstring."""

  def __init__(self, disk: OnDisk, out_dir: str, length: int, vocab_size: int, bos: int, **sizes):
    self.disk, self.out_dir, self.length = disk, out_dir, length
    self.size, self.bos = vocab_size, bos
    self.chunk = sizes["chunk"]  # positions per partition chunk
    self.rows = sizes["bucket_rows"]
    self.vb = bits(vocab_size - 1)

  def count(self, k: int, prev_size: int, occ_chunks, last: bool, pool=None) -> int:
    """Order k's n-grams into ``suffix{k}``/``first{k}`` (``.npy`` in ``out_dir``),
    ``prefix{k}``/``count{k}`` (on disk), ``cont{k-1}``; ids per position in ``gid{k}``
    unless ``last``.  Returns the number of distinct n-grams."""
    pb_max = bits(self.rows + self.rows // 2)
    span = 1 << max(1, 63 - self.vb - pb_max)
    bounds = bucket_bounds(occ_chunks, prev_size, self.rows, span)
    table = self._partition(k, bounds, pool)
    return self._sort_buckets(k, bounds, table, last, pool)

  def _partition(self, k: int, bounds: np.ndarray, pool=None) -> np.ndarray:
    """Pass 1: each chunk's records to ``rec{k}``, ordered by bucket, as four int32 columns
    one after the other (suffix - bucket start, first word, prefix, position); the table
    of each chunk's offset (in values) and bucket starts [chunks, buckets + 2].  Chunks
    are cut two at a time with ``pool`` and written in turn."""
    nb = len(bounds) - 1
    # Each suffix id's bucket: a table lookup (half the time of a search in ``bounds``).
    which = np.repeat(np.arange(nb, dtype=np.uint16 if nb < 2**16 else np.int32), np.diff(bounds))
    starts32 = bounds[:-1].astype(np.int32)
    rows, written = [], 0
    chunks = range(0, self.length, self.chunk)
    with open(self.disk.path(f"rec{k}"), "wb") as out:
      for cols, starts in ordered(lambda lo: self._cut(k, lo, which, starts32), chunks, pool):
        for c in cols:
          c.tofile(out)
        rows.append(np.concatenate([[written, len(cols[0])], starts]))
        written += 4 * len(cols[0])
    return np.array(rows, np.int64).reshape(-1, nb + 3)

  def _cut(self, k: int, lo: int, which: np.ndarray, starts32: np.ndarray):
    """One chunk's records, ordered by bucket, and where each bucket starts among them."""
    hi = min(lo + self.chunk, self.length)
    m = self.disk.read("pos", np.uint8, lo, hi) >= k - 1
    # Positions lo - (k - 1) .. hi - 1 (zeros before the text: no n-gram reads them).
    stream = self.disk.read("stream", np.int32, max(lo - (k - 1), 0), hi)
    stream = np.concatenate([np.zeros(max(k - 1 - lo, 0), np.int32), stream])
    if k == 2:
      gid = stream  # positions lo - 1 .. hi - 1: words are the ids of order 1
    else:
      gid = self.disk.read(f"gid{k - 1}", np.int32, max(lo - 1, 0), hi)
      gid = np.concatenate([np.zeros(1 - min(lo, 1), np.int32), gid])
    suffix = gid[1:][m]
    b = which[suffix]
    perm = np.argsort(b, kind="stable")
    cols = []
    for c in (
      suffix - starts32[b],
      stream[: hi - lo][m],
      gid[:-1][m],
      np.arange(lo, hi, dtype=np.uint32)[m].view(np.int32),
    ):
      cols.append(np.take(c, perm))
    return cols, np.searchsorted(b[perm], np.arange(len(starts32) + 1))

  def _bucket(self, k: int, table: np.ndarray, j: int) -> list[np.ndarray]:
    """Bucket j's records as four columns."""
    parts = [[] for _ in range(4)]
    with open(self.disk.path(f"rec{k}"), "rb") as f:
      for base, n_c, a, b in zip(table[:, 0], table[:, 1], table[:, 2 + j], table[:, 3 + j]):
        if b > a:
          for q in range(4):
            f.seek(int(base + q * n_c + a) * 4)
            parts[q].append(np.fromfile(f, np.int32, count=int(b - a)))
    return [np.concatenate(p) if p else np.empty(0, np.int32) for p in parts]

  def _sort_one(self, k: int, table: np.ndarray, j: int, span: int):
    """One bucket's distinct keys: (suffix - lo, first, prefix, count, positions' local ranks)."""
    rel, first, prefix, pos = self._bucket(k, table, j)
    n = len(rel)
    pb = bits(max(n - 1, 0))
    if bits(max(span - 1, 0)) + self.vb + pb > 63:
      raise AssertionError(f"bucket {j} of order {k} does not fit 64-bit keys")
    word = rel.astype(np.uint64) << np.uint64(self.vb + pb)
    del rel
    word |= first.astype(np.uint64) << np.uint64(pb)
    del first
    word |= np.arange(n, dtype=np.uint64)
    word.sort()
    idx = (word & np.uint64((1 << pb) - 1)).astype(np.int64)
    key = word >> np.uint64(pb)
    del word
    new = np.empty(n, bool)
    new[:1] = True
    np.not_equal(key[1:], key[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    count = np.diff(np.append(starts, n)).astype(np.uint32)
    ukey = key[starts]
    rank = np.cumsum(new, dtype=np.int64) - 1
    return (
      (ukey >> np.uint64(self.vb)).astype(np.int64),
      (ukey & np.uint64((1 << self.vb) - 1)).astype(np.int32),
      prefix[idx[starts]],
      count,
      pos.view(np.uint32)[idx],
      rank,
    )

  def _sort_buckets(self, k, bounds, table, last, pool) -> int:
    """Pass 2, bucket by bucket in key order (two at a time with ``pool``: numpy's sort
    and gathers release the interpreter lock)."""
    d = self.disk
    suffix_w = npy.NpyWriter(os.path.join(self.out_dir, f"suffix{k}.npy"), np.int32, None)
    first_w = npy.NpyWriter(os.path.join(self.out_dir, f"first{k}.npy"), np.int32, None)
    files = {name: open(d.path(f"{name}{k}"), "wb") for name in ("prefix", "count")}
    cont = open(d.path(f"cont{k - 1}"), "wb")
    gid = None if last else np.full(self.length, -1, np.int32)
    nb, total = len(bounds) - 1, 0
    jobs = ((j, int(bounds[j]), int(bounds[j + 1] - bounds[j])) for j in range(nb))
    run = lambda job: (job, self._sort_one(k, table, job[0], job[2]))
    results = ordered(run, jobs, pool)
    try:
      for (_, lo, span), (rel, first, prefix, count, pos, rank) in results:
        suffix_w.write(rel + lo)
        first_w.write(first)
        prefix.astype(np.int32).tofile(files["prefix"])
        count.tofile(files["count"])
        np.bincount(rel, minlength=span).astype(np.int32).tofile(cont)
        if gid is not None:
          gid[pos] = rank + total
        total += len(first)
    finally:
      suffix_w.close()
      first_w.close()
      cont.close()
      for f in files.values():
        f.close()
    d.remove(f"rec{k}")
    if gid is not None:
      if total >= 2**31:
        raise ConfigError(f"order {k} has {total} distinct n-grams; ids are int32 (< 2**31).")
      gid.tofile(d.path(f"gid{k}"))
    if k > 2:
      d.remove(f"gid{k - 1}")
    return total
