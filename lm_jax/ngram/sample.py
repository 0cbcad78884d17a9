"""Sampling sentences from an n-gram model with explicit ``jax.random`` keys."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from lm_jax.data.vocab import EOS_ID, UNK_ID
from lm_jax.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Sample:
  ids: list[int]  # sampled ids, ending with </s> unless truncated
  logprob: float  # ln p(ids | <s>) under the model (untempered, <unk> allowed)
  truncated: bool  # max_len reached before </s>


def sample(
  lm, key: jax.Array, max_len: int = 100, temperature: float = 1.0, resample_unk: bool = True
) -> Sample:
  """Draws one sentence word by word until ``</s>``.

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
  for step in range(max_len):
    logp = lm.next_logprobs(ctx)
    logits = logp / temperature
    if resample_unk and np.isfinite(logits).sum() > 1:
      logits = logits.copy()
      logits[UNK_ID] = -np.inf
    w = int(jax.random.categorical(jax.random.fold_in(key, step), logits))
    ids.append(w)
    total += float(logp[w])
    if w == EOS_ID:
      return Sample(ids, total, truncated=False)
    if width:
      ctx = ctx[1:] + [w]
  return Sample(ids, total, truncated=True)
