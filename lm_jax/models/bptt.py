"""Backpropagation through time by hand for a one-layer Elman RNN language model.

Lecture "Language Models", slides "BPTT I/II", "Gradients of an RNN I/II" and "Rolled-Out
Layer", in the lecture's row-vector convention:

  e(t)  = W_x[x(t)]                                      (embedding row)
  z2(t) = h(t-1) W_h + e(t) W_e + b_h,   h(t) = f(z2(t))   f = sigmoid or tanh
  z1(t) = h(t) W_o + b_o,                ŷ(t) = softmax(z1(t)),   L(t) = CE(ŷ(t), y(t))

Params: {"embed": W_x [V_in, E], "layers": [{"W_e": [E, H], "W_h": [H, H], "b_h": [H]}],
"W_o": [H, V_out], "b_o": [V_out]}, the layout of lm_jax/models/rnn.py.

Loss: lm_jax sums, sum_nll = Σ_{b,t} w[b,t] L[b,t] with weights 0/1 masking padding; the
lecture's L = (1/T) Σ_t L(t), averaged over B too, is sum_nll / Σ w. The recurrence runs
through padded steps as well; weights only mask their loss terms.

Truncation k > 0 is BPTT(k) as in the PyTorch word LM, which detaches h every k steps:
the sequence is cut into chunks [0,k), [k,2k), ...; h crosses a cut with its value but
not its gradient, so L(t) reaches z2(s) only for k⌊t/k⌋ ≤ s ≤ t (at most k steps). Step 0
is not a cut, so h0 receives the gradient of the first chunk. k = 0 is full BPTT.

The backward pass batches over t all the work that does not depend on the carried
gradient (δ1, δ3 = δ1 W_oᵀ, the outer products summed over t); only the recursion
δ2(t) → ∂L/∂h(t-1) runs in the reverse scan, like min-char-rnn's `dhnext` loop.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.flatten_util
import jax.numpy as jnp

from lm_jax.errors import ConfigError

Params = dict[str, Any]
ACTIVATIONS = ("sigmoid", "tanh")


def validate(params: Params, activation: str, truncation: int) -> None:
  """Raises ConfigError unless the manual pass supports these params and options."""
  if activation not in ACTIVATIONS:
    raise ConfigError(
      f"activation={activation!r} has no hand-derived f'; use one of {ACTIVATIONS}."
    )
  if not isinstance(truncation, int) or truncation < 0:
    raise ConfigError(f"truncation={truncation!r}: use an int k >= 0 (0 = full BPTT).")
  if len(params["layers"]) != 1:
    raise ConfigError(
      f"manual BPTT implements one Elman layer, got {len(params['layers'])}; "
      "set model.num_layers=1 or model.grad='autodiff'."
    )


def _f(activation: str, z: jax.Array) -> jax.Array:
  return jax.nn.sigmoid(z) if activation == "sigmoid" else jnp.tanh(z)


def _f_prime(activation: str, h: jax.Array) -> jax.Array:
  """f'(z2) from h = f(z2): σ' = h(1−h), tanh' = 1−h² (why the tape keeps h, not z2)."""
  return h * (1 - h) if activation == "sigmoid" else 1 - h * h


def _cuts_T(T: int, truncation: int) -> jax.Array:
  """True at steps t whose incoming h(t-1) carries no gradient: t = k, 2k, ..."""
  t_T = jnp.arange(T)
  if truncation == 0:
    return jnp.zeros((T,), bool)
  return (t_T % truncation == 0) & (t_T > 0)


class Tape(NamedTuple):
  """What the forward pass keeps for the backward pass, time-major."""

  e_TxBxE: jax.Array  # e(t), for ∂L/∂W_e
  h_TxBxH: jax.Array  # h(t): for ∂L/∂W_o, ∂L/∂W_h (as h(t-1)) and f'(z2(t))
  yhat_TxBxV: jax.Array  # ŷ(t) = softmax(z1(t)), for δ1; z1 itself is not needed again
  nll_TxB: jax.Array  # L(t) per token, unweighted


