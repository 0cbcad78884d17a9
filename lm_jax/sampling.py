"""Sampling sentences from a trained neural model: one jitted ``lax.scan``, one key per step.

Each sample starts from ``<s>`` and the model's fresh state and stops at ``</s>``.
``<unk>`` is masked out (the lecture: "in case a <unk>-token is sampled, ignore
and sample again" -- masking is that rejection done exactly), then the rest is
tempered and optionally cut to the top k.  The reported log-probability is the
model's own, ``Σ ln p(token | history)`` at temperature 1 over the full
distribution, ``</s>`` included, so it is comparable across sampling settings.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from lm_jax import checkpoint as ckpt_lib
from lm_jax import optim
from lm_jax.data.vocab import EOS_ID, UNK_ID, Vocab
from lm_jax.errors import ConfigError

MIN_TEMPERATURE = 1e-3  # Below this, exp(logits / T) overflows float32; use top_k=1 for greedy.


@dataclasses.dataclass(frozen=True)
class Sample:
  """One sampled sentence."""

  text: str
  logprob: float        # natural log, model distribution at temperature 1
  ids: tuple[int, ...]  # sampled ids, </s> included when reached
  truncated: bool       # max_len reached before </s>


def validate(temperature: float, top_k: int | None, num_predictable: int) -> None:
  """Raises ConfigError for settings that cannot produce a proper distribution."""
  if not temperature >= MIN_TEMPERATURE:
    raise ConfigError(f"temperature must be >= {MIN_TEMPERATURE}, got {temperature}; "
                      "for greedy decoding use top_k=1.")
  if top_k is not None and not 1 <= top_k <= num_predictable - 1:
    raise ConfigError(f"top_k must be in [1, {num_predictable - 1}] (every id but <unk>), got {top_k}.")


@functools.partial(jax.jit, static_argnames=("step_fn", "num_samples", "max_len", "bos_id",
                                             "temperature", "top_k"))
def sample(step_fn: Callable, params, carry, key, *, num_samples: int, max_len: int, bos_id: int,
           temperature: float = 1.0, top_k: int | None = None):
  """``(ids_NxL, logprob_N, length_N)``; ``step_fn(params, carry, ids_N) -> (logits_NxV, carry)``.

  Positions after a sample's ``</s>`` hold ``</s>``; ``length`` counts tokens up to
  and including the first ``</s>`` (``max_len`` if there is none).
  """

  def body(state, t):
    carry, prev_N, done_N, logp_N = state
    logits_NxV, carry = step_fn(params, carry, prev_N)
    logp_NxV = jax.nn.log_softmax(logits_NxV.astype(jnp.float32), axis=-1)
    scores_NxV = (logits_NxV.astype(jnp.float32) / temperature).at[:, UNK_ID].set(-jnp.inf)
    if top_k is not None:
      kth_N1 = jax.lax.top_k(scores_NxV, top_k)[0][:, -1:]
      scores_NxV = jnp.where(scores_NxV < kth_N1, -jnp.inf, scores_NxV)
    ids_N = jax.random.categorical(jax.random.fold_in(key, t), scores_NxV, axis=-1)
    ids_N = jnp.where(done_N, EOS_ID, ids_N).astype(jnp.int32)
    logp_N = logp_N + jnp.where(done_N, 0.0, jnp.take_along_axis(logp_NxV, ids_N[:, None], 1)[:, 0])
    return (carry, ids_N, done_N | (ids_N == EOS_ID), logp_N), ids_N

  init = (carry, jnp.full((num_samples,), bos_id, jnp.int32), jnp.zeros((num_samples,), bool),
          jnp.zeros((num_samples,), jnp.float32))
  (_, _, done_N, logp_N), ids_LxN = jax.lax.scan(body, init, jnp.arange(max_len))
  ids_NxL = ids_LxN.T
  first_eos_N = jnp.argmax(ids_NxL == EOS_ID, axis=1)
  return ids_NxL, logp_N, jnp.where(done_N, first_eos_N + 1, max_len)


def load_model(workdir: str):
  """``(spec, model, params, vocab)`` from a run directory, restored strictly."""
  from lm_jax import train  # Deferred: train imports the whole data pipeline.
  from lm_jax.models import get_model
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise ConfigError(f"{workdir} has no config.json; pass the --workdir of a training run.")
  with open(path, encoding="utf-8") as f:
    config = ml_collections.ConfigDict(json.load(f))
  vocab = Vocab.load(os.path.join(workdir, "vocab.json"))
  spec = train.parse_config(config)
  spec = dataclasses.replace(spec, model=spec.model.with_vocab(vocab))
  model = get_model(spec.model)
  state = train.init_state(spec, model, optim.make_optimizer(spec.optim))
  ckpt = ckpt_lib.Checkpointer(workdir, read_only=True)
  try:
    state = ckpt.restore(state, ckpt_lib.run_meta(config, vocab, state.params))
  finally:
    ckpt.close()
  return spec, model, state.params, vocab


def sample_from_workdir(workdir: str, num_samples: int = 5, temperature: float = 1.0,
                        seed: int = 0, top_k: int | None = None, max_len: int = 100) -> list[Sample]:
  """Samples sentences from the latest checkpoint of a training run."""
  spec, model, params, vocab = load_model(workdir)
  validate(temperature, top_k, vocab.num_predictable)
  cfg = spec.model

  def step_fn(params, carry, ids_N):
    logits_Nx1xV, carry = model.apply(params, carry, ids_N[:, None], cfg)
    return logits_Nx1xV[:, 0], carry

  ids, logp, lengths = jax.device_get(sample(
      step_fn, params, model.init_carry(cfg, num_samples), jax.random.PRNGKey(seed),
      num_samples=num_samples, max_len=max_len, bos_id=vocab.bos_id,
      temperature=float(temperature), top_k=top_k))
  out = []
  for row, lp, n in zip(np.asarray(ids), logp, lengths):
    row = tuple(int(i) for i in row[:n])
    out.append(Sample(vocab.detokenize(row), float(lp), row, truncated=row[-1] != EOS_ID))
  return out
