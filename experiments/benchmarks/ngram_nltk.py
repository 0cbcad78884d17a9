"""The NLTK part of the n-gram benchmark: ``KneserNeyInterpolated`` fit and scoring on
prefixes of the training text, against lm_jax on the same prefixes, and the extrapolation."""

from __future__ import annotations

import numpy as np

from experiments.benchmarks.common import median_time, now
from lm_jax.data.tokens import encode_sentences
from lm_jax.data.vocab import Vocab
from lm_jax.errors import DiscountError
from lm_jax.ngram.model import NGramLM

SMOOTHING = "modified_kneser_ney"
LMPLZ_FALLBACK = (
  "0.5,1.0,1.5"  # lmplz's --discount_fallback, for prefixes too small for estimated discounts.
)


def _s(x, fmt="{:.3f}") -> str:
  return "n/a" if x is None else fmt.format(x)


def _x(r: float) -> str:
  return f"{r:,.0f}×" if r >= 100 else f"{r:.2f}×"


def _ratio(a, b) -> str:
  return "n/a" if a is None or b is None or b == 0 else _x(a / b)


def nltk_scores(model, sents, order):
  """NLTK's log2 p of every word and one </s> per sentence, with <s> padding as in its pipeline."""
  out = []
  for s in sents:
    padded = ["<s>"] * (order - 1) + list(s) + ["</s>"]
    out.extend(
      model.logscore(padded[i], padded[i - order + 1 : i]) for i in range(order - 1, len(padded))
    )
  return np.array(out)


def _jax_fit(sentences, level: str, order: int, kwargs: dict) -> NGramLM:
  """lm_jax's equivalent of NLTK's fit: vocabulary, encoding, counting, smoothing."""
  vocab = Vocab.build(sentences, level=level)
  return NGramLM.estimate(encode_sentences(vocab, sentences), vocab, order, SMOOTHING, **kwargs)


def bench_nltk(raw, fractions, n_test, order=5):
  """NLTK KneserNeyInterpolated vs lm_jax on prefixes of train; None without NLTK."""
  try:
    from nltk.lm import KneserNeyInterpolated
    from nltk.lm.preprocessing import padded_everygram_pipeline
  except ImportError:
    return None
  train, test, rows = raw.splits["train"], raw.splits["test"][:n_test], []
  for frac in fractions:
    prefix = train[: max(1, round(frac * len(train)))]
    t = now()
    grams, words = padded_everygram_pipeline(order, prefix)
    nl = KneserNeyInterpolated(order)
    nl.fit(grams, words)
    nl_fit = now() - t
    t = now()
    logs = nltk_scores(nl, test, order)
    nl_score = now() - t
    try:
      kwargs = {}
      _jax_fit(prefix, raw.level, order, kwargs)
    except DiscountError:  # Too little text for Chen & Goodman's discounts: lmplz's fixed ones.
      kwargs = {"discount_fallback": LMPLZ_FALLBACK}
    jx_fit, lm = median_time(lambda: _jax_fit(prefix, raw.level, order, kwargs), 3)  # noqa: B023
    fallback, vocab = bool(kwargs), lm.vocab
    tokens = encode_sentences(vocab, test)
    t = now()
    lm.evaluate(tokens, "test")
    jx_cold = now() - t
    jx_warm = median_time(lambda: lm.evaluate(tokens, "test"), 3)[0]  # noqa: B023
    rows.append(
      dict(
        frac=frac,
        sents=len(prefix),
        words=sum(map(len, prefix)),
        nl_fit=nl_fit,
        nl_score=nl_score,
        zero=int(np.sum(np.isneginf(logs))),
        tokens=len(logs),
        jx_fit=jx_fit,
        jx_cold=jx_cold,
        jx_warm=jx_warm,
        fallback=fallback,
      )
    )
  return rows


def _slope(xs, ys) -> float:
  """Exponent k of y ∝ x^k fitted through the measured points (log-log least squares)."""
  return float(np.polyfit(np.log(xs), np.log(ys), 1)[0]) if len(xs) > 1 else 1.0


