import math

import numpy as np
import pytest

from lm_jax.errors import ConfigError
from lm_jax.ngram.sample import sample
from tests.test_ngram_smoothing import LECTURE, build


def test_same_seed_same_text_and_logprob_is_the_models():
  lm, vocab = build(LECTURE, 3, "modified_kneser_ney", discount_fallback="0.5,1.0,1.5")
  key = 7
  a, b = sample(lm, key), sample(lm, key)
  assert a == b
  texts = {tuple(sample(lm, i).ids) for i in range(20)}
  assert len(texts) > 1  # Different seeds explore different sentences.
  for i in range(5):
    s = sample(lm, i, max_len=200)
    if not s.truncated:
      assert s.ids[-1] == 1 and 1 not in s.ids[:-1]  # Stops at </s>, and only there.
      words = vocab.decode(s.ids[:-1])
      assert s.logprob == pytest.approx(lm.sentence_logprob(words), abs=1e-4)


def test_deterministic_chain_is_reproduced_exactly():
  # MLE bigram on one sentence: every step has a single continuation.
  lm, vocab = build(["a b c d"], 2, "mle")
  s = sample(lm, 0)
  assert vocab.decode(s.ids) == ["a", "b", "c", "d", "</s>"] and s.logprob == pytest.approx(0.0)


def test_unk_is_resampled():
  # <unk> has most of the mass after "x" (3 of 4 continuations), yet is never drawn.
  lm, vocab = build([["x", "<unk>"]] * 3 + [["x", "y"]], 2, "mle")
  draws = [vocab.decode(sample(lm, i).ids) for i in range(30)]
  assert all(d == ["x", "y", "</s>"] for d in draws)
  raw = [vocab.decode(sample(lm, i, resample_unk=False).ids) for i in range(30)]
  assert any("<unk>" in d for d in raw)


def test_temperature():
  lm, _ = build(LECTURE, 2, "laplace")
  with pytest.raises(ConfigError, match="temperature"):
    sample(lm, 0, temperature=0.0)
  # Near-zero temperature is greedy: always one of the most probable next words (ties
  # with the maximum are drawn among; every other word's weight underflows to 0).
  ctx = [lm.vocab.bos_id]
  logp = np.where(np.arange(lm.vocab.num_predictable) == 0, -np.inf, lm.next_logprobs(ctx))
  best = set(np.flatnonzero(logp == logp.max()).tolist())
  assert len(best) < lm.vocab.num_predictable - 1  # some words are not among the best
  for seed in range(10):
    s = sample(lm, seed, temperature=1e-4, max_len=5)
    assert s.ids[0] in best
    assert math.isfinite(s.logprob)
