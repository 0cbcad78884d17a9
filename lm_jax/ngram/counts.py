"""Vectorized n-gram counting into a suffix trie of sorted arrays.

Each sentence is counted as ``<s> w1 .. wn </s>``; n-grams never cross
sentences and ``<s>`` appears only as the first word of an n-gram.

Order-1 ids are word ids.  An order-k n-gram ``(w1 .. wk)`` (k >= 2) is
identified by its *suffix* ``(w2 .. wk)`` (an order k-1 id) and its first word
``w1``; each order's n-grams are sorted by ``(suffix, first)``, so the
extensions of one (k-1)-gram to the left are contiguous and sorted by word.
Keys ``suffix * S + first`` (S = vocabulary size) stay far below 2**63 even
when ``S**5`` does not, because suffix ids count distinct n-grams, not ``S**k``.
The suffix links give Kneser-Ney's continuation counts with one bincount; the
prefix links ``(w1 .. w(k-1))`` give each n-gram's context.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np

from lm_jax.data.tokens import TokenArray, with_bos
from lm_jax.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Order:
  """The n-grams of one order (k >= 2), sorted by (suffix, first)."""

  suffix: np.ndarray  # int32 id of (w2 .. wk) at order k-1
  first: np.ndarray  # int32 w1
  prefix: np.ndarray  # int32 id of (w1 .. w(k-1)) at order k-1: the context
  count: np.ndarray  # int64 raw counts
  child_start: (
    np.ndarray
  )  # int64 [M(k-1) + 1]: extensions of (k-1)-gram j are child_start[j]:child_start[j+1]

  @property
  def size(self) -> int:
    return len(self.first)


@dataclasses.dataclass(frozen=True)
class Counts:
  """Raw n-gram counts of orders 1..N over a vocabulary of ``vocab_size`` ids."""

  vocab_size: int  # all ids, <s> included
  bos_id: int
  unigram: np.ndarray  # int64 [vocab_size]
  orders: tuple[Order, ...]  # orders 2..N

  @property
  def order(self) -> int:
    return len(self.orders) + 1

  def sizes(self) -> list[int]:
    return [self.vocab_size] + [o.size for o in self.orders]

  def words(self, k: int) -> np.ndarray:
    """The order-k n-grams as an int32 [M, k] array of word ids."""
    if k == 1:
      return np.arange(self.vocab_size, dtype=np.int32)[:, None]
    o = self.orders[k - 2]
    return np.concatenate([o.first[:, None], self.words(k - 1)[o.suffix]], axis=1)


def link_children(suffix: np.ndarray, num_parents: int) -> np.ndarray:
  """CSR offsets of each parent's extensions in a (suffix, first)-sorted order."""
  return np.searchsorted(suffix, np.arange(num_parents + 1)).astype(np.int64)


