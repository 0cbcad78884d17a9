"""N-gram language models: estimation, vectorized batched scoring, evaluation.

A model is a suffix trie of sorted arrays (``counts.Counts``) plus back-off
tables (``smoothing.Tables``).  Scoring a (context, word) batch walks two
chains down the trie, one ``searchsorted`` over an order's sorted keys per step,
as whole numpy arrays: the n-grams ending in the word (longest match wins) and the
contexts (whose back-off weights are added for every order the match falls
short of).  Nothing here imports jax: an n-gram run never pays for starting it.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import numpy as np

from lm_jax import evaluation
from lm_jax.data.tokens import TokenArray, contexts, encode_sentences
from lm_jax.data.vocab import Vocab
from lm_jax.errors import ConfigError
from lm_jax.ngram import katz as katz_lib
from lm_jax.ngram import kneser_ney as kn_lib
from lm_jax.ngram import prune as prune_lib
from lm_jax.ngram import smoothing as sm
from lm_jax.ngram.counts import Counts, count_ngrams
from lm_jax.ngram.spec import parse_fallback

CHUNK = 1 << 15  # Scoring batch: bounded temporaries for any corpus size.


def estimate_tables(
  counts: Counts,
  smoothing: str,
  k: float = 1.0,
  discount_fallback=None,
  stupid_backoff_alpha: float = 0.4,
  train: TokenArray | None = None,
  kn_statistics: str = "lmplz",
  keeps: list[np.ndarray] | None = None,
) -> sm.Tables:
  """Dispatches to the smoothing method named in the config (``keeps``: Kneser-Ney pruning)."""
  fallback = parse_fallback(discount_fallback)
  prune_lib.check_smoothing(smoothing, keeps is not None, False)
  if smoothing == "mle":
    return sm.mle(counts)
  if smoothing in ("add_k", "laplace"):
    return sm.add_k(counts, 1.0 if smoothing == "laplace" else k)
  if smoothing == "stupid_backoff":
    return sm.stupid_backoff(counts, stupid_backoff_alpha)
  if smoothing == "katz":
    return katz_lib.katz(counts, fallback)
  if smoothing in ("kneser_ney", "modified_kneser_ney"):
    if kn_statistics not in ("lmplz", "exact"):
      raise ConfigError(f"kn_statistics must be 'lmplz' or 'exact', got {kn_statistics!r}.")
    lmplz_tokens = train if kn_statistics == "lmplz" else None
    return kn_lib.kneser_ney(
      counts, smoothing == "modified_kneser_ney", fallback, lmplz_tokens, keeps
    )
  raise ConfigError(f"unknown smoothing {smoothing!r}; choose one of {', '.join(sm.SMOOTHINGS)}.")


def _child(keys, size: int, parent, word) -> np.ndarray:
  """Id of the n-gram ``word + parent`` (parent's extension by ``word``), or -1.

  An order's n-grams are sorted by (suffix, first word), so their keys
  ``suffix * size + first`` are sorted too: one ``searchsorted`` finds them all.
  """
  ok = (parent >= 0) & (word >= 0)
  q = np.where(ok, parent.astype(np.int64) * size + word, -1)
  if np.all(q[:-1] <= q[1:]):  # Already sorted (a whole vocabulary after one context).
    i = keys.searchsorted(q)  # keys ends with a sentinel: i stays in range
  else:  # Sorted queries search about 3x faster (cache-friendly).
    order = np.argsort(q)
    i = np.empty(len(q), np.int64)
    i[order] = keys.searchsorted(q[order])
  return np.where(ok & (keys[i] == q), i, -1)


def score_batch(arrays, ctx_BxC, word_B) -> np.ndarray:
  """ln p(word | context) for a batch (float32); ``ctx`` is left-padded with -1, newest last."""
  size, logp1, logbow1, orders = arrays
  num_ctx = ctx_BxC.shape[1]
  n_id = word_B
  acc_B = logp1[word_B]
  m_id = ctx_BxC[:, num_ctx - 1] if num_ctx else None
  bows = [logbow1] + [o[2] for o in orders]
  zero = np.float32(0.0)
  for k, (keys, logp, _) in enumerate(orders[:num_ctx], start=2):
    bow_B = np.where(m_id >= 0, bows[k - 2][np.maximum(m_id, 0)], zero)
    n_id = _child(keys, size, n_id, ctx_BxC[:, num_ctx - k + 1])
    acc_B = np.where(n_id >= 0, logp[n_id], acc_B + bow_B)
    if k <= num_ctx:  # The context of the next order: one more word to the left.
      m_id = _child(keys, size, m_id, ctx_BxC[:, num_ctx - k])
  return acc_B


class Scorer:
  """Scoring from ``_score_arrays`` (sorted keys and float32 tables per order): shared by
  ``NGramLM`` and ``binary.MappedNGramLM``, which reads its files block by block."""

  vocab: Vocab
  smoothing: str
  order: int
  normalized: bool
  _score_arrays: tuple

  def logprob(self, ctx_BxC, word_B) -> np.ndarray:
    """Natural-log probabilities (float32) of ``word`` after ``ctx`` (order-1 columns, -1 = none)."""
    return score_batch(
      self._score_arrays, np.asarray(ctx_BxC, np.int32), np.asarray(word_B, np.int32)
    )

  def token_logprobs(self, tokens: TokenArray) -> np.ndarray:
    """ln p of every scored token (each word and each ``</s>``), in corpus order."""
    ctx = contexts(tokens, self.vocab.bos_id, self.order - 1)
    out = np.empty(tokens.num_tokens, dtype=np.float64)
    for i in range(0, tokens.num_tokens, CHUNK):
      out[i : i + CHUNK] = self.logprob(ctx[i : i + CHUNK], tokens.ids[i : i + CHUNK])
    return out

  def _require_normalized(self, what: str) -> None:
    if not self.normalized:
      raise ConfigError(
        f"{self.smoothing} scores are not probabilities (they do not sum to one), "
        f"so {what} is undefined; use katz or kneser_ney for a normalized back-off model."
      )

  def evaluate(self, tokens: TokenArray, split: str) -> evaluation.EvalResult:
    """Sums for perplexity and log-likelihood under lm_jax's convention."""
    self._require_normalized("perplexity")
    return evaluation.from_token_logprobs(
      split, self.token_logprobs(tokens), tokens.oov, tokens.num_sentences
    )

  def sentence_logprob(self, words: Sequence[str]) -> float:
    """ln p(w1 .. wn </s> | <s>)."""
    return float(self.token_logprobs(encode_sentences(self.vocab, [list(words)])).sum())

  def next_logprobs(self, ctx_C: Sequence[int]) -> np.ndarray:
    """ln p(w | ctx) for every predictable w (ctx: the last order-1 ids, -1 padded)."""
    v = self.vocab.num_predictable
    ctx = np.tile(np.asarray(ctx_C, dtype=np.int32)[None, :], (v, 1))
    return np.asarray(self.logprob(ctx, np.arange(v, dtype=np.int32)), dtype=np.float64)


@dataclasses.dataclass
class NGramLM(Scorer):
  """A back-off n-gram model over ``vocab`` (built by ``estimate`` or read from ARPA)."""

  vocab: Vocab
  smoothing: str
  trie: Counts
  tables: sm.Tables

  @property
  def order(self) -> int:
    return self.trie.order

  @property
  def normalized(self) -> bool:
    return self.tables.normalized

  @classmethod
  def estimate(
    cls,
    train: TokenArray,
    vocab: Vocab,
    order: int,
    smoothing: str,
    prune=None,
    prune_entropy: float = 0.0,
    **kwargs,
  ) -> NGramLM:
    """Counts ``train`` and smooths; kwargs go to ``estimate_tables``.

    ``prune`` as lmplz ``--prune`` (e.g. ``"0,0,1"``), then ``prune_entropy`` as SRILM's
    ``-prune`` (relative-entropy threshold); see ``lm_jax.ngram.prune``.
    """
    thresholds = prune_lib.parse_prune(prune, order)
    prune_lib.check_smoothing(smoothing, thresholds is not None, bool(prune_entropy))
    counts = count_ngrams(train, order, vocab.size, vocab.bos_id)
    keeps = None if thresholds is None else prune_lib.keep_masks(counts, thresholds)
    tables = estimate_tables(counts, smoothing, train=train, keeps=keeps, **kwargs)
    if keeps is not None:
      counts, tables = prune_lib.prune_model(counts, tables, keeps)
    if prune_entropy:
      counts, tables = prune_lib.entropy_prune(counts, tables, prune_entropy)
    return cls(vocab, smoothing, counts, tables)

  @functools.cached_property
  def _score_arrays(self):
    pad = lambda a, v: np.append(a, v)  # A sentinel keeps every gather in range.
    size = self.trie.vocab_size
    orders = tuple(
      (
        pad(o.suffix.astype(np.int64) * size + o.first, np.iinfo(np.int64).max),
        pad(lp, 0.0).astype(np.float32),
        pad(lb, 0.0).astype(np.float32),
      )
      for o, lp, lb in zip(self.trie.orders, self.tables.logp[1:], self.tables.logbow[1:])
    )
    return (
      size,
      self.tables.logp[0].astype(np.float32),
      self.tables.logbow[0].astype(np.float32),
      orders,
    )
