"""Interpolated Kneser-Ney and modified Kneser-Ney (Chen & Goodman 1998), as KenLM's lmplz.

Stages named after the math, as in KenLM's builder:
counts -> adjusted counts -> discounts -> initial probabilities and gammas ->
interpolation with the lower order (down to the uniform distribution).
"""

from __future__ import annotations

import numpy as np

from lm_jax.data.tokens import TokenArray, with_bos
from lm_jax.data.vocab import EOS_ID
from lm_jax.errors import DiscountError
from lm_jax.ngram.counts import Counts, find
from lm_jax.ngram.smoothing import Tables, _context_sums, _log, _predictable_mask

LMPLZ_FALLBACK = (0.5, 1.0, 1.5)


def adjusted_counts(counts: Counts) -> list[np.ndarray]:
  """Kneser-Ney adjusted counts per order.

  The highest order keeps raw counts; a lower-order n-gram's count is the
  number of distinct words that precede it (its continuation count, N1+(. g)),
  except n-grams that start with ``<s>``, which nothing can precede: they keep
  their raw counts.  ``<s>`` itself gets 0 (it is never predicted).
  """
  n = counts.order
  out = []
  for k in range(1, n + 1):
    if k == 1:
      raw, starts_bos = counts.unigram, np.arange(counts.vocab_size) == counts.bos_id
    else:
      o = counts.orders[k - 2]
      raw, starts_bos = o.count, o.first == counts.bos_id
    if k == n:
      adj = raw.copy()
    else:
      cont = np.bincount(counts.orders[k - 1].suffix, minlength=len(raw)).astype(np.int64)
      adj = np.where(starts_bos, raw, cont)
    if k == 1:
      adj[counts.bos_id] = 0
    out.append(adj)
  return out


def count_of_counts(adjusted: np.ndarray, upto: int = 4) -> np.ndarray:
  """``n[j]`` = number of n-grams with adjusted count j, for j = 0..upto."""
  return np.bincount(np.minimum(adjusted, upto + 1), minlength=upto + 2)[: upto + 1]


def lmplz_statistics(
  counts: Counts, adjusted: list[np.ndarray], tokens: TokenArray
) -> list[np.ndarray]:
  """The counts that lmplz's discount statistics see, which differ in one n-gram per order.

  lmplz (adjust_counts.cc) streams the n-grams in suffix order over its own
  vocabulary ids (``<unk>``, ``<s>``, ``</s>``, then words by first appearance)
  and, for the lower-order n-grams still open after the last full n-gram,
  records their raw count instead of their adjusted count in the
  counts-of-counts.  Reproducing this keeps the discounts, and so every
  probability, equal to lmplz's; on PTB it moves the unigram D3+ from 1.2623
  to lmplz's 1.2649.
  """
  n = counts.order
  stream, pos = with_bos(tokens, counts.bos_id)
  first_pos = np.full(counts.vocab_size, len(stream), dtype=np.int64)
  np.minimum.at(first_pos, stream, np.arange(len(stream)))
  kid = np.argsort(np.argsort(first_pos, kind="stable"), kind="stable").astype(np.int64) + 3
  kid[counts.bos_id], kid[EOS_ID] = 1, 2
  # lmplz pads every sentence with n-1 <s>: window j steps back of each predicted token.
  # The largest window in suffix order: keep the positions whose last word has
  # the largest lmplz id, then among them the largest previous word, and so on.
  cand = np.nonzero(pos > 0)[0]
  for j in range(n):
    word = np.where(pos[cand] - j >= 0, stream[np.maximum(cand - j, 0)], counts.bos_id)
    cand = cand[kid[word] == kid[word].max()]
  last = cand[0]
  window = [int(stream[last - j]) if pos[last] - j >= 0 else counts.bos_id for j in range(n)]
  stats = [a.copy() for a in adjusted]
  for k in range(1, n):
    gram = tuple(reversed(window[:k]))
    gid = find(counts, gram)
    raw = counts.unigram[gid] if k == 1 else counts.orders[k - 2].count[gid]
    stats[k - 1][gid] = raw
    if gram[0] == counts.bos_id:
      break  # lmplz keeps no longer lower-order n-gram open past <s>.
  return stats


def discounts(
  adjusted: list[np.ndarray], modified: bool, fallback: tuple[float, ...] | None = None
) -> tuple[list[np.ndarray], list[str]]:
  """Per order ``[0, D1, D2, D3+]`` from counts-of-counts (Chen & Goodman 1998, eq. 26).

  Undefined discounts raise DiscountError naming the order and the
  counts-of-counts, unless ``fallback`` (D1, D2, D3+) is given.
  """
  return discounts_from_counts([count_of_counts(a) for a in adjusted], modified, fallback)