def _nltk_md(nl, n_test, full, train, test) -> tuple[list[str], float | None]:
  """The NLTK table and scaling note; also the extrapolated full-PTB ratio."""
  md = [
    "",
    "### NLTK `nltk.lm.KneserNeyInterpolated` (order 5) vs lm_jax, on prefixes of train",
    "",
  ]
  if nl is None:
    return md + ["NLTK not available (install nltk)."], None
  md += [
    f"NLTK at order 5 on all of train does not finish in reasonable time, so both were measured on the "
    f"same prefixes of train, in this run, scoring the first {n_test} test sentences "
    f"({nl[0]['tokens']:,} tokens). NLTK: one run each; lm_jax: median of 3 fits (vocabulary, encoding, "
    "counting, smoothing) and of 3 scoring passes after a first (compiling) call. NLTK's KN differs from lm_jax's in details (one fixed discount 0.1, "
    "not modified KN; its unigram level is the bare continuation distribution, so words unseen in the "
    "prefix get probability 0), so this compares speed, not a parity check of the numbers.",
    "",
    "| prefix | sentences | words | NLTK fit (s) | lm_jax fit (s) | fit ratio | NLTK scoring (s) | "
    "NLTK tokens/s | lm_jax scoring warm (s) | lm_jax tokens/s | scoring ratio | "
    "fit + scoring ratio (lm_jax incl. compile) | NLTK p=0 tokens |",
    "|---" * 13 + "|",
  ]
  for n in nl:
    total_nl, total_jx = n["nl_fit"] + n["nl_score"], n["jx_fit"] + n["jx_cold"]
    md.append(
      f"| {n['frac']:.1%} | {n['sents']:,} | {n['words']:,} | {n['nl_fit']:.3f} | "
      f"{n['jx_fit']:.3f}{' †' if n['fallback'] else ''} | {_ratio(n['nl_fit'], n['jx_fit'])} | "
      f"{n['nl_score']:.2f} | {n['tokens'] / n['nl_score']:,.0f} | {n['jx_warm']:.4f} | "
      f"{n['tokens'] / n['jx_warm']:,.0f} | {_ratio(n['nl_score'], n['jx_warm'])} | "
      f"{_ratio(total_nl, total_jx)} | {n['zero']} |"
    )
  if any(n["fallback"] for n in nl):
    md += [
      "",
      f"† Too little text for estimated discounts: lm_jax used lmplz's fixed ones ({LMPLZ_FALLBACK}).",
    ]
  words = [n["words"] for n in nl]
  k_fit, k_tok = (
    _slope(words, [n["nl_fit"] for n in nl]),
    _slope(words, [n["nl_score"] / n["tokens"] for n in nl]),
  )
  # Extrapolated linearly, as NLTK's algorithm implies (counting is one pass; each scored token scans
  # every higher-order n-gram), not with the fitted exponents, which load on a shared machine skews.
  scale = (train.num_tokens - train.num_sentences) / words[-1]
  fit_full = nl[-1]["nl_fit"] * scale
  score_full = nl[-1]["nl_score"] / nl[-1]["tokens"] * scale * test.num_tokens
  ratio = (fit_full + score_full) / (full["est"] + full["score"])
  return md + [
    "",
    f"How NLTK's time grows with training words, fitted over these prefixes: fit ∝ words^{k_fit:.2f}, "
    f"scoring time per token ∝ words^{k_tok:.2f}; its algorithm makes both linear (counting is one pass, and "
    "each scored token scans every higher-order n-gram for continuation counts). Extrapolated linearly "
    f"(not measured) to all of train and the whole test set: NLTK fit ≈ {fit_full:,.0f} s "
    f"({_x(fit_full / full['est'])} lm_jax's measured {full['est']:.2f} s), scoring ≈ "
    f"{score_full / 3600:,.1f} h (lm_jax: {full['score']:.3f} s); together ≈ {_x(ratio)}.",
  ], ratio
