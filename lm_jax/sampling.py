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
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from lm_jax.data.vocab import EOS_ID, UNK_ID
from lm_jax.errors import ConfigError
from lm_jax.rundir import RunDir
from lm_jax.spec import MIN_TEMPERATURE, check_sampling, parse_neural


@dataclasses.dataclass(frozen=True)
class Sample:
  """One sampled sentence."""

  text: str
  logprob: float  # natural log, model distribution at temperature 1
  ids: tuple[int, ...]  # sampled ids, </s> included when reached
  truncated: bool  # max_len reached before </s>


def validate(temperature: float, top_k: int | None, num_predictable: int) -> None:
  """Raises ConfigError for settings that cannot produce a proper distribution."""
  if not temperature >= MIN_TEMPERATURE:
    raise ConfigError(
      f"temperature must be >= {MIN_TEMPERATURE}, got {temperature}; "
      "for greedy decoding use top_k=1."
    )
  if top_k is not None and not 1 <= top_k <= num_predictable - 1:
    raise ConfigError(
      f"top_k must be in [1, {num_predictable - 1}] (every id but <unk>), got {top_k}."
    )


@functools.partial(
  jax.jit, static_argnames=("step_fn", "num_samples", "max_len", "bos_id", "temperature", "top_k")
)
def sample(
  step_fn: Callable,
  params,
  carry,
  key,
  *,
  num_samples: int,
  max_len: int,
  bos_id: int,
  temperature: float = 1.0,
  top_k: int | None = None,
):
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

  init = (
    carry,
    jnp.full((num_samples,), bos_id, jnp.int32),
    jnp.zeros((num_samples,), bool),
    jnp.zeros((num_samples,), jnp.float32),
  )
  (_, _, done_N, logp_N), ids_LxN = jax.lax.scan(body, init, jnp.arange(max_len))
  ids_NxL = ids_LxN.T
  first_eos_N = jnp.argmax(ids_NxL == EOS_ID, axis=1)
  return ids_NxL, logp_N, jnp.where(done_N, first_eos_N + 1, max_len)


def load_model(workdir: str):
  """``(cfg, model, params, vocab)`` of a neural run directory: parameters only, checked strictly."""
  from lm_jax.checkpoint_meta import run_meta  # Deferred: imports jax.
  from lm_jax.models import ModelConfig, get_model
  from lm_jax.train.step import init_state

  run = RunDir.open(
    workdir,
    "neural",
    what="experiments.sample (n-gram runs write samples.txt "
    "themselves: set num_samples in their config)",
  )
  spec = parse_neural(ml_collections.ConfigDict(run.read_config()))
  vocab = run.read_vocab()
  cfg = ModelConfig.build(spec.model, vocab)
  abstract = jax.eval_shape(lambda: init_state(spec.seed, cfg, spec.optim, 1).params)
  _, params = run.restore_params(abstract, run_meta(spec.config, vocab, abstract))
  return cfg, get_model(cfg), params, vocab


def sample_from_workdir(
  workdir: str,
  num_samples: int = 5,
  temperature: float = 1.0,
  seed: int = 0,
  top_k: int | None = None,
  max_len: int = 100,
) -> list[Sample]:
  """Samples sentences from the newest intact checkpoint of a training run."""
  check_sampling(temperature, num_samples, max_len)  # Before anything is read.
  cfg, model, params, vocab = load_model(workdir)
  validate(temperature, top_k, vocab.num_predictable)
  if num_samples == 0:
    return []

  def step_fn(params, carry, ids_N):
    logits_Nx1xV, carry = model.apply(params, carry, ids_N[:, None], cfg)
    return logits_Nx1xV[:, 0], carry

  ids, logp, lengths = jax.device_get(
    sample(
      step_fn,
      params,
      model.init_carry(cfg, num_samples),
      jax.random.PRNGKey(seed),
      num_samples=num_samples,
      max_len=max_len,
      bos_id=vocab.bos_id,
      temperature=float(temperature),
      top_k=top_k,
    )
  )
  out = []
  for row, lp, n in zip(np.asarray(ids), logp, lengths):
    row = tuple(int(i) for i in row[:n])
    out.append(Sample(vocab.detokenize(row), float(lp), row, truncated=row[-1] != EOS_ID))
  return out
