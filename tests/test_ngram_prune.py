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
from lm_jax.ngram.counts import count_ngrams
from lm_jax.ngram.model import NGramLM
from lm_jax.ngram.prune import parse_prune
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
