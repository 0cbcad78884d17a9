"""Katz back-off with Good-Turing discounts and normalized back-off weights (Katz 1987)."""

from __future__ import annotations

import numpy as np

from lm_jax.errors import DiscountError
from lm_jax.ngram.counts import Counts
from lm_jax.ngram.smoothing import Tables, _context_sums, _log, _predictable_mask

MAX_DISCOUNTED = 5  # Katz's k: counts above it are reliable and kept as they are.


def good_turing_ratios(count: np.ndarray, k_max: int = MAX_DISCOUNTED) -> tuple[np.ndarray, int]:
  """Katz's discount ratios ``d[r]`` for r = 0..k (``d[r] = 1`` above k).

  ``d_r = (r*/r - (k+1) n_(k+1)/n_1) / (1 - (k+1) n_(k+1)/n_1)`` with Good-Turing
  ``r* = (r+1) n_(r+1) / n_r``.  k is the largest value <= 5 with every
  ``n_1 .. n_(k+1) > 0``.  A ratio outside (0, 1] -- common when ``n_2 > n_1`` on
  small data -- is replaced by 1 (no discount for that count), as SRILM does.
  Returns ``k = 0`` when no count gets discounted.
  """
  n = np.bincount(np.minimum(count, k_max + 2), minlength=k_max + 3).astype(np.float64)
  k = next((k for k in range(k_max, 0, -1) if np.all(n[1 : k + 2] > 0)), 0)
  if k == 0 or (k + 1) * n[k + 1] >= n[1]:
    return np.zeros(1), 0
  common = (k + 1) * n[k + 1] / n[1]
  r = np.arange(1, k + 1)
  d = ((r + 1) * n[r + 1] / (r * n[r]) - common) / (1.0 - common)
  d = np.where((d > 0) & (d <= 1), d, 1.0)
  if np.all(d == 1.0):
    return np.zeros(1), 0
  return np.concatenate([[0.0], d]), k


def _discounted(count: np.ndarray, order: int, fallback) -> tuple[np.ndarray, dict]:
  """Discounted counts ``d_r r`` and what was used (for the run record)."""
  d, k = good_turing_ratios(count)
  if k == 0:
    n = np.bincount(np.minimum(count, 5), minlength=6)[1:5]
    if fallback is None:
      raise DiscountError(
        f"Katz/Good-Turing discounts for {order}-grams are undefined: counts-of-counts "
        f"n1..n4 = {list(map(int, n))} have gaps or put every discount ratio outside (0, 1], so no "
        "probability mass is freed for unseen words. "
        "Is the training text very small or artificial? Set discount_fallback "
        "(e.g. --config.discount_fallback='0.5,1.0,1.5') to discount absolutely, or lower the order."
      )
    return np.maximum(count - fallback[0], 0.0) * (count > 0), {
      "order": order,
      "fallback": fallback[0],
    }
  ratio = np.where(count <= k, d[np.minimum(count, k)], 1.0)
  return count * ratio, {"order": order, "k": k, "ratios": list(map(float, d[1:]))}


def katz(counts: Counts, fallback: tuple[float, ...] | None = None) -> Tables:
  """Katz back-off tables.

  ``p(w|h) = d_r c(h w) / c(h)`` for seen ``h w``; otherwise
  ``alpha(h) p(w|h')`` with ``alpha(h) = (1 - Σ_seen p(w|h)) / (1 - Σ_seen p(w|h'))``.
  Unigrams: Good-Turing-discounted, the freed mass shared evenly by the
  predictable types never seen in training (plain relative frequencies if
  every type was seen).  A context whose continuations were all seen more
  than k times has its counts discounted with ``d_k`` so that unseen words
  keep a non-zero probability.
  """
  pred = _predictable_mask(counts)
  uni = np.where(pred, counts.unigram, 0)
  unseen = pred & (uni == 0)
  if unseen.any():
    disc, info0 = _discounted(uni, 1, fallback)
    p = disc / uni.sum()
    p[unseen] = (1.0 - p.sum()) / unseen.sum()
  else:  # Nothing to give mass to: no discount is needed.
    p, info0 = (
      uni / uni.sum(),
      {"order": 1, "k": 0, "note": "every type seen: relative frequencies"},
    )
  prob = np.where(pred, p, 0.0)
  logp, logbow, infos = [_log(prob)], [], [info0]
  for k in range(2, counts.order + 1):
    o = counts.orders[k - 2]
    disc, info = _discounted(o.count, k, fallback)
    infos.append(info)
    total = _context_sums(counts, k, o.count.astype(np.float64))
    p_star = disc / total[o.prefix]
    seen_mass = _context_sums(counts, k, p_star)
    lower_mass = _context_sums(counts, k, prob[o.suffix])
    has = total > 0
    # A context followed only by words seen more than k times frees no mass, so
    # Katz's rule would give every other word probability 0.  Such contexts get
    # their counts discounted as count k is (d_k); the number is recorded.
    stuck = has & (seen_mass >= 1.0 - 1e-12) & (lower_mass < 1.0 - 1e-12)
    if stuck.any() and "ratios" in info:
      p_star = np.where(stuck[o.prefix], p_star * info["ratios"][-1], p_star)
      seen_mass = _context_sums(counts, k, p_star)
      info["contexts_discounted_as_k"] = int(stuck.sum())
    # If the seen words already hold all lower-order mass, nothing is left to
    # back off to: renormalize that context's seen words instead.
    full = has & (1.0 - lower_mass <= 1e-12)
    p_star = np.where(full[o.prefix], p_star / seen_mass[o.prefix], p_star)
    with np.errstate(divide="ignore", invalid="ignore"):
      alpha = np.where(has & ~full, (1.0 - seen_mass) / (1.0 - lower_mass), 1.0)
    logbow.append(np.where(full, -np.inf, _log(alpha)))
    prob = p_star
    logp.append(_log(prob))
  logbow.append(np.zeros(len(prob)))
  return Tables(tuple(logp), tuple(logbow), info={"katz": infos})
