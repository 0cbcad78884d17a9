import math

import jax
import numpy as np
import pytest

from lm_jax.errors import ConfigError
from lm_jax.ngram.sample import sample
from tests.test_ngram_smoothing import LECTURE, build


def test_same_key_same_text_and_logprob_is_the_models():
  lm, vocab = build(LECTURE, 3, "modified_kneser_ney", discount_fallback="0.5,1.0,1.5")
  key = jax.random.key(7)
  a, b = sample(lm, key), sample(lm, key)
  assert a == b
  texts = {tuple(sample(lm, jax.random.key(i)).ids) for i in range(20)}
  assert len(texts) > 1  # Different keys explore different sentences.
  for i in range(5):
    s = sample(lm, jax.random.key(i), max_len=200)
    if not s.truncated:
      assert s.ids[-1] == 1 and 1 not in s.ids[:-1]  # Stops at </s>, and only there.
      words = vocab.decode(s.ids[:-1])
      assert s.logprob == pytest.approx(lm.sentence_logprob(words), abs=1e-4)


def test_deterministic_chain_is_reproduced_exactly():
  # MLE bigram on one sentence: every step has a single continuation.
  lm, vocab = build(["a b c d"], 2, "mle")
  s = sample(lm, jax.random.key(0))
  assert vocab.decode(s.ids) == ["a", "b", "c", "d", "</s>"] and s.logprob == pytest.approx(0.0)


def test_unk_is_resampled():
  # <unk> has most of the mass after "x" (3 of 4 continuations), yet is never drawn.
  lm, vocab = build([["x", "<unk>"]] * 3 + [["x", "y"]], 2, "mle")
  draws = [vocab.decode(sample(lm, jax.random.key(i)).ids) for i in range(30)]
  assert all(d == ["x", "y", "</s>"] for d in draws)
  raw = [vocab.decode(sample(lm, jax.random.key(i), resample_unk=False).ids) for i in range(30)]
  assert any("<unk>" in d for d in raw)


def test_temperature():
  lm, _ = build(LECTURE, 2, "laplace")
  with pytest.raises(ConfigError, match="temperature"):
    sample(lm, jax.random.key(0), temperature=0.0)
  # Near-zero temperature is greedy: always the most probable next word.
  s = sample(lm, jax.random.key(3), temperature=1e-4, max_len=5)
  ctx = [-1] * 0 + [lm.vocab.bos_id]
  assert s.ids[0] == int(
    np.argmax(np.where(np.arange(lm.vocab.num_predictable) == 0, -np.inf, lm.next_logprobs(ctx)))
  )
  assert math.isfinite(s.logprob)
