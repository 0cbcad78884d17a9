import collections

import numpy as np
import pytest

from lm_jax.data.tokens import TokenArray, encode_sentences
from lm_jax.data.vocab import Vocab
from lm_jax.errors import ConfigError
from lm_jax.ngram.counts import count_ngrams, find, lookup
from tests import ngram_reference as ref
from tests.test_ngram_smoothing import zipf_corpus


@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_counts_equal_naive_counter(order):
  sents = zipf_corpus(7, n_sent=120, n_words=30)
  vocab = Vocab.build(sents)
  c = count_ngrams(encode_sentences(vocab, sents), order, vocab.size, vocab.bos_id)
  naive = ref.ngram_counts(sents, order)
  for k in range(1, order + 1):
    words = c.words(k)
    got = c.unigram if k == 1 else c.orders[k - 2].count
    ours = {tuple(vocab.decode(w)): int(n) for w, n in zip(words, got) if n}
    assert ours == dict(naive[k])


def test_trie_links_are_consistent():
  sents = zipf_corpus(3, n_sent=80, n_words=20)
  vocab = Vocab.build(sents)
  c = count_ngrams(encode_sentences(vocab, sents), 4, vocab.size, vocab.bos_id)
  for k in range(2, 5):
    o, w = c.orders[k - 2], c.words(k)
    np.testing.assert_array_equal(c.words(k - 1)[o.suffix], w[:, 1:])
    np.testing.assert_array_equal(c.words(k - 1)[o.prefix], w[:, :-1])
    np.testing.assert_array_equal(lookup(c, w), np.arange(len(w)))
    assert find(c, tuple(w[len(w) // 2])) == len(w) // 2
  w4 = c.words(4)
  assert find(c, tuple(int(x) for x in w4[-1])) == len(w4) - 1
  assert lookup(c, np.array([[1, 1, 1, 1]]))[0] == -1  # "</s> </s> </s> </s>" never occurs.


def test_five_grams_over_a_million_word_ids_do_not_overflow():
  # 10^6 ** 5 = 10^30 > 2^63: plain mixed-radix ids would overflow; trie keys do not.
  rng = np.random.default_rng(0)
  vocab_size = 1_000_001
  lengths = rng.integers(3, 12, size=200)
  ids = np.concatenate([np.append(rng.integers(2, vocab_size - 1, n), 1) for n in lengths])
  starts = np.concatenate([[0], np.cumsum(lengths + 1)])
  tokens = TokenArray(ids=ids.astype(np.int32), starts=starts, oov=np.zeros(len(ids), bool))
  c = count_ngrams(tokens, 5, vocab_size, vocab_size - 1)
  naive = collections.Counter()
  for i in range(len(lengths)):
    s = [vocab_size - 1] + ids[starts[i] : starts[i + 1]].tolist()
    naive.update(tuple(s[j : j + 5]) for j in range(len(s) - 4))
  got = {tuple(w): int(n) for w, n in zip(c.words(5).tolist(), c.orders[-1].count)}
  assert got == dict(naive)


def test_order_below_one_is_refused():
  with pytest.raises(ConfigError, match="order must be >= 1"):
    count_ngrams(encode_sentences(Vocab.build([["a"]]), [["a"]]), 0, 4, 3)


def sentence_shards(tokens: TokenArray, cuts: list[int]) -> list[TokenArray]:
  """Whole sentences ``[cuts[i], cuts[i + 1])`` of ``tokens`` as separate TokenArrays."""
  out = []
  for a, b in zip(cuts[:-1], cuts[1:]):
    lo, hi = tokens.starts[a], tokens.starts[b]
    out.append(
      TokenArray(ids=tokens.ids[lo:hi], starts=tokens.starts[a : b + 1] - lo, oov=tokens.oov[lo:hi])
    )
  return out


@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_sharded_counts_equal_the_one_shot_count(order):
  from lm_jax.ngram.counts import count_ngrams_sharded

  sents = zipf_corpus(11, n_sent=3000, n_words=60)
  vocab = Vocab.build(sents)
  tokens = encode_sentences(vocab, sents)
  # Uneven shards, an empty one, and a one-sentence one.
  shards = sentence_shards(tokens, [0, 1, 700, 700, 1900, 2999, 3000])
  assert sum(s.num_tokens for s in shards) == tokens.num_tokens
  one = count_ngrams(tokens, order, vocab.size, vocab.bos_id)
  got = count_ngrams_sharded(iter(shards), order, vocab.size, vocab.bos_id)
  np.testing.assert_array_equal(got.unigram, one.unigram)
  assert (got.vocab_size, got.bos_id, len(got.orders)) == (one.vocab_size, one.bos_id, order - 1)
  for a, b in zip(got.orders, one.orders):
    for field in ("suffix", "first", "prefix", "count", "child_start"):
      np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
      assert getattr(a, field).dtype == getattr(b, field).dtype, field


def test_sharded_counts_of_no_shards_are_empty():
  from lm_jax.ngram.counts import count_ngrams_sharded

  c = count_ngrams_sharded([], 3, 5, 4)
  assert c.unigram.tolist() == [0] * 5 and [o.size for o in c.orders] == [0, 0]
  with pytest.raises(ConfigError, match="order must be >= 1"):
    count_ngrams_sharded([], 0, 5, 4)


@pytest.mark.parametrize("big", [False, True])
def test_merge_tables_sums_equal_rows(big):
  from lm_jax.ngram.counts import merge_tables

  scale = 10**6 if big else 1  # big: 4 columns of ids up to 3e6 overflow one int64 key
  a = (np.array([[1, 2, 3, 3], [0, 0, 1, 2]], np.int32) * scale, np.array([5, 1]))
  b = (np.array([[0, 0, 1, 2], [3, 0, 0, 0], [0, 0, 1, 1]], np.int32) * scale, np.array([2, 7, 4]))
  words, count = merge_tables(a, b)
  assert (
    words.tolist()
    == (np.array([[0, 0, 1, 1], [0, 0, 1, 2], [1, 2, 3, 3], [3, 0, 0, 0]]) * scale).tolist()
  )
  assert count.tolist() == [4, 3, 5, 7]
