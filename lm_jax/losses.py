"""Cross-entropy as sums and counts; dividing happens once, at the end (lm_jax.evaluation).

``sum_nll`` (training) differentiates through ``_nll_NxV``, a cross-entropy with a
hand-written backward pass, ``softmax(logits) - onehot(target)``, on the logits
flattened to [N, V].  It is the same function as ``token_nll``; the explicit form
keeps XLA's CPU backend on its fast reduction path (log_softmax's autodiff over a
[B, T, V] array ran about 10 ms slower per PTB-sized step here).  Tests check values
and gradients against ``jax.grad`` of ``token_nll``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def token_nll(logits_BxTxV, targets_BxT):
  """``-ln softmax(logits)[target]`` per position, computed in float32."""
  logp_BxTxV = jax.nn.log_softmax(logits_BxTxV.astype(jnp.float32), axis=-1)
  return -jnp.take_along_axis(logp_BxTxV, targets_BxT[..., None], axis=-1)[..., 0]


def _lse_and_nll(logits_NxV, targets_N):
  m_Nx1 = jax.lax.stop_gradient(logits_NxV.max(axis=-1, keepdims=True))
  lse_N = jnp.log(jnp.exp(logits_NxV - m_Nx1).sum(axis=-1)) + m_Nx1[:, 0]
  picked_N = jnp.take_along_axis(logits_NxV, targets_N[:, None], axis=-1)[:, 0]
  return lse_N, lse_N - picked_N


@jax.custom_vjp
def _nll_NxV(logits_NxV, targets_N):
  """Per-row ``logsumexp(logits) - logits[target]`` (float32 [N, V] logits, int [N] targets)."""
  return _lse_and_nll(logits_NxV, targets_N)[1]


def _nll_fwd(logits_NxV, targets_N):
  lse_N, nll_N = _lse_and_nll(logits_NxV, targets_N)
  return nll_N, (logits_NxV, lse_N, targets_N)


def _nll_bwd(res, g_N):
  logits_NxV, lse_N, targets_N = res
  onehot_NxV = jax.nn.one_hot(targets_N, logits_NxV.shape[-1], dtype=logits_NxV.dtype)
  # d nll / d logits = softmax(logits) - onehot(target); integer targets get no cotangent.
  return (jnp.exp(logits_NxV - lse_N[:, None]) - onehot_NxV) * g_N[:, None], None


_nll_NxV.defvjp(_nll_fwd, _nll_bwd)


def sum_nll(logits_BxTxV, targets_BxT, weights_BxT=None):
  """``(Σ weight · nll, Σ weight)``: the summed loss and the number of scored tokens."""
  v = logits_BxTxV.shape[-1]
  nll_BxT = _nll_NxV(logits_BxTxV.astype(jnp.float32).reshape(-1, v),
                     targets_BxT.reshape(-1)).reshape(targets_BxT.shape)
  if weights_BxT is None:
    return nll_BxT.sum(), jnp.asarray(nll_BxT.size, jnp.float32)
  # where(), not a product: a padded position's nll must not leak a NaN or inf into the sum.
  return jnp.where(weights_BxT > 0, nll_BxT * weights_BxT, 0.0).sum(), weights_BxT.sum()
