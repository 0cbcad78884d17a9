"""Count-threshold pruning (lmplz --prune): thresholds, the pruned trie, and normalization.

Entry-by-entry parity with lmplz's pruned ARPA files is in ``test_lmplz_parity.py``
(where an lmplz binary is available); these checks need no peer.
"""

import numpy as np
import pytest

from configs import ngram
from lm_jax.data import corpus as corpus_lib
from lm_jax.data.tokens import encode_sentences
from lm_jax.data.vocab import Vocab
from lm_jax.errors import ConfigError
from lm_jax.ngram.counts import count_ngrams, lookup
from lm_jax.ngram.model import NGramLM
from lm_jax.ngram.prune import entropy_criterion, parse_prune
from lm_jax.ngram.spec import parse_ngram


@pytest.fixture(scope="module")
def pydoc():
  raw = corpus_lib.load("pydoc")
  vocab = Vocab.build(raw.splits["train"])
  return vocab, encode_sentences(vocab, raw.splits["train"])


def test_thresholds_as_lmplz_parses_them():
  assert parse_prune(None, 3) is None and parse_prune("", 3) is None
  assert parse_prune("0,0,1", 3) == (0, 0, 1)
  assert parse_prune("0 1", 5) == (0, 1, 1, 1, 1)  # the last value repeats
  for bad, why in (
    ("0,2,1", "non-decreasing"),
    ("0,-1", "non-negative"),
    ("0,x", "non-decreasing"),
    ("1,1,1", "prunes unigrams"),
    ("0,0,0,1", "4 thresholds for an order-3"),
  ):
    with pytest.raises(ConfigError, match=why):
      parse_prune(bad, 3)
  c = ngram.get_config("default")
  c.prune, c.smoothing = "0,0,1", "katz"
  with pytest.raises(ConfigError, match="Kneser-Ney"):
    parse_ngram(c)


def test_pruned_model_keeps_exactly_the_ngrams_above_threshold(pydoc):
  vocab, train = pydoc
  full = count_ngrams(train, 4, vocab.size, vocab.bos_id)
  lm = NGramLM.estimate(train, vocab, 4, "modified_kneser_ney", prune="0,1,1,2")
  thresholds = (0, 1, 1, 2)
  for k in range(2, 5):
    counts = full.orders[k - 2].count
    assert lm.trie.sizes()[k - 1] == int((counts > thresholds[k - 1]).sum())
    assert lm.trie.orders[k - 2].count.min() > thresholds[k - 1]
    # The kept n-grams are the full model's, in the same order.
    want = full.words(k)[counts > thresholds[k - 1]]
    np.testing.assert_array_equal(lm.trie.words(k), want)


def test_pruned_mass_moves_to_the_backoff_and_every_context_sums_to_one(pydoc):
  vocab, train = pydoc
  lm = NGramLM.estimate(train, vocab, 3, "modified_kneser_ney", prune="0,0,1")
  full = NGramLM.estimate(train, vocab, 3, "modified_kneser_ney")
  assert lm.trie.sizes()[2] < full.trie.sizes()[2] and lm.trie.sizes()[:2] == full.trie.sizes()[:2]
  # Adjusted counts and discounts come from the unpruned n-grams: unigrams are unchanged.
  np.testing.assert_array_equal(lm.tables.logp[0], full.tables.logp[0])
  assert lm.tables.info["discounts"] == full.tables.info["discounts"]
  # Contexts (w1, w2) whose extensions were all pruned back off with weight exactly 1.
  bigrams = full.trie.words(2)
  has_child = np.bincount(lm.trie.orders[1].prefix, minlength=len(bigrams)) > 0
  had_child = np.bincount(full.trie.orders[1].prefix, minlength=len(bigrams)) > 0
  orphan = np.flatnonzero(had_child & ~has_child)
  assert len(orphan) > 0 and np.all(lm.tables.logbow[1][orphan] == 0.0)
  # Sum over the whole vocabulary: contexts with some, all and none of their extensions pruned.
  v = vocab.num_predictable
  some = np.flatnonzero(
    has_child
    & (
      np.bincount(full.trie.orders[1].prefix, minlength=len(bigrams))
      > np.bincount(lm.trie.orders[1].prefix, minlength=len(bigrams))
    )
  )
  for ctx in [*bigrams[some[:5]], *bigrams[orphan[:3]], [-1, vocab.bos_id]]:
    logp = lm.logprob(np.tile(np.asarray(ctx, np.int32), (v, 1)), np.arange(v, dtype=np.int32))
    assert np.exp(logp.astype(np.float64)).sum() == pytest.approx(1.0, abs=2e-5), ctx


