import math

import numpy as np
import pytest

from lm_jax import evaluation
from lm_jax.evaluation import EvalResult


def test_perplexity_is_exp_of_mean_nll():
  # Two tokens with p = 1/4 and 1/16: nll = ln 4 + ln 16 = ln 64; ppl = 64^(1/2) = 8.
  assert evaluation.perplexity(math.log(64), 2) == pytest.approx(8.0)
  with pytest.raises(ValueError):
    evaluation.perplexity(1.0, 0)


def _from_srilm(sentences, words, oovs, logprob10):
  # Build sums whose SRILM line must reproduce a published one; OOVs carry 0 nll here.
  nll = -logprob10 * math.log(10)
  return EvalResult("test", nll=nll, tokens=words + sentences, sentences=sentences, oovs=oovs)


def test_srilm_golden_lines():
  # theanolm #13: "1 sentences, 9 words, 1 OOVs 0 zeroprobs, logprob= -20.406 ppl= 185.068 ppl1= 355.426"
  # ppl = 10^(20.406 / (9 - 1 + 1)), ppl1 = 10^(20.406 / (9 - 1)).
  line = _from_srilm(1, 9, 1, -20.406).srilm()
  assert "ppl= 185.068" in line and "ppl1= 355.42" in line and "1 OOVs" in line
  # kaldi #4594: "10000 sentences, 118254 words, 0 OOVs 0 zeroprobs, logprob= -250951.4
  # ppl= 90.50555 ppl1= 132.4765".
  line = _from_srilm(10000, 118254, 0, -250951.4).srilm()
  assert "ppl= 90.5055" in line and "ppl1= 132.476" in line


def test_including_and_excluding_oovs():
  # Three tokens: p = 1/2, 1/8 (an OOV scored as <unk>), 1/2.
  logp = np.log([0.5, 0.125, 0.5])
  r = evaluation.from_token_logprobs("valid", logp, np.array([False, True, False]), sentences=1)
  assert r.perplexity == pytest.approx((2 * 8 * 2) ** (1 / 3))
  assert r.perplexity_excluding_oovs == pytest.approx(2.0)
  rec = r.record()
  assert rec["tokens"] == 3 and rec["oovs"] == 1 and rec["nll"] == pytest.approx(math.log(32))
  assert rec["bits_per_token"] == pytest.approx(5 / 3)


def test_zero_probability_is_infinite_perplexity():
  r = evaluation.from_token_logprobs("test", np.array([0.0, -np.inf]), np.zeros(2, bool), 1)
  assert r.zeroprobs == 1 and math.isinf(r.perplexity)
  assert math.isinf(r.record()["nll"]) and math.isinf(r.perplexity_excluding_oovs)


def test_zero_probability_on_an_oov_only_spares_the_excluding_numbers():
  # Unigram MLE: the OOV (scored as <unk>, never seen) has p = 0; the others 1/2 and 1/4.
  logp = np.array([math.log(0.5), -np.inf, math.log(0.25)])
  r = evaluation.from_token_logprobs("test", logp, np.array([False, True, False]), 1)
  assert math.isinf(r.perplexity)
  assert r.perplexity_excluding_oovs == pytest.approx(math.sqrt(8))  # (2 * 4)^(1/2)
  # SRILM: the OOV is an OOV, not a zeroprob; ppl = 10^(-log10(1/8) / (3 - 1 OOV)) = sqrt(8).
  assert "1 OOVs\n0 zeroprobs" in r.srilm() and "ppl= 2.828427" in r.srilm()
