"""Sampling sentences from an n-gram model, reproducibly from a seed (numpy: no jax to start)."""

from __future__ import annotations

import dataclasses

import numpy as np

from lm_jax.data.vocab import EOS_ID, UNK_ID
from lm_jax.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Sample:
  ids: list[int]  # sampled ids, ending with </s> unless truncated
  logprob: float  # ln p(ids | <s>) under the model (untempered, <unk> allowed)
  truncated: bool  # max_len reached before </s>


def sample(
  lm, seed, max_len: int = 100, temperature: float = 1.0, resample_unk: bool = True
) -> Sample:
  """Draws one sentence word by word until ``</s>``.

  ``seed`` (an int or a tuple of ints, e.g. ``(config.seed, index)``) fixes the draws:
  the same seed gives the same sentence.
  A sampled ``<unk>`` is ignored and drawn again (the lecture's rule), which is
  the same as drawing from the distribution with ``<unk>`` removed and
  renormalized; ``temperature`` divides the log-probabilities before drawing.
  The reported log-probability is the model's own probability of the text.
  """
  if not temperature > 0:
    raise ConfigError(
      f"temperature must be > 0, got {temperature}; 1.0 samples from the model itself."
    )
  width = lm.order - 1
  ctx = [-1] * width
  if width:
    ctx[-1] = lm.vocab.bos_id
  ids, total = [], 0.0
  rng = np.random.default_rng(seed)
  for _ in range(max_len):
    logp = lm.next_logprobs(ctx)
    logits = logp / temperature
    if resample_unk and np.isfinite(logits).sum() > 1:
      logits = logits.copy()
      logits[UNK_ID] = -np.inf
    w = int(np.argmax(logits + rng.gumbel(size=logits.shape)))  # Gumbel-max: one exact draw
    ids.append(w)
    total += float(logp[w])
    if w == EOS_ID:
      return Sample(ids, total, truncated=False)
    if width:
      ctx = ctx[1:] + [w]
  return Sample(ids, total, truncated=True)
