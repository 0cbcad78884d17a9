import math

import numpy as np
import pytest

from lm_jax.data.tokens import encode_sentences
from lm_jax.data.vocab import Vocab
from lm_jax.errors import ConfigError, DiscountError
from lm_jax.ngram.model import NGramLM
from tests import ngram_reference as ref

LECTURE = ["the weather was bad yesterday", "today the weather will be better", "it is nice today"]


def build(sentences, order, smoothing, **kw):
  sents = [s.split() if isinstance(s, str) else s for s in sentences]
  vocab = Vocab.build(sents)
  return NGramLM.estimate(encode_sentences(vocab, sents), vocab, order, smoothing, **kw), vocab


def test_lecture_exercise_laplace_bigram():
  lm, vocab = build(LECTURE, 2, "laplace")
  # Vocabulary: 12 words + </s> + <unk> = 14 predictable types (<s> is context only).
  # Counts of contexts (bigram left words): C(<s>)=3, C(the)=2, C(weather)=2, C(is)=1, C(nice)=1.
  # P(the|<s>)    = (C(<s> the)+1)/(3+14)        = 2/17
  # P(weather|the)= (2+1)/(2+14)                 = 3/16
  # P(is|weather) = (0+1)/(2+14)                 = 1/16
  # P(nice|is)    = (1+1)/(1+14)                 = 2/15
  # P(</s>|nice)  = (0+1)/(1+14)                 = 1/15   ("nice" is followed by "today")
  # P = 2*3*1*2*1 / (17*16*16*15*15) = 12/979200 = 1.2255e-05
  assert vocab.num_predictable == 14
  expected = 12 / 979200
  assert math.exp(lm.sentence_logprob("the weather is nice".split())) == pytest.approx(
    expected, rel=1e-6
  )


def test_mle_golden_and_zero():
  lm, _ = build(["a b", "a c"], 2, "mle")
  # P(a|<s>) = 2/2, P(b|a) = 1/2, P(</s>|b) = 1/1.
  assert math.exp(lm.sentence_logprob(["a", "b"])) == pytest.approx(0.5)
  assert lm.sentence_logprob(["b", "a"]) == -math.inf  # "<s> b" never seen: probability 0.


