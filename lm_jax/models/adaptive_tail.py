"""The adaptive softmax's tail clusters in training: each cluster's loss over its own rows.

A batch's rows whose target lies in cluster ``i`` are a dynamic subset, and the
cluster's softmax is [rows x cluster size]: at the One Billion Word size (clusters of
180k and 593k ids) one pass over its logits costs more than the matmul that makes
them.  So:

- the rows are gathered (sorted to the front) and processed in one block whose size is
  the smallest of ``BLOCKS`` that holds them, chosen with ``lax.switch``: one compiled
  branch per size, only the chosen one runs.  More rows than the largest block go
  through a ``fori_loop`` of largest blocks;
- the gradients are made in the same pass as the loss (a hand-written VJP): each logit
  is exponentiated once, for the log-sum-exp and for the gradients; nothing of
  size rows x cluster is kept for the backward pass, which only scales the gradients
  by the incoming cotangent.

Evaluation (``cluster_token_nll``) takes the same blocks without the gradients: each
row's exact ``-log p(local | cluster)``, computed only for the cluster's rows.

An optional ``mask_NxK`` (inverted-dropout scales, ``model.adaptive_dropout``) multiplies
the projected rows ``h P`` before the cluster's logits, as fairseq's
``adaptive_softmax_dropout`` drops the tail projection's output.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

# Rows per block: a block is a matmul's row count, so the padding costs in proportion.
# At V = 793,471, batch 32 x 20, cluster 1 holds 104 +- 9 rows and cluster 2 62 +- 8:
# blocks 8 apart up to 128 pad them by 4 rows on average (blocks 16 apart: 8; with
# blocks of 64 and 128 two steps in five paid for 128).  The last one loops.
BLOCKS = (16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120, 128, 144, 160, 192, 224, 256)


def padded_rows(inside_N):
  """Row ids with the cluster's rows first (stable), padded so every block slice is in range."""
  rows = jnp.argsort(~inside_N, stable=True).astype(jnp.int32)
  return jnp.concatenate([rows, jnp.zeros((BLOCKS[-1],), jnp.int32)])


def _block(h_NxD, p, w, b, rows, local, count, mask, start, size):
  """One block of ``size`` rows from ``start``: loss and gradients (zero for padding rows)."""
  r_R = jax.lax.dynamic_slice_in_dim(rows, start, size)
  valid_R = start + jnp.arange(size) < count
  h_RxD = h_NxD[r_R]
  x_Rxd = h_RxD @ p
  m_Rxd = None if mask is None else mask[r_R]
  if m_Rxd is not None:
    x_Rxd = x_Rxd * m_Rxd
  # The bias as one more row of W against a column of ones (as lm_jax.losses): the logits
  # come out of the matmul whole, and the bias gradient out of the weight gradient's
  # matmul; a separate column sum over [rows, n] is many times slower on XLA's CPU backend.
  x1_Rxd1 = jnp.concatenate([x_Rxd, jnp.ones((size, 1), x_Rxd.dtype)], axis=1)
  logits_Rxn = x1_Rxd1 @ jnp.concatenate([w, b[None]], axis=0)
  loc_R = local[r_R]
  m_R = logits_Rxn.max(axis=-1)
  e_Rxn = jnp.exp(logits_Rxn - m_R[:, None])  # one exp per logit, for the loss and d
  z_R = e_Rxn.sum(axis=-1)
  lse = m_R + jnp.log(z_R)
  picked = jnp.take_along_axis(logits_Rxn, loc_R[:, None], axis=-1)[:, 0]
  loss = jnp.where(valid_R, lse - picked, 0.0).sum()
  # d = softmax - onehot (0 on padding rows) is never built: its matmuls take e, the rows'
  # 1/z scales the small factor or the result, and the onehot's part is the target's
  # column (a gather for ∂x, a scatter for ∂W): one pass over [rows, n] fewer.
  s_R = jnp.where(valid_R, 1.0 / z_R, 0.0)
  x1v_Rxd1 = jnp.where(valid_R[:, None], x1_Rxd1, 0.0)
  dx_Rxd = s_R[:, None] * (e_Rxn @ w.T) - jnp.where(valid_R[:, None], w[:, loc_R].T, 0.0)
  dwb = ((x1_Rxd1 * s_R[:, None]).T @ e_Rxn).at[:, loc_R].add(-x1v_Rxd1.T)
  if m_Rxd is not None:
    dx_Rxd = dx_Rxd * m_Rxd
  # [∂W; ∂b] whole: split by the caller, after the block switch, where XLA fuses the split
  # into the parameter update; inside a branch it copies ∂W out first (measured at
  # V = 793,471: 14 ms of a 0.6 s step).
  return r_R, loss, dx_Rxd @ p.T, h_RxD.T @ dx_Rxd, dwb


