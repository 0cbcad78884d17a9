"""Large-vocabulary benchmark, evaluation: target log-probabilities of the adaptive model.

The model, stream and layout of ``large_vocab`` (V = 793,471, 1-layer LSTM 512, cutoffs
20,000 / 200,000, div 4, batch 32 x 20), random weights.  Both sides score ``ln p`` of
every target with the state carried along each row; both compute a tail cluster only
for the rows whose target is in it.  Each side runs in a fresh interpreter
(``large_vocab.main``) with the default allocator, as an evaluation-only command has it.
"""

from __future__ import annotations

import statistics

import numpy as np

from experiments.benchmarks import large_vocab as lv

# Segments per timed pass, timed passes, tokens per sentence (lm_jax scores sentences).
EVAL_SEGMENTS, EVAL_REPEATS, SENTENCE = 10, 3, 25


def lm_jax_eval_times(segments: int, repeats: int) -> tuple[int, list[float]]:
  """``(tokens, seconds of each timed call)``: lm_jax's evaluation (``token_logprobs``) of
  the adaptive model over ``segments`` [B, T] segments of sentences, after compiling."""
  import jax

  from lm_jax.data.tokens import TokenArray
  from lm_jax.models import get_model
  from lm_jax.train.evaluate import token_logprobs

  cfg = lv._model_config("adaptive")
  params = jax.jit(lambda key: get_model(cfg).init(key, cfg))(jax.random.PRNGKey(0))
  ids = lv.zipf_stream(segments)[0].reshape(-1).copy()
  ids[SENTENCE - 1 :: SENTENCE] = 1  # </s> (id 1 in lm_jax's frequency-sorted ids)
  ends = np.arange(SENTENCE, len(ids) + 1, SENTENCE)
  tokens = TokenArray(ids=ids, starts=np.concatenate([[0], ends]), oov=np.zeros(len(ids), bool))
  token_logprobs(params, tokens, cfg, lv.BATCH, lv.UNROLL)  # compile
  return len(ids), lv._step_times(
    lambda: token_logprobs(params, tokens, cfg, lv.BATCH, lv.UNROLL), repeats, 0
  )


def torch_eval_times(segments: int, repeats: int) -> tuple[int, list[float]]:
  """As ``lm_jax_eval_times``: the same model's target log-probabilities in PyTorch
  (``AdaptiveLogSoftmaxWithLoss(...).output``, each cluster only for its rows), the
  state carried, under ``torch.no_grad``."""
  torch, embed, rnn, head = lv._torch_model("adaptive")
  inputs, targets = (torch.from_numpy(a.astype(np.int64)) for a in lv.zipf_stream(segments))

  def evaluate():
    h = (torch.zeros(1, lv.BATCH, lv.HIDDEN), torch.zeros(1, lv.BATCH, lv.HIDDEN))
    total = 0.0
    with torch.no_grad():
      for s in range(segments):
        cols = slice(s * lv.UNROLL, (s + 1) * lv.UNROLL)
        out, h = rnn(embed(inputs[:, cols]), h)
        logp = head(out.reshape(-1, lv.HIDDEN), targets[:, cols].reshape(-1)).output
        total += float(logp.sum())
    return total

  evaluate()
  return inputs.numel(), lv._step_times(evaluate, repeats, 0)


def table(quick: bool) -> list[str]:
  """The evaluation table: adaptive model, target log-probabilities, each side once."""
  repeats = 1 if quick else EVAL_REPEATS
  rates = {}
  for side, label in (("lm_jax", "lm_jax"), ("torch", "PyTorch")):
    out = lv.measure(side, "eval", repeats, {})
    rates[label] = None if out is None else out[0] / statistics.median(out[1:])
  lines = [
    "",
    f"Evaluation of the adaptive model (same layout, random weights): ln p of every target "
    f"over {EVAL_SEGMENTS} segments of {lv.BATCH} x {lv.UNROLL}, the state carried, each side in "
    f"its own process with the default allocator; tokens/s from the median of {repeats} "
    "timed passes after a first one. lm_jax: `lm_jax.train.evaluate.token_logprobs`; "
    "PyTorch: `AdaptiveLogSoftmaxWithLoss(...).output` under `torch.no_grad()`. Both compute "
    "a tail cluster only for the rows whose target is in it.",
    "",
    "| program | evaluation tokens/s |",
    "|---|---:|",
    *[f"| {k} | {'not installed' if r is None else f'{r:,.0f}'} |" for k, r in rates.items()],
  ]
  if all(rates.values()):
    lines += ["", f"- lm_jax / PyTorch, evaluation: **{rates['lm_jax'] / rates['PyTorch']:.2f}x**."]
  return lines