def forward(
  params: Params, h0_BxH: jax.Array, inputs_BxT: jax.Array, targets_BxT: jax.Array, activation: str
) -> tuple[Tape, jax.Array]:
  """Runs the RNN (BPTT I) and keeps the tape; returns (tape, h(T))."""
  layer = params["layers"][0]
  e_TxBxE = params["embed"][inputs_BxT.T]
  # e(t) W_e + b_h has no recurrence: one matmul for all t, only h(t-1) W_h inside the scan.
  ex_TxBxH = e_TxBxE @ layer["W_e"] + layer["b_h"]

  def step(h_prev_BxH, ex_BxH):
    z2_BxH = h_prev_BxH @ layer["W_h"] + ex_BxH  # BPTT I: z2(t) = h(t-1) W_h + e(t) W_e + b_h
    h_BxH = _f(activation, z2_BxH)  # BPTT I: h(t) = f(z2(t))
    return h_BxH, h_BxH

  hT_BxH, h_TxBxH = jax.lax.scan(step, h0_BxH, ex_TxBxH)
  z1_TxBxV = h_TxBxH @ params["W_o"] + params["b_o"]  # BPTT I: z1(t) = h(t) W_o + b_o
  logz_TxB = jax.nn.logsumexp(z1_TxBxV, axis=-1)
  yhat_TxBxV = jnp.exp(z1_TxBxV - logz_TxB[..., None])  # ŷ(t) = softmax(z1(t))
  z1y_TxB = jnp.take_along_axis(z1_TxBxV, targets_BxT.T[..., None], axis=-1)[..., 0]
  nll_TxB = logz_TxB - z1y_TxB  # L(t) = −log ŷ_y(t)(t), the CE with a one-hot y(t)
  return Tape(e_TxBxE, h_TxBxH, yhat_TxBxV, nll_TxB), hT_BxH