def _dist(lm, ctx) -> np.ndarray:
  """p(. | ctx) over every predictable word, in float64 from the tables (back-off rule)."""
  v = lm.vocab.num_predictable
  words = np.arange(v)
  out = np.zeros(v)
  bow = 0.0  # accumulated ln back-off weight
  done = np.zeros(v, bool)
  for start in range(len(ctx) + 1):  # the longest history first
    hist = list(ctx[start:])
    k = len(hist) + 1
    if k == 1:
      out[~done] = np.exp(bow + lm.tables.logp[0][words[~done]])
      break
    grams = np.column_stack([np.tile(hist, (v, 1)), words])
    j = lookup(lm.trie, grams)
    hit = (j >= 0) & ~done
    out[hit] = np.exp(bow + lm.tables.logp[k - 1][j[hit]])
    done |= hit
    h = lookup(lm.trie, np.asarray([hist]))[0]
    bow += lm.tables.logbow[k - 2][h] if h >= 0 else 0.0
  return out


def test_entropy_criterion_is_the_exact_relative_entropy_of_removing_one_ngram(pydoc):
  # Brute force: remove one trigram (h, w), renormalize h's back-off weight so that p'(.|h)
  # sums to one, and take P(h) x KL(p(.|h) || p'(.|h)) over the whole vocabulary.
  vocab, train = pydoc
  lm = NGramLM.estimate(train, vocab, 3, "modified_kneser_ney")
  crit = entropy_criterion(lm.trie, list(lm.tables.logp), list(lm.tables.logbow), 3)
  trigrams = lm.trie.words(3)
  picks = [
    int(np.argmax(crit)),
    int(np.argmin(crit)),
    *np.random.default_rng(0).choice(len(crit), 4),
  ]
  for i in picks:
    w1, w2, w = map(int, trigrams[i])
    p = _dist(lm, [w1, w2])
    lower = _dist(lm, [w2])
    explicit = (
      lookup(
        lm.trie, np.column_stack([np.full(len(p), w1), np.full(len(p), w2), np.arange(len(p))])
      )
      >= 0
    )
    explicit[w] = False  # removed
    q = np.where(explicit, p, 0.0)
    q[~explicit] = (1.0 - q[explicit].sum()) * lower[~explicit] / lower[~explicit].sum()
    kl = float(np.sum(p * (np.log(p) - np.log(q))))
    p_h = (1.0 if w1 == vocab.bos_id else np.exp(lm.tables.logp[0][w1])) * _dist(lm, [w1])[w2]
    assert crit[i] == pytest.approx(np.expm1(p_h * kl), rel=1e-6, abs=1e-15), (i, crit[i])


def test_entropy_pruning_shrinks_the_model_and_keeps_it_normalized(pydoc):
  vocab, train = pydoc
  full = NGramLM.estimate(train, vocab, 3, "modified_kneser_ney")
  same = NGramLM.estimate(train, vocab, 3, "modified_kneser_ney", prune_entropy=0.0)
  assert same.trie.sizes() == full.trie.sizes()
  small = NGramLM.estimate(train, vocab, 3, "modified_kneser_ney", prune_entropy=1e-6)
  smaller = NGramLM.estimate(train, vocab, 3, "modified_kneser_ney", prune_entropy=1e-5)
  assert full.trie.sizes()[0] == small.trie.sizes()[0]  # unigrams are never pruned
  for k in (1, 2):
    assert full.trie.sizes()[k] > small.trie.sizes()[k] > smaller.trie.sizes()[k]
  # Kept probabilities are unchanged; contexts that lost n-grams still sum to one.
  w = small.trie.words(3)
  j = lookup(full.trie, w)
  np.testing.assert_array_equal(small.tables.logp[2], full.tables.logp[2][j])
  lost = np.flatnonzero(
    np.bincount(full.trie.orders[1].prefix, minlength=full.trie.sizes()[1])[
      lookup(full.trie, small.trie.words(2))
    ]
    > np.bincount(small.trie.orders[1].prefix, minlength=small.trie.sizes()[1])
  )
  assert len(lost) > 0
  for h in small.trie.words(2)[lost[:6]]:
    assert _dist(small, list(h)).sum() == pytest.approx(1.0, abs=1e-9)