def count_ngrams(tokens: TokenArray, order: int, vocab_size: int, bos_id: int) -> Counts:
  """Counts all n-grams of orders 1..order with sorting, no per-n-gram Python."""
  if order < 1:
    raise ConfigError(
      f"order must be >= 1, got {order}; use 1 for unigrams, 5 for the usual 5-gram."
    )
  stream, pos = with_bos(tokens, bos_id)
  unigram = np.bincount(stream, minlength=vocab_size).astype(np.int64)
  gid_prev = stream.astype(np.int64)  # id of the (k-1)-gram ending at each position
  orders = []
  num_prev = vocab_size
  for k in range(2, order + 1):
    valid = np.nonzero(pos >= k - 1)[0]
    keys = gid_prev[valid] * vocab_size + stream[valid - (k - 1)]
    uniq, first_idx, inverse, count = np.unique(
      keys, return_index=True, return_inverse=True, return_counts=True
    )
    suffix = (uniq // vocab_size).astype(np.int32)
    first = (uniq % vocab_size).astype(np.int32)
    prefix = gid_prev[valid[first_idx] - 1].astype(np.int32)
    orders.append(
      Order(
        suffix=suffix,
        first=first,
        prefix=prefix,
        count=count.astype(np.int64),
        child_start=link_children(suffix, num_prev),
      )
    )
    gid = np.full(len(stream), -1, dtype=np.int64)
    gid[valid] = inverse
    gid_prev, num_prev = gid, len(uniq)
  return Counts(vocab_size=vocab_size, bos_id=bos_id, unigram=unigram, orders=tuple(orders))


def merge_tables(
  a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
  """Sums two (words_MxK, count_M) tables, each row unique; the result is unique and sorted by row."""
  words_MxK = np.concatenate([a[0], b[0]])
  count = np.concatenate([a[1], b[1]])
  k = words_MxK.shape[1]
  if (int(words_MxK.max(initial=0)) + 1) ** k < 2**63:
    # One int64 key per row in lexicographic order.  The running table ``a`` is one sorted
    # run, which a stable sort (timsort) passes over linearly: O(M + m log m) per shard.
    key = np.zeros(len(count), np.int64)
    base = int(words_MxK.max(initial=0)) + 1
    for j in range(k):
      key = key * base + words_MxK[:, j]
    order = np.argsort(key, kind="stable")
    key = key[order]
    new = np.concatenate([[True], key[1:] != key[:-1]])
  else:  # 5-grams over a large vocabulary: rows compared column by column.
    order = np.lexsort(words_MxK.T[::-1])  # Column 0 is the primary key.
    sorted_MxK = words_MxK[order]
    new = np.concatenate([[True], np.any(sorted_MxK[1:] != sorted_MxK[:-1], axis=1)])
  starts = np.nonzero(new[: len(count)])[0]
  return words_MxK[order[starts]], np.add.reduceat(count[order], starts) if len(count) else count


def count_tables(
  tokens: TokenArray, order: int, vocab_size: int, bos_id: int
) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
  """One shard's unigram counts and, per order k >= 2, its (words_MxK, count_M) table."""
  c = count_ngrams(tokens, order, vocab_size, bos_id)
  return c.unigram, [(c.words(k), o.count) for k, o in enumerate(c.orders, start=2)]


def extend(
  counts: Counts, words_MxK: np.ndarray, count: np.ndarray
) -> tuple[Counts, np.ndarray, np.ndarray]:
  """``counts`` with one more order built from n-gram rows in any order.

  Returns the extended trie, the permutation that put the rows into trie order
  (for arrays aligned with them), and the rows whose (k-1)-gram suffix or prefix
  is missing; the trie is only valid when that last array is empty.
  """
  suffix, prefix = lookup(counts, words_MxK[:, 1:]), lookup(counts, words_MxK[:, :-1])
  missing = np.nonzero((suffix < 0) | (prefix < 0))[0]
  first = words_MxK[:, 0].astype(np.int64)
  perm = np.argsort(suffix * counts.vocab_size + first, kind="stable")  # count_ngrams' key order
  suffix = suffix[perm].astype(np.int32)
  o = Order(
    suffix=suffix,
    first=first[perm].astype(np.int32),
    prefix=prefix[perm].astype(np.int32),
    count=np.asarray(count)[perm].astype(np.int64),
    child_start=link_children(suffix, counts.sizes()[-1]),
  )
  return dataclasses.replace(counts, orders=counts.orders + (o,)), perm, missing


def from_tables(
  unigram: np.ndarray, tables: list[tuple[np.ndarray, np.ndarray]], vocab_size: int, bos_id: int
) -> Counts:
  """The suffix trie ``count_ngrams`` builds, from exact per-order (words, count) tables."""
  counts = Counts(vocab_size=vocab_size, bos_id=bos_id, unigram=unigram, orders=())
  for words_MxK, count in tables:
    # Every suffix and prefix of a counted n-gram was counted one order down.
    counts, _, missing = extend(counts, words_MxK, count)
    assert not len(missing), "a counted n-gram's suffix or prefix was not counted"
  return counts


def count_ngrams_sharded(
  shards: Iterable[TokenArray], order: int, vocab_size: int, bos_id: int
) -> Counts:
  """``count_ngrams`` of the concatenated shards, holding one shard and the merged tables at a time.

  Each shard holds whole sentences (n-grams never cross sentences, so they never
  cross shards).  Memory grows with the distinct n-grams, not the corpus length;
  each merge passes over the running table, so time is O(shards x distinct n-grams).
  """
  if order < 1:
    raise ConfigError(
      f"order must be >= 1, got {order}; use 1 for unigrams, 5 for the usual 5-gram."
    )
  unigram = np.zeros(vocab_size, dtype=np.int64)
  tables = [(np.zeros((0, k), np.int32), np.zeros(0, np.int64)) for k in range(2, order + 1)]
  for shard in shards:
    uni, shard_tables = count_tables(shard, order, vocab_size, bos_id)
    unigram += uni
    tables = [merge_tables(t, s) for t, s in zip(tables, shard_tables)]
  return from_tables(unigram, tables, vocab_size, bos_id)


def find(counts: Counts, ngram: tuple[int, ...]) -> int:
  """The id of one n-gram at its order, or -1."""
  return int(lookup(counts, np.asarray([ngram]))[0])


def lookup(counts: Counts, words_MxK: np.ndarray) -> np.ndarray:
  """Ids of many order-K n-grams at once (-1 where absent), by sorted-key search."""
  words_MxK = np.asarray(words_MxK, dtype=np.int64)
  node = words_MxK[:, -1].copy()
  node[(node < 0) | (node >= counts.vocab_size)] = -1
  for k in range(2, words_MxK.shape[1] + 1):
    o = counts.orders[k - 2]
    keys = o.suffix.astype(np.int64) * counts.vocab_size + o.first
    query = node * counts.vocab_size + words_MxK[:, -k]
    j = np.minimum(np.searchsorted(keys, query), max(len(keys) - 1, 0))
    hit = (
      (node >= 0) & (len(keys) > 0) & (keys[j] == query) if len(keys) else np.zeros(len(node), bool)
    )
    node = np.where(hit, j, -1)
  return node