def backward(
  params: Params,
  h0_BxH: jax.Array,
  inputs_BxT: jax.Array,
  targets_BxT: jax.Array,
  weights_BxT: jax.Array,
  tape: Tape,
  activation: str,
  truncation: int = 0,
  g: jax.Array | float = 1.0,
  dhT_BxH: jax.Array | None = None,
) -> tuple[Params, jax.Array]:
  """Gradients of g·sum_nll (+ ⟨dhT, h(T)⟩) by hand; returns (grads, ∂/∂h0)."""
  layer = params["layers"][0]
  W_o, W_h, W_e = params["W_o"], layer["W_h"], layer["W_e"]
  yhat_TxBxV, h_TxBxH = tape.yhat_TxBxV, tape.h_TxBxH
  y_TxBxV = jax.nn.one_hot(targets_BxT.T, yhat_TxBxV.shape[-1], dtype=yhat_TxBxV.dtype)
  w_TxBx1 = (g * weights_BxT.T.astype(yhat_TxBxV.dtype))[..., None]
  # Gradients of an RNN I: δ1(t) = ∂L(t)/∂z1(t) = ŷ(t) − y(t), times the token's weight.
  # Flat over (t, b), N = T*B, and used only by matmuls (b_o too): XLA then materializes
  # this largest array once, and the step needs less scratch memory than autodiff's.
  T, B, V = yhat_TxBxV.shape
  d1_NxV = (w_TxBx1 * (yhat_TxBxV - y_TxBxV)).reshape(T * B, V)
  # Gradients of an RNN II: δ3(t) = δ1(t) W_oᵀ, the part of ∂L/∂h(t) that comes from L(t).
  d3_TxBxH = (d1_NxV @ W_o.T).reshape(T, B, -1)
  fprime_TxBxH = _f_prime(activation, h_TxBxH)  # f'(z2(t)) of δ2, for all t at once
  if dhT_BxH is None:  # ∂L/∂h(T): nonzero only when a later segment uses h(T) with gradient
    dhT_BxH = jnp.zeros_like(h0_BxH)

  def step(dh_BxH, xs):
    d3_BxH, fprime_BxH, cut = xs
    # Gradients of an RNN I/II: δ2(t) = (δ3(t) + ∂L/∂h(t) carried from t+1) ⊙ f'(z2(t));
    # the two paths into h(t) add by the multi-variable chain rule (Backward Computation I).
    d2_BxH = (d3_BxH + dh_BxH) * fprime_BxH
    # Gradients of an RNN I: ∂L/∂h(t-1) = δ2(t) W_hᵀ, carried to step t-1; 0 across a cut.
    dh_prev_BxH = jnp.where(cut, jnp.zeros_like(dh_BxH), d2_BxH @ W_h.T)
    return dh_prev_BxH, d2_BxH

  xs = (d3_TxBxH, fprime_TxBxH, _cuts_T(h_TxBxH.shape[0], truncation))
  dh0_BxH, d2_TxBxH = jax.lax.scan(step, dhT_BxH, xs, reverse=True)
  h_prev_TxBxH = jnp.concatenate([h0_BxH[None], h_TxBxH[:-1]], axis=0)  # h(t-1) of z2(t)
  # Backward Computation II: a weight shared over time gets the sum over t of its per-step
  # gradients ∂L/∂W|_(t); each product below sums one lecture term over t and the batch.
  grads = {
    # Gradients of an RNN I: ∂L/∂W_x[x(t)] = δ2(t) W_eᵀ, scattered onto the rows x(t).
    "embed": jnp.zeros_like(params["embed"]).at[inputs_BxT.T].add(d2_TxBxH @ W_e.T),
    "layers": [
      {
        "W_e": jnp.einsum("tbe,tbh->eh", tape.e_TxBxE, d2_TxBxH),  # δ2(t) ⊗ e(t)
        "W_h": jnp.einsum("tbk,tbh->kh", h_prev_TxBxH, d2_TxBxH),  # δ2(t) ⊗ h(t-1)
        "b_h": d2_TxBxH.sum((0, 1)),  # δ2(t)
      }
    ],
    "W_o": h_TxBxH.reshape(T * B, -1).T @ d1_NxV,  # Gradients of an RNN I: δ1(t) ⊗ h(t)
    "b_o": jnp.ones_like(d1_NxV[:, 0]) @ d1_NxV,  # Gradients of an RNN I: δ1(t), Σ as matvec
  }
  return grads, dh0_BxH


def manual_grads(
  params: Params,
  h0_BxH: jax.Array,
  inputs_BxT: jax.Array,
  targets_BxT: jax.Array,
  weights_BxT: jax.Array,
  activation: str = "tanh",
  truncation: int = 0,
) -> tuple[jax.Array, Params, jax.Array]:
  """(sum_nll, ∂sum_nll/∂params, ∂sum_nll/∂h0) by the manual forward and backward pass."""
  validate(params, activation, truncation)
  tape, _ = forward(params, h0_BxH, inputs_BxT, targets_BxT, activation)
  grads, dh0_BxH = backward(
    params, h0_BxH, inputs_BxT, targets_BxT, weights_BxT, tape, activation, truncation
  )
  return _weighted_sum(tape.nll_TxB, weights_BxT), grads, dh0_BxH


def _weighted_sum(nll_TxB: jax.Array, weights_BxT: jax.Array) -> jax.Array:
  return jnp.sum(nll_TxB * weights_BxT.T.astype(nll_TxB.dtype))


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _manual_sum_nll(activation, truncation, *args):
  return _manual_sum_nll_fwd(activation, truncation, *args)[0]


def _manual_sum_nll_fwd(
  activation, truncation, params, h0_BxH, inputs_BxT, targets_BxT, weights_BxT
):
  tape, hT_BxH = forward(params, h0_BxH, inputs_BxT, targets_BxT, activation)
  res = (params, h0_BxH, inputs_BxT, targets_BxT, weights_BxT, tape)
  return (_weighted_sum(tape.nll_TxB, weights_BxT), hT_BxH), res


