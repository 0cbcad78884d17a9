"""Sampled softmax (Jean et al. 2015) and BlackOut (Ji et al. 2015), as TensorFlow samples.

Candidates come from TensorFlow's log-uniform (Zipfian) sampler over the
frequency-sorted ids, ``Q(k) = ln((k + 2) / (k + 1)) / ln(V + 1)``, drawn as its
default ``unique=True``: distinct ids, with the number of draws it took, so each id's
expected count is ``-expm1(tries * log1p(-Q(k)))``.  Used by ``output_layers`` for
``model.output="sampled"`` (training only).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def log_uniform_log_q(k, v: int):
  """ln Q(k) of TensorFlow's log-uniform (Zipfian) sampler over [0, v): ln((k+2)/(k+1)) / ln(v+1)."""
  k = k.astype(jnp.float32)
  return jnp.log(jnp.log1p(1.0 / (k + 1.0)) / math.log(v + 1.0))


def sample_log_uniform(rng, num: int, v: int):
  """``num`` ids drawn with replacement from Q: ``floor(exp(u ln(v + 1))) - 1`` (as TensorFlow)."""
  u = jax.random.uniform(rng, (num,), jnp.float32)
  k = jnp.floor(jnp.exp(u * math.log(v + 1.0))).astype(jnp.int32) - 1
  return jnp.clip(k, 0, v - 1)


def sample_unique(rng, num: int, v: int):
  """TensorFlow's ``unique=True`` draw: log-uniform ids until ``num`` distinct ones.

  Returns the distinct ids in the order first drawn and ``num_tries``, the number of
  draws it took, from which each id's expected count is ``-expm1(tries * log1p(-Q))``.
  Draws come in rounds of ``num``; within a round they are taken in order.
  """
  if num > v:
    raise ValueError(f"cannot draw {num} distinct ids out of {v}")

  def body(s):
    key, seen, count, tries, out = s
    key, sub = jax.random.split(key)
    c = sample_log_uniform(sub, num, v)
    order = jnp.argsort(c, stable=True)
    sc = c[order]
    first_sorted = jnp.concatenate([jnp.ones(1, bool), sc[1:] != sc[:-1]])
    first = jnp.zeros(num, bool).at[order].set(first_sorted)
    new = first & ~seen[c]
    rank = jnp.cumsum(new)
    take = new & (count + rank <= num)
    out = out.at[jnp.where(take, count + rank - 1, num)].set(c, mode="drop")
    seen = seen.at[jnp.where(take, c, v)].set(True, mode="drop")
    taken = take.sum()
    last = jnp.max(jnp.where(take, jnp.arange(num), -1))
    tries = tries + jnp.where(count + taken >= num, last + 1, num)
    return key, seen, count + taken, tries, out

  init = (rng, jnp.zeros(v, bool), jnp.int32(0), jnp.int32(0), jnp.zeros(num, jnp.int32))
  _, _, _, tries, out = jax.lax.while_loop(lambda s: s[2] < num, body, init)
  return out, tries


def log_expected_count(ids, tries, v: int):
  """ln of TensorFlow's expected count for a unique draw: ``-expm1(tries * log1p(-Q(k)))``."""
  q = jnp.exp(log_uniform_log_q(ids, v))
  return jnp.log(-jnp.expm1(tries.astype(jnp.float32) * jnp.log1p(-q)))


def sampled_logits(h_NxD, w_DxV, b_V, t_N, sampled_S, tries):
  """``[true | sampled]`` logits, each minus ln(expected count), accidental hits removed."""
  v = w_DxV.shape[1]
  true_N = (h_NxD * w_DxV[:, t_N].T).sum(-1) + b_V[t_N] - log_expected_count(t_N, tries, v)
  samp_NxS = h_NxD @ w_DxV[:, sampled_S] + b_V[sampled_S]
  samp_NxS = samp_NxS - log_expected_count(sampled_S, tries, v)
  hit_NxS = sampled_S[None, :] == t_N[:, None]
  samp_NxS = jnp.where(hit_NxS, jnp.finfo(jnp.float32).min, samp_NxS)
  return jnp.concatenate([true_N[:, None], samp_NxS], axis=1)


def sampled_sum_nll(h_NxD, w_DxV, b_V, t_N, rng, num_sampled: int, loss: str = "softmax"):
  """Sampled softmax (or BlackOut) loss summed over rows; one candidate set per step."""
  sampled_S, tries = sample_unique(rng, num_sampled, w_DxV.shape[1])
  logits = sampled_logits(h_NxD, w_DxV, b_V, t_N, sampled_S, tries)
  logp = jax.nn.log_softmax(logits, axis=-1)
  if loss == "softmax":
    return -logp[:, 0].sum()
  # BlackOut: the target is right, every sample wrong, under the weighted softmax.
  hit = jnp.concatenate([jnp.zeros_like(t_N[:, None], bool), sampled_S[None] == t_N[:, None]], 1)
  not_p = jnp.log1p(-jnp.exp(jnp.minimum(logp, -1e-7)))
  return -(logp[:, 0] + jnp.where(hit, 0.0, not_p)[:, 1:].sum(-1)).sum()