def _all_contexts(lm, vocab, train, rng, n_random=30):
  """Every training context plus random unseen ones (never containing </s>, <s> only first)."""
  width = lm.order - 1
  if width == 0:
    return np.zeros((1, 0), np.int32)
  from lm_jax.data.tokens import contexts

  seen = np.unique(contexts(train, vocab.bos_id, width), axis=0)
  words = np.array([i for i in range(vocab.num_predictable) if i != 1])
  rand = rng.choice(words, size=(n_random, width)).astype(np.int32)
  rand[: n_random // 3, 0] = vocab.bos_id
  if width > 1:
    rand[: n_random // 3, :1] = -1
    rand[: n_random // 3, 1] = vocab.bos_id
  return np.concatenate([seen, rand])


def zipf_corpus(seed, n_sent=250, n_words=12):
  rng = np.random.default_rng(seed)
  p = 1.0 / np.arange(1, n_words + 1)
  p /= p.sum()
  return [
    [f"w{i}" for i in rng.choice(n_words, size=rng.integers(1, 9), p=p)] for _ in range(n_sent)
  ]


@pytest.mark.parametrize(
  "smoothing,kw",
  [
    ("mle", {}),
    ("laplace", {}),
    ("add_k", {"k": 0.1}),
    ("katz", {}),
    ("kneser_ney", {}),
    ("modified_kneser_ney", {}),
    ("modified_kneser_ney", {"kn_statistics": "exact"}),
  ],
)
@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_probabilities_sum_to_one_for_every_context(smoothing, kw, order):
  sents = zipf_corpus(order)
  vocab = Vocab.build(sents[:200])  # Held-out words appear as <unk> in contexts below.
  train = encode_sentences(vocab, sents[:200])
  lm = NGramLM.estimate(train, vocab, order, smoothing, discount_fallback="0.5,1.0,1.5", **kw)
  ctxs = _all_contexts(lm, vocab, train, np.random.default_rng(order))
  v = vocab.num_predictable
  for ctx in ctxs:
    total = np.exp(lm.next_logprobs(ctx)).sum()
    assert total == pytest.approx(1.0, abs=2e-5), (smoothing, order, ctx)
  if smoothing != "mle":  # Smoothed models give every predictable type some probability.
    assert np.all(np.isfinite(lm.next_logprobs(ctxs[-1])))
  assert lm.next_logprobs(ctxs[0]).shape == (v,)


def assert_matches_reference(lm, vocab, prob, test_sentences):
  """Every test token's ln p from lm_jax equals the naive reference's, context by context."""
  order = lm.order
  for s in test_sentences:
    padded = ["<s>"] + [w if w in vocab.index else "<unk>" for w in s] + ["</s>"]
    for i in range(1, len(padded)):
      h = tuple(padded[max(0, i - order + 1) : i])
      ctx = [-1] * (order - 1 - len(h)) + [vocab.index[x] for x in h]
      got = float(lm.logprob(np.array([ctx]), np.array([vocab.index[padded[i]]]))[0])
      assert got == pytest.approx(ref.log(prob(padded[i], h)), abs=2e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("modified", [True, False])
def test_kneser_ney_matches_textbook_reference(seed, modified):
  sents = zipf_corpus(10 + seed, n_sent=300, n_words=150)
  lm, vocab = build(
    sents, 3, "modified_kneser_ney" if modified else "kneser_ney", kn_statistics="exact"
  )
  prob = ref.kneser_ney(sents, 3, [t for t in vocab.tokens if t != "<s>"], modified)
  assert_matches_reference(lm, vocab, prob, zipf_corpus(100 + seed, n_sent=20, n_words=150))


@pytest.mark.parametrize("seed", [0, 1])
def test_katz_matches_textbook_reference(seed):
  sents = zipf_corpus(20 + seed, n_sent=400, n_words=1000)
  lm, vocab = build(sents, 3, "katz")
  prob = ref.katz(sents, 3, [t for t in vocab.tokens if t != "<s>"])
  assert_matches_reference(lm, vocab, prob, zipf_corpus(200 + seed, n_sent=20, n_words=1000))


@pytest.mark.parametrize("order", [2, 3, 5])
@pytest.mark.parametrize("k_add", [1.0, 0.1])
def test_add_k_matches_textbook_reference(order, k_add):
  sents = zipf_corpus(30 + order, n_sent=200, n_words=40)
  lm, vocab = build(sents, order, "add_k", k=k_add)
  prob = ref.add_k(sents, order, [t for t in vocab.tokens if t != "<s>"], k_add)
  assert_matches_reference(lm, vocab, prob, zipf_corpus(300 + order, n_sent=20, n_words=40))


def test_laplace_trigram_at_sentence_start_uses_the_start_context():
  # 50 x "a b" and 1 x "c b"; V = {a, b, c, </s>, <unk>} = 5. At the first word the
  # trigram's history is just <s>: P(a | <s>) = (C(<s> a) + 1) / (C(<s>) + V) = 51/56.
  lm, vocab = build(["a b"] * 50 + ["c b"], 3, "laplace")
  p = float(lm.logprob(np.array([[-1, vocab.bos_id]]), np.array([vocab.index["a"]]))[0])
  assert math.exp(p) == pytest.approx(51 / 56, rel=1e-6)


def test_stupid_backoff_refuses_perplexity():
  lm, vocab = build(LECTURE, 3, "stupid_backoff")
  with pytest.raises(ConfigError, match="not probabilities"):
    lm.evaluate(encode_sentences(vocab, [["the", "weather"]]), "test")
  # Lecture rule (alpha = 1): an unseen trigram scores as its bigram, an unseen bigram as its unigram.
  lm1, _ = build(LECTURE, 2, "stupid_backoff", stupid_backoff_alpha=1.0)
  # P(is | weather) unseen -> P(is) = C(is) / N = 1 / (15 words + 3 </s>) = 1/18.
  w, ctx = vocab.index["is"], [vocab.index["weather"]]
  assert math.exp(float(lm1.logprob(np.array([ctx]), np.array([w]))[0])) == pytest.approx(
    1 / 18, rel=1e-6
  )


def test_undefined_discounts_name_order_and_counts():
  # KenLM issue #424's situation: a handful of lines gives no n-gram with adjusted count 3 or 4.
  lines = ["this is a test", "this is another test", "a test of the system", "is this a test"]
  with pytest.raises(DiscountError) as e:
    build(lines, 3, "modified_kneser_ney")
  msg = str(e.value)
  assert (
    "-grams are undefined" in msg
    and "counts-of-counts n1..n4" in msg
    and "discount_fallback" in msg
  )
  lm, vocab = build(lines, 3, "modified_kneser_ney", discount_fallback="0.5,1.0,1.5")
  assert lm.tables.info["discount_notes"]  # The fallback is recorded, not silent.
  assert np.isfinite(lm.sentence_logprob(["this", "is", "unseen"]))


def test_bad_order_and_k():
  with pytest.raises(ConfigError, match="order must be >= 1"):
    build(LECTURE, 0, "mle")
  with pytest.raises(ConfigError, match="k > 0"):
    build(LECTURE, 2, "add_k", k=0.0)
  with pytest.raises(ConfigError, match="unknown smoothing"):
    build(LECTURE, 2, "witten_bell")


def test_character_ngrams_score_every_character():
  from lm_jax.data import corpus

  raw = corpus.load("pydoc", level="char")  # The embedded corpus, read as characters.
  vocab = Vocab.build(raw.splits["train"], level="char")
  train = encode_sentences(vocab, raw.splits["train"])
  # ~70 character types: too few unigrams for counts-of-counts n1..n4 (as with lmplz).
  with pytest.raises(DiscountError, match="1-grams are undefined"):
    NGramLM.estimate(train, vocab, 5, "modified_kneser_ney")
  lm = NGramLM.estimate(train, vocab, 5, "modified_kneser_ney", discount_fallback="0.5,1.0,1.5")
  assert [n[:8] for n in lm.tables.info["discount_notes"]] == ["order 1:"]
  test = encode_sentences(vocab, raw.splits["test"])
  res = lm.evaluate(test, "test")
  # One scored token per character of the test text (end of line = </s>).
  assert res.tokens == sum(len(s) + 1 for s in raw.splits["test"])
  assert 2.0 < res.perplexity < 10.0  # English text: a character 5-gram needs ~1.5-3 bits/char.
  assert np.exp(lm.next_logprobs([-1, -1, -1, vocab.bos_id])).sum() == pytest.approx(1.0, abs=1e-5)