def _manual_sum_nll_bwd(activation, truncation, res, cotangents):
  params, h0_BxH, inputs_BxT, targets_BxT, weights_BxT, tape = res
  g, dhT_BxH = cotangents
  grads, dh0_BxH = backward(
    params, h0_BxH, inputs_BxT, targets_BxT, weights_BxT, tape, activation, truncation, g, dhT_BxH
  )
  # ∂sum_nll/∂w[b,t] = L[b,t]; integer masks get no cotangent.
  dw_BxT = None
  if jnp.issubdtype(weights_BxT.dtype, jnp.floating):
    dw_BxT = (g * tape.nll_TxB.T).astype(weights_BxT.dtype)
  return grads, dh0_BxH, None, None, dw_BxT


_manual_sum_nll.defvjp(_manual_sum_nll_fwd, _manual_sum_nll_bwd)


def manual_elman_sum_nll(
  params: Params,
  h0_BxH: jax.Array,
  inputs_BxT: jax.Array,
  targets_BxT: jax.Array,
  weights_BxT: jax.Array,
  activation: str = "tanh",
  truncation: int = 0,
) -> tuple[jax.Array, jax.Array]:
  """(sum_nll, h(T)) whose VJP is the manual BPTT pass (jax.grad / jax.vjp use it)."""
  validate(params, activation, truncation)
  return _manual_sum_nll(
    activation, truncation, params, h0_BxH, inputs_BxT, targets_BxT, weights_BxT
  )


def elman_sum_nll(
  params: Params,
  h0_BxH: jax.Array,
  inputs_BxT: jax.Array,
  targets_BxT: jax.Array,
  weights_BxT: jax.Array,
  activation: str = "tanh",
  truncation: int = 0,
) -> tuple[jax.Array, jax.Array]:
  """The autodiff twin of manual_elman_sum_nll: same value; truncation by stop_gradient."""
  validate(params, activation, truncation)
  layer = params["layers"][0]
  ex_TxBxH = params["embed"][inputs_BxT.T] @ layer["W_e"] + layer["b_h"]

  def step(h_prev_BxH, xs):
    ex_BxH, cut = xs
    h_prev_BxH = jnp.where(cut, jax.lax.stop_gradient(h_prev_BxH), h_prev_BxH)
    h_BxH = _f(activation, h_prev_BxH @ layer["W_h"] + ex_BxH)
    return h_BxH, h_BxH

  hT_BxH, h_TxBxH = jax.lax.scan(step, h0_BxH, (ex_TxBxH, _cuts_T(ex_TxBxH.shape[0], truncation)))
  logp_TxBxV = jax.nn.log_softmax(h_TxBxH @ params["W_o"] + params["b_o"], axis=-1)
  nll_TxB = -jnp.take_along_axis(logp_TxBxV, targets_BxT.T[..., None], axis=-1)[..., 0]
  return _weighted_sum(nll_TxB, weights_BxT), hT_BxH


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4))  # one compilation, not six
def random_params(
  key: jax.Array, vocab_size: int, embed_size: int, hidden_size: int, dtype: Any = jnp.float32
) -> Params:
  """Gaussian params (std 1/√fan_in, small biases) in the shared layout, for checks."""
  k = jax.random.split(key, 6)
  normal = lambda key, shape, std: (std * jax.random.normal(key, shape)).astype(dtype)
  return {
    "embed": normal(k[0], (vocab_size, embed_size), 1.0),
    "layers": [
      {
        "W_e": normal(k[1], (embed_size, hidden_size), embed_size**-0.5),
        "W_h": normal(k[2], (hidden_size, hidden_size), hidden_size**-0.5),
        "b_h": normal(k[3], (hidden_size,), 0.1),
      }
    ],
    "W_o": normal(k[4], (hidden_size, vocab_size), hidden_size**-0.5),
    "b_o": normal(k[5], (vocab_size,), 0.1),
  }
