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
