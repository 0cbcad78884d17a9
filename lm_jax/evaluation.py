"""One perplexity convention for every model in lm_jax.

Each line is a sentence ``w1 .. wn``; a model scores ``p(w1 .. wn </s> | <s>)``:
every word and one ``</s>`` per sentence are predicted, ``<s>`` is context only
and never scored.  ``tokens`` counts the predicted tokens (words + sentences).
Log-likelihoods are summed in nats; perplexity is ``exp(nll / tokens)``,
computed once from the sums (never an average of per-sentence perplexities).

Out-of-vocabulary words (mapped to ``<unk>``) are scored as ``p(<unk> | h)`` in
the "including OOVs" numbers.  The "excluding OOVs" numbers drop their log
probability and their count, as SRILM's ``ppl`` and KenLM's "excluding OOVs" do.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math

import numpy as np

from lm_jax.errors import LMJaxError

LN10 = math.log(10.0)


def perplexity(sum_nll: float, n_tokens: int) -> float:
  """``exp(sum_nll / n_tokens)``; sums in nats."""
  if n_tokens <= 0:
    raise LMJaxError("perplexity of zero tokens is undefined; the evaluation split is empty.")
  x = sum_nll / n_tokens
  return math.inf if x > 709.0 else math.exp(x)  # exp overflows a float past 709.78: inf.


@dataclasses.dataclass(frozen=True)
class EvalResult:
  """Sums over one split; every derived number comes from these."""

  split: str
  nll: float  # Σ -ln p over all predicted tokens (OOVs included), nats
  tokens: int  # predicted tokens: words + one </s> per sentence
  sentences: int
  oovs: int  # words that were mapped to <unk>
  oov_nll: float = 0.0  # Σ -ln p over the OOV tokens alone
  zeroprobs: int = 0  # tokens with probability 0 (only unsmoothed models)
  oov_zeroprobs: int = 0  # of those, OOV tokens

  @property
  def perplexity(self) -> float:
    """Including OOVs (scored as <unk>)."""
    if self.zeroprobs:
      return math.inf
    return perplexity(self.nll, self.tokens)

  @property
  def perplexity_excluding_oovs(self) -> float:
    if self.zeroprobs > self.oov_zeroprobs:
      return math.inf
    return perplexity(self.nll - self.oov_nll, self.tokens - self.oovs)

  @property
  def words(self) -> int:
    return self.tokens - self.sentences

  def srilm(self) -> str:
    """SRILM ``ngram -ppl`` summary: OOVs and zeroprobs leave both denominators.

    ``ppl`` counts ``</s>``, ``ppl1`` does not; logprob is log10.
    """
    logprob = -(self.nll - self.oov_nll) / LN10
    zeroprobs = self.zeroprobs - self.oov_zeroprobs  # SRILM counts an OOV as an OOV only.
    denom = self.tokens - self.oovs - zeroprobs
    ppl = 10 ** (-logprob / denom) if denom > 0 else math.inf
    ppl1 = 10 ** (-logprob / (denom - self.sentences)) if denom > self.sentences else math.inf
    return (
      f"{self.sentences} sentences, {self.words} words, {self.oovs} OOVs\n"
      f"{zeroprobs} zeroprobs, logprob= {logprob:.6g} ppl= {ppl:.7g} ppl1= {ppl1:.7g}"
    )

  def record(self) -> dict:
    """The final-evaluation record of ``metrics.jsonl`` (a zero probability makes nll infinite)."""
    nll = math.inf if self.zeroprobs else self.nll
    return {
      "kind": "eval",
      "split": self.split,
      "perplexity": self.perplexity,
      "perplexity_excluding_oovs": self.perplexity_excluding_oovs,
      "tokens": self.tokens,
      "nll": nll,
      "nll_per_token": nll / self.tokens,
      "bits_per_token": nll / self.tokens / math.log(2.0),
      "logprob10": -nll / LN10,
      "sentences": self.sentences,
      "oovs": self.oovs,
      "zeroprobs": self.zeroprobs,
    }


def from_token_logprobs(
  split: str, logp: np.ndarray, oov: np.ndarray, sentences: int
) -> EvalResult:
  """Builds the sums from per-token natural-log probabilities (float64 accumulation)."""
  logp = np.asarray(logp, dtype=np.float64)
  zero = np.isneginf(logp)
  finite = np.where(zero, 0.0, logp)
  return EvalResult(
    split=split,
    nll=float(-finite.sum()),
    tokens=int(len(logp)),
    sentences=int(sentences),
    oovs=int(oov.sum()),
    oov_nll=float(-finite[oov].sum()),
    zeroprobs=int(zero.sum()),
    oov_zeroprobs=int((zero & oov).sum()),
  )


def token_dump(tokens, logp: np.ndarray, vocab) -> str:
  """One TSV row per scored token (sentence, position, token, oov, ln p, log10 p).

  Every model writes this format (``{split}.tokens.tsv``); ``lm_jax.interpolate``
  mixes models from it.
  """
  sent = np.repeat(np.arange(tokens.num_sentences), tokens.lengths)
  pos = np.arange(tokens.num_tokens) - tokens.starts[sent]
  out = io.StringIO()
  w = csv.writer(out, delimiter="\t", lineterminator="\n")
  w.writerow(["sentence", "position", "token", "oov", "ln_prob", "log10_prob"])
  for s, p, t, o, lp in zip(
    sent.tolist(),
    pos.tolist(),
    vocab.decode(tokens.ids),
    tokens.oov.tolist(),
    np.asarray(logp, np.float64).tolist(),
  ):
    w.writerow([s, p, t, int(o), f"{lp:.6f}", f"{lp / LN10:.6f}"])
  return out.getvalue()
