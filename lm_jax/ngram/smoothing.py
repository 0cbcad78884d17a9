"""Smoothing methods: pure functions from count arrays to back-off tables.

Every method returns, per order k, ``logp[k]`` (ln p of each order-k n-gram
given its context) and ``logbow[k]`` (ln back-off weight of each order-k n-gram
used as a context).  Scoring then follows the ARPA rule
``p(w|h) = p(h w)`` if ``h w`` is stored, else ``bow(h) * p(w|h')``, with
``bow = 1`` for contexts that are not stored.  Interpolated models store
interpolated probabilities, exactly as an ARPA file does.

The predictable vocabulary is every id but ``<s>``; ``<s>``'s unigram
probability is 0 (it is context only).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from lm_jax.errors import ConfigError
from lm_jax.ngram.counts import Counts
from lm_jax.ngram.spec import SMOOTHINGS

NORMALIZED = frozenset(SMOOTHINGS) - {"stupid_backoff"}
NEG_INF = -np.inf


@dataclasses.dataclass(frozen=True)
class Tables:
  """Back-off tables: ``logp[k-1]``, ``logbow[k-1]`` for order k (natural logs)."""

  logp: tuple[np.ndarray, ...]
  logbow: tuple[np.ndarray, ...]
  normalized: bool = True
  info: dict = dataclasses.field(default_factory=dict)  # discounts etc., for run records


def _log(x: np.ndarray) -> np.ndarray:
  with np.errstate(divide="ignore"):
    return np.log(x)


def _context_sums(counts: Counts, k: int, values: np.ndarray) -> np.ndarray:
  """Σ of ``values`` over the order-k n-grams that share each order-(k-1) context."""
  prev_size = counts.vocab_size if k == 2 else counts.orders[k - 3].size
  return np.bincount(counts.orders[k - 2].prefix, weights=values, minlength=prev_size)


def _predictable_mask(counts: Counts) -> np.ndarray:
  m = np.ones(counts.vocab_size, dtype=bool)
  m[counts.bos_id] = False
  return m


def _empty_bows(counts: Counts) -> list[np.ndarray]:
  return [np.zeros(n) for n in counts.sizes()]


def mle(counts: Counts) -> Tables:
  """Relative frequencies; an unseen word in a seen context has probability 0.

  An unseen context backs off (weight 1) to the longest seen one, so every
  context has a distribution that sums to one.
  """
  pred = _predictable_mask(counts)
  uni = np.where(pred, counts.unigram, 0).astype(np.float64)
  logp = [_log(uni / uni.sum())]
  logbow = _empty_bows(counts)
  for k in range(2, counts.order + 1):
    o = counts.orders[k - 2]
    denom = _context_sums(counts, k, o.count.astype(np.float64))
    logp.append(np.log(o.count / denom[o.prefix]))
    logbow[k - 2] = np.where(denom > 0, NEG_INF, 0.0)  # Seen context: unseen words get 0.
  return Tables(tuple(logp), tuple(logbow))


def add_k(counts: Counts, k_add: float) -> Tables:
  """Add-k (Lidstone; k = 1 is Laplace) on the highest order: ``(c(h w) + k) / (c(h) + k|V|)``.

  Near the start of a sentence the history is shorter than n-1 words and
  begins with ``<s>``; such contexts are complete, so they get add-k estimates
  from their own order.  Other lower-order tables are reached only by backing
  off from an unseen context, where add-k with c(h) = 0 is the uniform 1/|V|.
  """
  if not k_add > 0:
    raise ConfigError(f"add-k smoothing needs k > 0, got k={k_add}; use k=1 for Laplace.")
  pred = _predictable_mask(counts)
  num_pred = int(pred.sum())
  n = counts.order
  uniform = math.log(1.0 / num_pred)
  logbow = _empty_bows(counts)
  if n == 1:
    c = np.where(pred, counts.unigram, 0).astype(np.float64)
    return Tables(
      (_log(np.where(pred, (c + k_add) / (c.sum() + k_add * num_pred), 0.0)),), tuple(logbow)
    )
  logp = [np.where(pred, uniform, NEG_INF)]
  for k in range(2, n + 1):
    o = counts.orders[k - 2]
    denom = _context_sums(counts, k, o.count.astype(np.float64))
    p = np.log((o.count + k_add) / (denom[o.prefix] + k_add * num_pred))
    # bow(h) * (1/|V|) = k / (c(h) + k|V|) for a word unseen after h.
    bow = np.log(k_add * num_pred / (denom + k_add * num_pred))
    if k < n:  # Below the top order, only contexts that start a sentence are complete.
      p = np.where(o.first == counts.bos_id, p, uniform)
      bow = np.where(counts.words(k - 1)[:, 0] == counts.bos_id, bow, 0.0)
    logp.append(p)
    logbow[k - 2] = bow
  return Tables(tuple(logp), tuple(logbow))


def stupid_backoff(counts: Counts, alpha: float) -> Tables:
  """Relative frequencies, backing off with a constant factor (Brants et al. 2007).

  With ``alpha = 1`` this is the lecture's simplified back-off rule.  ``alpha``
  is paid when backing off from a context seen in training.  Scores do not
  sum to one, so perplexity refuses this model.
  """
  if not 0 < alpha <= 1:
    raise ConfigError(f"stupid_backoff_alpha must be in (0, 1], got {alpha}.")
  t = mle(counts)
  pred = _predictable_mask(counts)
  num_pred = int(pred.sum())
  uni = np.where(np.isneginf(t.logp[0]) & pred, math.log(1.0 / num_pred), t.logp[0])
  # The factor applies when backing off from a context seen in training (an
  # n-gram with extensions); unseen contexts back off for free, as in ARPA files.
  logbow = [
    np.where(
      _context_sums(counts, k + 1, np.ones(counts.orders[k - 1].size)) > 0, math.log(alpha), 0.0
    )
    for k in range(1, counts.order)
  ]
  logbow.append(np.zeros(counts.sizes()[-1]))
  return Tables((uni, *t.logp[1:]), tuple(logbow), normalized=False)
