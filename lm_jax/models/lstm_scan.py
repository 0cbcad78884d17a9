"""The LSTM recurrence with a hand-written backward pass (BPTT for the LSTM cell).

``lstm_scan(W_h, xw_TxBxG, h0, c0, reset_TxB, unroll)`` is the part of an LSTM
layer that must step through time; the input projection ``x @ W_x + b`` is
computed for the whole segment outside (``rnn.input_projection``), so autodiff
handles it with full-segment matmuls.  ``jax.grad`` of a plain ``lax.scan``
accumulates ``∂L/∂W_h`` inside the backward loop: T small [H, B] x [B, 4H]
products and T additions into an [H, 4H] buffer.  Here the backward scan only
carries ``(∂h, ∂c)`` and emits the gate gradients ``dz(t)``; the weight gradient
is then one [H, T·B] x [T·B, 4H] matmul after the loop, as cuDNN and PyTorch do.

Forward, gates i, f, g, o (row vectors, as the lecture writes them)::

  z(t) = xw(t) + h(t-1) W_h,   i, f, o = σ(z_i, z_f, z_o),   g = tanh(z_g)
  c(t) = f ⊙ c(t-1) + i ⊙ g,   h(t) = o ⊙ tanh(c(t))

Backward, with ∂h(t) = ∂L/∂h(t) from the output plus the carried ∂h::

  ∂o = ∂h ⊙ tanh c(t);   ∂c = ∂c_carried + ∂h ⊙ o ⊙ (1 - tanh² c(t))
  ∂i = ∂c ⊙ g;  ∂g = ∂c ⊙ i;  ∂f = ∂c ⊙ c(t-1);   carried ∂c(t-1) = ∂c ⊙ f
  dz = [∂i·i(1-i), ∂f·f(1-f), ∂g·(1-g²), ∂o·o(1-o)];   carried ∂h(t-1) = dz W_hᵀ
  ∂W_h = Σ_t h(t-1)ᵀ dz(t);   ∂xw(t) = dz(t)

A reset at step t (a sentence starts, ``model.reset_at_eos``) zeroes the state
before the step, so nothing flows back through it.  Tests compare values and
every gradient with ``jax.grad`` of the plain scan.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


def _split4(z):
  return jnp.split(z, 4, axis=-1)


def _forward(W_h, xw_TxBxG, h0_BxH, c0_BxH, reset_TxB, unroll):
  """Runs the recurrence; returns outputs and what the backward pass needs."""

  def body(carry, xs):
    h, c = carry
    xw, reset = xs
    if reset is not None:
      h, c = (jnp.where(reset[:, None], 0.0, a) for a in (h, c))
    zi, zf, zg, zo = _split4(xw + h @ W_h)
    i, f, o, g = jax.nn.sigmoid(zi), jax.nn.sigmoid(zf), jax.nn.sigmoid(zo), jnp.tanh(zg)
    c_new = f * c + i * g
    tc = jnp.tanh(c_new)
    h_new = o * tc
    # Saved per step: the cell state the step started from, its gates and tanh c(t).
    return (h_new, c_new), (h_new, c, jnp.concatenate([i, f, g, o], -1), tc)

  (hT, cT), (h_TxBxH, cprev, gates, tc) = jax.lax.scan(
    body, (h0_BxH, c0_BxH), (xw_TxBxG, reset_TxB), unroll=unroll
  )
  return (h_TxBxH, hT, cT), (cprev, gates, tc)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def lstm_scan(W_h, xw_TxBxG, h0_BxH, c0_BxH, reset_TxB, unroll: int = 1):
  """``(h_TxBxH, h_T, c_T)`` of the LSTM recurrence (see the module docstring)."""
  return _forward(W_h, xw_TxBxG, h0_BxH, c0_BxH, reset_TxB, unroll)[0]


def _fwd(W_h, xw_TxBxG, h0_BxH, c0_BxH, reset_TxB, unroll):
  out, saved = _forward(W_h, xw_TxBxG, h0_BxH, c0_BxH, reset_TxB, unroll)
  return out, (W_h, reset_TxB, h0_BxH, out[0], *saved)


def _bwd(unroll, res, cotangents):
  W_h, reset_TxB, h0_BxH, h_TxBxH, cprev_TxBxH, gates_TxBxG, tc_TxBxH = res
  dh_out_TxBxH, dhT_BxH, dcT_BxH = cotangents
  W_hT = W_h.T

  def body(carry, xs):
    dh_next, dc_next = carry
    dh_out, cprev, gates, tc, reset = xs
    i, f, g, o = _split4(gates)
    dh = dh_out + dh_next
    dc = dc_next + dh * o * (1.0 - tc * tc)
    dz = jnp.concatenate(
      [
        dc * g * i * (1.0 - i),
        dc * cprev * f * (1.0 - f),
        dc * i * (1.0 - g * g),
        dh * tc * o * (1.0 - o),
      ],
      -1,
    )
    dh_prev, dc_prev = dz @ W_hT, dc * f
    if reset is not None:  # The step started from zeros: no gradient to the previous state.
      dh_prev, dc_prev = (jnp.where(reset[:, None], 0.0, a) for a in (dh_prev, dc_prev))
    return (dh_prev, dc_prev), dz

  (dh0, dc0), dz_TxBxG = jax.lax.scan(
    body,
    (dhT_BxH, dcT_BxH),
    (dh_out_TxBxH, cprev_TxBxH, gates_TxBxG, tc_TxBxH, reset_TxB),
    reverse=True,
    unroll=unroll,
  )
  # The state each step multiplied by W_h: h(t-1), zeros where a reset preceded the step.
  hprev_TxBxH = jnp.concatenate([h0_BxH[None], h_TxBxH[:-1]], axis=0)
  if reset_TxB is not None:
    hprev_TxBxH = jnp.where(reset_TxB[..., None], 0.0, hprev_TxBxH)
  dW_h = jnp.einsum("tbh,tbg->hg", hprev_TxBxH, dz_TxBxG)  # One matmul over the whole segment.
  return dW_h, dz_TxBxG, dh0, dc0, None


lstm_scan.defvjp(_fwd, _bwd)
