"""N-gram counting as a map-reduce on Dask, for corpora that outgrow one machine.

Map: each shard (whole sentences, so no n-gram crosses shards) is read and counted
where it lands, into sorted per-order ``(words, count)`` tables
(``counts.count_tables``).  Reduce: tables are merged pairwise by n-gram
(``counts.merge_tables``) in Dask's tree reduction (``Bag.fold``).  The driver
only receives the merged tables and builds the same suffix trie ``count_ngrams``
builds on the whole corpus (``counts.from_tables``): equal counts, equal models.

Dask runs the same graph on its local schedulers (threads, processes) and, when a
``dask.distributed.Client`` is active, on that cluster; lm_jax ships no cluster
code of its own.  Install with ``pip install "lm_jax[dask]"`` (add ``distributed``
for a cluster).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lm_jax.data.tokens import TokenArray
from lm_jax.errors import ConfigError
from lm_jax.ngram.counts import Counts, count_tables, from_tables, merge_tables

Tables = tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]  # (unigram, per-order tables)


def _count_shard(shard: Any, load: Callable[[Any], TokenArray] | None, order, vocab_size, bos_id):
  tokens = load(shard) if load is not None else shard
  return count_tables(tokens, order, vocab_size, bos_id)


def _add(a: Tables, b: Tables) -> Tables:
  return a[0] + b[0], [merge_tables(x, y) for x, y in zip(a[1], b[1])]


def count_ngrams_dask(
  shards: Sequence[Any],
  order: int,
  vocab_size: int,
  bos_id: int,
  load: Callable[[Any], TokenArray] | None = None,
  scheduler: str | None = None,
  split_every: int = 8,
) -> Counts:
  """``count_ngrams`` of the concatenated shards, computed by Dask.

  ``shards`` are ``TokenArray``s, or anything ``load`` turns into one on the worker
  (a file path, a shard number): pass a module-level function (or a
  ``functools.partial`` of one) so that process and cluster workers can receive it.
  ``scheduler``: Dask's (``"threads"``, ``"processes"``, ``"synchronous"``); None
  uses the active default, a ``distributed.Client`` when there is one.
  """
  try:
    import dask.bag as db
  except ImportError:
    raise ConfigError(
      "counting on Dask needs the dask package: pip install 'lm_jax[dask]' "
      "(and distributed for a cluster)."
    ) from None
  if order < 1:
    raise ConfigError(f"order must be >= 1, got {order}.")
  if not len(shards):
    raise ConfigError("no shards to count; give at least one shard of whole sentences.")
  count = functools.partial(
    _count_shard, load=load, order=order, vocab_size=vocab_size, bos_id=bos_id
  )
  bag = db.from_sequence(list(shards), npartitions=len(shards)).map(count)
  unigram, tables = bag.fold(_add, _add, split_every=split_every).compute(scheduler=scheduler)
  return from_tables(unigram, tables, vocab_size, bos_id)
