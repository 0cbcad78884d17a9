"""Count-threshold pruning, as KenLM's ``lmplz --prune``.

``prune="0,0,1"`` gives one threshold per order (missing orders repeat the last
value; the values must not decrease): an n-gram of order k whose **raw** count
is at most ``t_k`` is left out of the model.  Its Kneser-Ney statistics stay:

- adjusted (continuation) counts and the discounts' counts-of-counts are taken
  over every n-gram, pruned or not;
- a context h keeps its denominator ``S(h) = Σ_w a(h w)`` over all extensions,
  and the adjusted counts of its pruned extensions join the back-off mass:
  ``γ(h) = (Σ_j D_j N_j(h) + Σ_{w pruned} a(h w)) / S(h)``, where ``N_j`` counts
  the surviving extensions only; a surviving ``h w`` keeps
  ``p(w|h) = (a(h w) - D) / S(h) + γ(h) p(w|h')``.

So a pruned n-gram's probability mass goes to its context's back-off, and the
model is still normalized.  Because the thresholds do not decrease and an
n-gram's count never exceeds its sub-n-grams', every context and suffix of a
surviving n-gram survives too: the pruned trie is closed.  Unigrams are not
pruned (the first threshold must be 0; ``data.min_count`` maps rare words to
``<unk>`` instead).
"""

from __future__ import annotations

import numpy as np

from lm_jax.errors import ConfigError
from lm_jax.ngram.counts import Counts, Order, link_children
from lm_jax.ngram.smoothing import Tables

KN_SMOOTHINGS = ("kneser_ney", "modified_kneser_ney")  # what count pruning applies to
ENTROPY_SMOOTHINGS = ("katz", *KN_SMOOTHINGS)  # normalized back-off models


def check_smoothing(smoothing: str, count_pruning: bool, entropy_pruning: bool) -> None:
  """ConfigError unless ``smoothing`` supports the pruning asked for."""
  if count_pruning and smoothing not in KN_SMOOTHINGS:
    raise ConfigError(
      f"prune applies to Kneser-Ney models (as lmplz --prune), not smoothing={smoothing!r}; "
      "set smoothing='modified_kneser_ney' or unset prune."
    )
  if entropy_pruning and smoothing not in ENTROPY_SMOOTHINGS:
    raise ConfigError(
      f"prune_entropy prunes a normalized back-off model ({', '.join(ENTROPY_SMOOTHINGS)}), "
      f"not smoothing={smoothing!r}; change smoothing or set prune_entropy=0."
    )


def parse_prune(value, order: int) -> tuple[int, ...] | None:
  """``"0,0,1"`` / ``"0 0 1"`` / a sequence -> one threshold per order 1..``order`` (None: off)."""
  if value in (None, "", ()):
    return None
  parts = value.replace(",", " ").split() if isinstance(value, str) else list(value)
  try:
    vals = [int(x) for x in parts]
  except (TypeError, ValueError):
    vals = []
  if not vals or any(v < 0 for v in vals) or any(b < a for a, b in zip(vals, vals[1:])):
    raise ConfigError(
      f"prune={value!r}: give non-decreasing non-negative count thresholds, one per order "
      "starting with the unigrams (as lmplz --prune), e.g. '0,0,1' to drop singleton "
      "trigrams and above."
    )
  if len(vals) > order:
    raise ConfigError(f"prune={value!r} gives {len(vals)} thresholds for an order-{order} model.")
  if vals[0] != 0:
    raise ConfigError(
      f"prune={value!r} prunes unigrams, which would change the vocabulary; start with 0 and "
      "use data.min_count to map rare words to <unk>."
    )
  return tuple(vals + [vals[-1]] * (order - len(vals)))


def keep_masks(counts: Counts, thresholds: tuple[int, ...]) -> list[np.ndarray]:
  """Per order k >= 2: the n-grams whose raw count exceeds ``thresholds[k - 1]``."""
  return [o.count > t for o, t in zip(counts.orders, thresholds[1:])]


def prune_model(counts: Counts, tables: Tables, keeps: list[np.ndarray]) -> tuple[Counts, Tables]:
  """The trie and tables without the pruned n-grams (ids renumbered, order kept)."""
  new_ids = [None]  # order 1: unchanged
  orders, logp, logbow = [], [tables.logp[0]], [tables.logbow[0]]
  for k, (o, keep) in enumerate(zip(counts.orders, keeps), start=2):
    remap = new_ids[-1]
    suffix, prefix = o.suffix[keep], o.prefix[keep]
    if remap is not None:
      suffix, prefix = remap[suffix], remap[prefix]
    num_parents = counts.vocab_size if k == 2 else orders[-1].size
    orders.append(
      Order(
        suffix=suffix.astype(np.int32),
        first=o.first[keep],
        prefix=prefix.astype(np.int32),
        count=o.count[keep],
        child_start=link_children(suffix, num_parents),
      )
    )
    new_ids.append((np.cumsum(keep) - 1).astype(np.int64))
    logp.append(tables.logp[k - 1][keep])
    logbow.append(tables.logbow[k - 1][keep])
  pruned = Counts(counts.vocab_size, counts.bos_id, counts.unigram, tuple(orders))
  return pruned, Tables(tuple(logp), tuple(logbow), tables.normalized, tables.info)


# -- Relative-entropy pruning (Stolcke 1998; SRILM's ``ngram -prune THRESHOLD``) ------------


