"""Cross-entropy as sums and counts; dividing happens once, at the end (lm_jax.evaluation)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def token_nll(logits_BxTxV, targets_BxT):
  """``-ln softmax(logits)[target]`` per position, computed in float32."""
  logp_BxTxV = jax.nn.log_softmax(logits_BxTxV.astype(jnp.float32), axis=-1)
  return -jnp.take_along_axis(logp_BxTxV, targets_BxT[..., None], axis=-1)[..., 0]


def sum_nll(logits_BxTxV, targets_BxT, weights_BxT=None):
  """``(Σ weight · nll, Σ weight)``: the summed loss and the number of scored tokens."""
  nll_BxT = token_nll(logits_BxTxV, targets_BxT)
  if weights_BxT is None:
    return nll_BxT.sum(), jnp.asarray(nll_BxT.size, jnp.float32)
  # where(), not a product: a padded position's nll must not leak a NaN or inf into the sum.
  return jnp.where(weights_BxT > 0, nll_BxT * weights_BxT, 0.0).sum(), weights_BxT.sum()
