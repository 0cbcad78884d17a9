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
from lm_jax.ngram import ooc_stream
from lm_jax.ngram.ooc_arrays import Estimate, Stages
from lm_jax.ngram.ooc_count import POS_CAP, OnDisk
from lm_jax.ngram.ooc_estimate import Estimator

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
      est = Estimator(disk, windows, out_dir, budget, pool, stages)
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
