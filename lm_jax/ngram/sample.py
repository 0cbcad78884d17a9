"""Sampling sentences from an n-gram model, reproducibly from a seed (numpy: no jax to start)."""

from __future__ import annotations

import dataclasses

import numpy as np

from lm_jax.data.vocab import EOS_ID, UNK_ID
from lm_jax.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Sample:
  ids: list[int]  # sampled ids, ending with </s> unless truncated
  logprob: float  # ln p(ids | <s>) under the model (untempered, <unk> allowed)
  truncated: bool  # max_len reached before </s>


def sample(
  lm, seed, max_len: int = 100, temperature: float = 1.0, resample_unk: bool = True
) -> Sample:
  """Draws one sentence word by word until ``</s>``.

  ``seed`` (an int or a tuple of ints, e.g. ``(config.seed, index)``) fixes the draws:
  the same seed gives the same sentence.
  A sampled ``<unk>`` is ignored and drawn again (the lecture's rule), which is
  the same as drawing from the distribution with ``<unk>`` removed and
  renormalized; ``temperature`` divides the log-probabilities before drawing.
  The reported log-probability is the model's own probability of the text.
  """
  if not temperature > 0:
    raise ConfigError(
      f"temperature must be > 0, got {temperature}; 1.0 samples from the model itself."
    )
  width = lm.order - 1
  ctx = [-1] * width
  if width:
    ctx[-1] = lm.vocab.bos_id
  ids, total = [], 0.0
  rng = np.random.default_rng(seed)
  for _ in range(max_len):
    logp = lm.next_logprobs(ctx)
    logits = logp / temperature
    if resample_unk and np.isfinite(logits).sum() > 1:
      logits = logits.copy()
      logits[UNK_ID] = -np.inf
    w = int(np.argmax(logits + rng.gumbel(size=logits.shape)))  # Gumbel-max: one exact draw
    ids.append(w)
    total += float(logp[w])
    if w == EOS_ID:
      return Sample(ids, total, truncated=False)
    if width:
      ctx = ctx[1:] + [w]
  return Sample(ids, total, truncated=True)


def sample_corpus(lm, num_tokens: int, seed: int, batch: int = 1 << 16, max_len: int = 200):
  """Yields sentences (int32 id arrays without ``</s>``) drawn from an interpolated model, about
  ``num_tokens`` tokens in all (``</s>`` included), ``batch`` sentences drawn side by side.

  A normalized back-off model is a mixture: ``p(w|h) = alpha(w|h) [hw stored] + bow(h) p(w|h')``
  with ``alpha(w|h) = p(hw) - bow(h) p(w|h')``; when every ``alpha >= 0`` (always for the
  interpolated Kneser-Ney models, where alpha is the discounted count), each draw
  picks a stored extension of the longest matching context ``h`` with probability
  ``alpha``, or else moves to ``h'`` with the rest of the mass, down to the unigrams:
  exact draws with no rejection.  The same model and seed give the same sentences.  A
  sentence is cut at ``max_len`` words.  Used to generate large corpora with realistic
  n-gram statistics (``experiments/make_ngram_corpus.py``).
  """
  trie, tables = lm.trie, lm.tables
  n, size = trie.order, trie.vocab_size
  # Per order k >= 2: the extensions of each context (prefix), their last words and the
  # running sum of their alpha, in prefix order.
  last = np.arange(size, dtype=np.int64)
  ext = []
  for k in range(2, n + 1):
    o = trie.orders[k - 2]
    last = last[o.suffix]
    alpha = np.exp(tables.logp[k - 1]) - np.exp(
      tables.logbow[k - 2][o.prefix] + tables.logp[k - 2][o.suffix]
    )
    if np.any(alpha < -1e-9):
      raise ConfigError(
        f"sample_corpus needs every stored n-gram at least as probable as its back-off "
        f"estimate (alpha >= 0), as in interpolated Kneser-Ney; a {k}-gram of this model is "
        "not. Sample from a kneser_ney or modified_kneser_ney model."
      )
    perm = np.argsort(o.prefix, kind="stable")
    start = np.searchsorted(o.prefix[perm], np.arange(len(tables.logp[k - 2]) + 1))
    cum = np.concatenate([[0.0], np.cumsum(np.maximum(alpha[perm], 0.0))])
    ext.append((start, cum, last[perm]))
  p1 = np.exp(tables.logp[0])
  cum1 = np.cumsum(p1 / p1.sum())
  keys = [ks for ks, _, _ in lm._score_arrays[3]]
  from lm_jax.ngram.model import _child

  rng = np.random.default_rng(seed)
  made = 0
  while made < num_tokens:
    hist = np.full((batch, n - 1), -1, np.int64)  # Newest last; -1 before the sentence.
    if n > 1:
      hist[:, -1] = lm.vocab.bos_id
    out = np.full((batch, max_len), -1, np.int32)
    live = np.ones(batch, bool)
    for t in range(max_len):
      rows = np.nonzero(live)[0]
      if not len(rows):
        break
      # Context node of each length 1..n-1 (-1 where not stored).
      nodes = [hist[rows, -1]] if n > 1 else []
      for j in range(2, n):
        nodes.append(_child(keys[j - 2], size, nodes[-1], hist[rows, -j]))
      word = np.full(len(rows), -1, np.int64)
      for j in range(n - 1, 0, -1):  # Longest context first.
        node = nodes[j - 1]
        todo = np.nonzero((word < 0) & (node >= 0))[0]
        start, cum, words = ext[j - 1]
        lo, hi = start[node[todo]], start[node[todo] + 1]
        u = rng.random(len(todo))
        mass = cum[hi] - cum[lo]
        pick = u < mass
        i = np.searchsorted(cum, cum[lo[pick]] + u[pick], side="right") - 1
        word[todo[pick]] = words[np.clip(i, lo[pick], hi[pick] - 1)]
      rest = np.nonzero(word < 0)[0]
      word[rest] = np.minimum(np.searchsorted(cum1, rng.random(len(rest)), side="right"), size - 2)
      out[rows, t] = word
      ended = word == EOS_ID
      live[rows[ended]] = False
      if n > 1:
        hist[rows] = np.concatenate([hist[rows, 1:], word[:, None]], axis=1)
    for s in out:
      sent = s[: np.argmax(s == EOS_ID) if (s == EOS_ID).any() else max_len]
      sent = sent[sent >= 0]
      made += len(sent) + 1
      yield sent
      if made >= num_tokens:
        return