def discounts_from_counts(
  counts_of_counts: list[np.ndarray], modified: bool, fallback: tuple[float, ...] | None = None
) -> tuple[list[np.ndarray], list[str]]:
  """``discounts`` from each order's counts-of-counts ``n[0..4]`` (``count_of_counts``)."""
  out, notes = [], []
  for k, n in enumerate(counts_of_counts, start=1):
    try:
      if modified:
        if min(n[1], n[2], n[3]) == 0:
          raise DiscountError(
            _undefined(
              k, n, f"no n-grams with adjusted count {[j for j in (1, 2, 3) if n[j] == 0][0]}"
            )
          )
        y = n[1] / (n[1] + 2.0 * n[2])
        d = [0.0] + [j - (j + 1) * y * n[j + 1] / n[j] for j in (1, 2, 3)]
        for j in (1, 2, 3):
          if not 0 <= d[j] <= j:
            raise DiscountError(_undefined(k, n, f"D{j}={d[j]:.4g} is outside [0, {j}]"))
      else:
        if n[1] == 0 or n[2] == 0:
          raise DiscountError(_undefined(k, n, "no n-grams with adjusted count 1 or 2"))
        d1 = n[1] / (n[1] + 2.0 * n[2])
        d = [0.0, d1, d1, d1]
    except DiscountError:
      if fallback is None:
        raise
      f = tuple(fallback) if modified else (fallback[0],) * 3
      d = [0.0, *f]
      notes.append(f"order {k}: counts-of-counts n1..n4={list(n[1:])}; used fallback discounts {f}")
    out.append(np.asarray(d, dtype=np.float64))
  return out, notes


def _undefined(order: int, n: np.ndarray, why: str) -> str:
  return (
    f"Kneser-Ney discounts for {order}-grams are undefined: {why} "
    f"(counts-of-counts n1..n4 = {list(map(int, n[1:]))}). Is the training text very small "
    "or artificial? Set discount_fallback (e.g. --config.discount_fallback='0.5,1.0,1.5', "
    "lmplz's defaults) to use fixed discounts, or lower the order."
  )


def kneser_ney(
  counts: Counts,
  modified: bool = True,
  fallback: tuple[float, ...] | None = None,
  lmplz_tokens: TokenArray | None = None,
  keeps: list[np.ndarray] | None = None,
) -> Tables:
  """Interpolated (modified) Kneser-Ney back-off tables, lowest order mixed with uniform.

  With ``lmplz_tokens`` (the training tokens), the discounts use lmplz's
  counts-of-counts (see ``lmplz_statistics``); without, Chen & Goodman's exactly.
  ``keeps`` (per order >= 2, from ``prune.keep_masks``) moves the pruned n-grams'
  mass into their contexts' back-off weights, as lmplz ``--prune``; the tables still
  cover every n-gram (``prune.prune_model`` drops the pruned ones).
  """
  adj = adjusted_counts(counts)
  stats = adj if lmplz_tokens is None else lmplz_statistics(counts, adj, lmplz_tokens)
  ds, notes = discounts(stats, modified, fallback)
  pred = _predictable_mask(counts)
  num_pred = int(pred.sum())
  logp, logbow = [], []
  prob = None
  for k in range(1, counts.order + 1):
    a, d = adj[k - 1], ds[k - 1]
    disc = d[np.minimum(a, 3)]
    bucket = [(a == 1).astype(np.float64), (a == 2).astype(np.float64), (a >= 3).astype(np.float64)]
    if k == 1:
      denom = float(a.sum())
      gamma = sum(d[j + 1] * bucket[j].sum() for j in range(3)) / denom
      prob = np.where(pred, (a - disc) / denom + gamma / num_pred, 0.0)
    else:
      o = counts.orders[k - 2]
      denom = _context_sums(counts, k, a.astype(np.float64))
      kept = np.ones(len(a), bool) if keeps is None else keeps[k - 2]
      # Back-off mass: the discounts of the surviving extensions and all of a pruned one's.
      mass = sum(d[j + 1] * _context_sums(counts, k, bucket[j] * kept) for j in range(3))
      if keeps is not None:
        mass = mass + _context_sums(counts, k, np.where(kept, 0.0, a.astype(np.float64)))
      with np.errstate(invalid="ignore", divide="ignore"):
        gamma = mass / denom
      # Chen & Goodman eq. (interpolated): p(w|h) = (a - D(a)) / Σa + gamma(h) p(w|h').
      prob = (a - disc) / denom[o.prefix] + gamma[o.prefix] * prob[o.suffix]
      logbow.append(np.where(denom > 0, _log(gamma), 0.0))
    logp.append(_log(prob))
  logbow.append(np.zeros(len(prob)))
  info = {"discounts": [list(map(float, d[1:])) for d in ds], "discount_notes": notes}
  return Tables(tuple(logp), tuple(logbow), info=info)