def _context_probs(counts: Counts, logp: list[np.ndarray], k: int) -> np.ndarray:
  """P(h) of every order-k n-gram h under the model: the chain rule along prefix links
  (``<s>`` as the first word has probability 1, as SRILM's ``contextProb``)."""
  p = np.exp(logp[0])
  p[counts.bos_id] = 1.0
  for j in range(2, k + 1):
    o = counts.orders[j - 2]
    p = p[o.prefix] * np.exp(logp[j - 1])
  return p


def _num_contexts(counts: Counts, k: int) -> int:
  """How many order-(k-1) n-grams there are: the contexts of order k."""
  return counts.vocab_size if k == 2 else counts.orders[k - 3].size


def _explicit(logp, o: Order, k: int) -> tuple[np.ndarray, np.ndarray]:
  """p(w|h) and p(w|h') of every order-k n-gram (h, w); (h', w) is its stored suffix."""
  return np.exp(logp[k - 1]), np.exp(logp[k - 2][o.suffix])


def _left_over(o: Order, p, p_lower, num_contexts: int) -> tuple[np.ndarray, np.ndarray]:
  """Per context h: ``1 - Σ p(w|h)`` and ``1 - Σ p(w|h')`` over the given explicit w (the
  numerator and denominator of h's back-off weight)."""
  return (
    1.0 - np.bincount(o.prefix, weights=p, minlength=num_contexts),
    1.0 - np.bincount(o.prefix, weights=p_lower, minlength=num_contexts),
  )


def entropy_criterion(counts: Counts, logp, logbow, k: int) -> np.ndarray:
  """``exp(ΔH) - 1`` per order-k n-gram: the relative training-set perplexity change of
  removing that n-gram alone (Stolcke 1998, eq. 7; SRILM ``Ngram::pruneProbs``).

  ``ΔH = P(h) D(p(.|h) || p'(.|h))`` where ``p'`` backs off to ``p(w|h')`` for the
  removed ``w`` with the back-off weight renormalized:
  ``bow'(h) = (1 - Σ p(v|h) + p(w|h)) / (1 - Σ p(v|h') + p(w|h'))`` over the explicit
  ``v`` of context h.  In closed form,
  ``D = -{p(w|h) [ln p(w|h') + ln bow'(h) - ln p(w|h)] + (1 - Σ p(v|h)) [ln bow'(h) - ln bow(h)]}``.
  """
  o = counts.orders[k - 2]
  p, p_lower = _explicit(logp, o, k)
  numerator, denominator = _left_over(o, p, p_lower, _num_contexts(counts, k))
  num, den = numerator[o.prefix], denominator[o.prefix]
  with np.errstate(divide="ignore", invalid="ignore"):
    new_bow = np.log(num + p) - np.log(den + p_lower)
    delta = np.log(p_lower) + new_bow - logp[k - 1]
    kl = -(p * delta + num * (new_bow - logbow[k - 2][o.prefix]))
  ph = _context_probs(counts, logp, k - 1)[o.prefix]
  return np.expm1(ph * kl)


def entropy_prune(counts: Counts, tables: Tables, threshold: float) -> tuple[Counts, Tables]:
  """Removes every n-gram whose ``entropy_criterion`` is below ``threshold``, as SRILM.

  Orders are pruned from the highest down; within an order each n-gram is judged
  against the unpruned model (Stolcke's independence approximation), and an n-gram
  that is the context of a surviving longer n-gram is kept, as in SRILM.  One
  difference: lm_jax also keeps the suffix ``(w2 .. wk)`` of a surviving n-gram
  (its trie names an n-gram by its suffix), which SRILM may remove.  After each order, the
  back-off weights of the contexts that lost n-grams are recomputed so that every
  context sums to one: ``bow(h) = (1 - Σ_kept p(w|h)) / (1 - Σ_kept p(w|h'))``.
  Unigrams are never pruned; the kept probabilities are not changed.
  """
  if not threshold > 0:
    return counts, tables
  n = counts.order
  logp, logbow = list(tables.logp), list(tables.logbow)
  keeps: list[np.ndarray | None] = [None] * (n - 1)
  for k in range(n, 1, -1):
    o = counts.orders[k - 2]
    keep = ~(entropy_criterion(counts, logp, logbow, k) < threshold)
    if k < n:  # The context and the suffix of a surviving (k+1)-gram must stay.
      higher, kept = counts.orders[k - 1], keeps[k - 1]
      keep |= np.bincount(higher.prefix[kept], minlength=o.size) > 0
      keep |= np.bincount(higher.suffix[kept], minlength=o.size) > 0
    keeps[k - 2] = keep
    num_contexts = _num_contexts(counts, k)
    lost = np.bincount(o.prefix[~keep], minlength=num_contexts) > 0
    if lost.any():
      p, p_lower = _explicit(logp, o, k)
      numerator, denominator = _left_over(o, p * keep, p_lower * keep, num_contexts)
      with np.errstate(divide="ignore", invalid="ignore"):
        bow = np.log(numerator) - np.log(denominator)
      fixed = logbow[k - 2].copy()
      fixed[lost] = np.where(np.isfinite(bow[lost]), bow[lost], 0.0)
      logbow[k - 2] = fixed
  info = {**tables.info, "prune_entropy": threshold}
  return prune_model(
    counts, Tables(tuple(logp), tuple(logbow), tables.normalized, info), list(keeps)
  )