def _one_block(size, h_NxD, p, w, b, rows, local, count, mask):
  r_R, loss, dh_R, dp, dwb = _block(h_NxD, p, w, b, rows, local, count, mask, 0, size)
  return loss, jnp.zeros_like(h_NxD).at[r_R].add(dh_R), dp, dwb


def _looped(h_NxD, p, w, b, rows, local, count, mask):
  size = BLOCKS[-1]

  def body(i, acc):
    total, dh, dp, dwb = acc
    r_R, loss, dh_R, dp_i, dwb_i = _block(h_NxD, p, w, b, rows, local, count, mask, i * size, size)
    return total + loss, dh.at[r_R].add(dh_R), dp + dp_i, dwb + dwb_i

  dwb = jnp.zeros((w.shape[0] + 1, w.shape[1]), w.dtype)
  start = (jnp.zeros((), h_NxD.dtype), jnp.zeros_like(h_NxD), jnp.zeros_like(p), dwb)
  return jax.lax.fori_loop(0, (count + size - 1) // size, body, start)


def _by_block(one_block, looped, count, h_NxD, *args):
  """``one_block(size, h, *args)`` for the smallest block that holds ``count`` rows, or
  ``looped(h, *args)`` past the largest."""
  sizes = [s for s in BLOCKS[:-1] if s < h_NxD.shape[0]]
  branches = [functools.partial(one_block, s) for s in sizes] + [looped]
  index = jnp.searchsorted(jnp.asarray(sizes, jnp.int32), count) if sizes else 0
  return jax.lax.switch(index, branches, h_NxD, *args)


def _loss_and_grads(h_NxD, p, w, b, rows, local, count, mask):
  args = (h_NxD, p, w, b, rows, local, count, mask)
  loss, dh, dp, dwb = _by_block(_one_block, _looped, count, *args)
  return loss, (dh, dp, dwb[:-1], dwb[-1])


@jax.custom_vjp
def cluster_sum_nll(h_NxD, p, w, b, rows, local, count, mask=None):
  """Σ over the ``count`` rows listed first in ``rows`` of ``-log softmax((h P) m W + b)[local]``
  (``m``: the row's ``mask`` scales, or 1 without a mask)."""
  return _loss_and_grads(h_NxD, p, w, b, rows, local, count, mask)[0]


def _fwd(h_NxD, p, w, b, rows, local, count, mask=None):
  return _loss_and_grads(h_NxD, p, w, b, rows, local, count, mask)


def _bwd(grads, g):
  return (*(g * x for x in grads), None, None, None, None)


cluster_sum_nll.defvjp(_fwd, _bwd)


# -- Evaluation: each row's exact negative log-likelihood, no gradients ------------------


def _block_nll(h_NxD, p, w, b, rows, local, count, start, size):
  """``(row ids, -log softmax(h P W + b)[local])`` of one block (0 for padding rows)."""
  r_R = jax.lax.dynamic_slice_in_dim(rows, start, size)
  logits_Rxn = (h_NxD[r_R] @ p) @ w + b
  picked = jnp.take_along_axis(logits_Rxn, local[r_R][:, None], axis=-1)[:, 0]
  nll_R = jax.nn.logsumexp(logits_Rxn, axis=-1) - picked
  return r_R, jnp.where(start + jnp.arange(size) < count, nll_R, 0.0)


def _one_block_nll(size, h_NxD, p, w, b, rows, local, count, mask):
  r_R, nll_R = _block_nll(h_NxD, p, w, b, rows, local, count, 0, size)
  return jnp.zeros(h_NxD.shape[:1], nll_R.dtype).at[r_R].add(nll_R)


def _looped_nll(h_NxD, p, w, b, rows, local, count, mask):
  size = BLOCKS[-1]

  def body(i, nll_N):
    r_R, nll_R = _block_nll(h_NxD, p, w, b, rows, local, count, i * size, size)
    return nll_N.at[r_R].add(nll_R)

  start = jnp.zeros(h_NxD.shape[:1], h_NxD.dtype)
  return jax.lax.fori_loop(0, (count + size - 1) // size, body, start)


def cluster_token_nll(h_NxD, p, w, b, rows, local, count):
  """[N]: ``-log softmax(h P W + b)[local]`` for the ``count`` rows listed first in
  ``rows``, 0 for the others; only those rows' logits are computed (evaluation)."""
  args = (h_NxD, p, w, b, rows, local, count, None)
  return _by_block(_one_block_nll, _looped_nll, count, *args)
