"""Recurrent language models: Elman, LSTM and GRU layers, each unrolled by one ``lax.scan``.

Parameters (plain dicts; the Elman layout is shared with ``lm_jax.models.bptt``)::

  {"embed": [V_in, E], "layers": [layer, ...], "W_o": [H, V_out], "b_o": [V_out]}
  Elman layer: {"W_e": [D_in, H], "W_h": [H, H], "b_h": [H]}
  LSTM layer:  {"W_x": [D_in, 4H], "W_h": [H, 4H], "b": [4H]}          gates i, f, g, o
  LSTMP layer: {"W_x": [D_in, 4H], "W_h": [P, 4H], "b": [4H], "W_p": [H, P]}  (Sak et al. 2014)
  GRU layer:   {"W_x": [D_in, 3H], "W_h": [H, 3H], "b_x": [3H], "b_h": [3H]}  gates r, z, n

Row-vector convention of the lecture: ``z2 = h_prev @ W_h + e @ W_e + b_h``,
``h = f(z2)``, ``logits = h @ W_o + b_o``.  With tied weights "W_o" is absent and
``logits = h @ embed[:V_out].T + b_o``.  ``D_in`` is E for the first layer, H above.
With ``model.projection`` P (LSTMP, the "LSTM-8192-1024" of Jozefowicz et al. 2016)
each layer passes on ``h = (o * tanh(c)) @ W_p`` of size P, which is also its
recurrent input; the cell state stays H wide.  LSTMP layers use the plain scan.

Initialisation: the embedding and every weight matrix ~ U(-init_scale, init_scale)
(Zaremba et al. 2014 use 0.1 for the small and 0.05 for the medium model); biases
start at 0.  Dropout acts on the non-recurrent connections only: the embedding
output, between layers and before the softmax (Zaremba et al. 2014, Sec. 3).

Each layer's input projection ``x @ W_x`` is one matmul over the whole segment;
only ``h @ W_h`` runs inside the scan, which steps through time (never a Python
loop over time).  The LSTM's scan has a hand-written backward pass
(``lm_jax.models.lstm_scan``: the W_h gradient as one matmul after the loop);
with ``model.remat`` it uses the plain scan and ``jax.checkpoint``.  The carry
is a list with one dict per layer: ``{"h"}`` or, for the LSTM, ``{"h", "c"}``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lm_jax.models import ModelConfig, dropout, init_output, output, uniform
from lm_jax.models.lstm_scan import lstm_scan

_GATES = {"elman": 1, "lstm": 4, "gru": 3}


def _activation(name: str):
  return {"tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid}[name]


def init_layer(key, cfg: ModelConfig, d_in: int) -> dict:
  """One recurrent layer's params (see the module docstring for the keys)."""
  h, g, s = cfg.hidden_dim, _GATES[cfg.kind], cfg.init_scale
  kx, kh = jax.random.split(key)
  if cfg.kind == "elman":
    return {
      "W_e": uniform(kx, (d_in, h), s),
      "W_h": uniform(kh, (h, h), s),
      "b_h": jnp.zeros((h,), "float32"),
    }
  if cfg.kind == "lstm":
    layer = {
      "W_x": uniform(kx, (d_in, g * h), s),
      "W_h": uniform(kh, (cfg.output_dim, g * h), s),
      "b": jnp.zeros((g * h,), "float32"),
    }
    if cfg.projection:
      layer["W_p"] = uniform(jax.random.fold_in(key, 2), (h, cfg.projection), s)
    return layer
  return {
    "W_x": uniform(kx, (d_in, g * h), s),
    "W_h": uniform(kh, (h, g * h), s),
    "b_x": jnp.zeros((g * h,), "float32"),
    "b_h": jnp.zeros((g * h,), "float32"),
  }


def init(rng, cfg: ModelConfig) -> dict:
  """Params for ``cfg`` (uniform ±init_scale weights, zero biases)."""
  k_embed, k_out, *k_layers = jax.random.split(rng, 2 + cfg.num_layers)
  layers = [
    init_layer(k, cfg, cfg.embed_dim if i == 0 else cfg.output_dim) for i, k in enumerate(k_layers)
  ]
  return {
    "embed": uniform(k_embed, (cfg.in_vocab, cfg.embed_dim), cfg.init_scale),
    "layers": layers,
    **init_output(k_out, cfg),
  }


def init_carry(cfg: ModelConfig, batch_size: int) -> list[dict]:
  """The zero state every sequence (and, with reset_at_eos, every sentence) starts from.

  With MaxEnt one more entry follows the layers' states: the last ``maxent_order - 1``
  inputs (all ``<s>`` before any text), the history of the n-gram features.
  """
  zeros = lambda d: jnp.zeros((batch_size, d), "float32")
  if cfg.kind == "lstm":
    carry = [
      {"h": zeros(cfg.output_dim), "c": zeros(cfg.hidden_dim)} for _ in range(cfg.num_layers)
    ]
  else:
    carry = [{"h": zeros(cfg.hidden_dim)} for _ in range(cfg.num_layers)]
  if cfg.maxent_order:
    carry.append({"history": jnp.full((batch_size, cfg.maxent_order - 1), cfg.bos_id, jnp.int32)})
  return carry


def input_projection(layer: dict, x_BxTxD, kind: str):
  """The non-recurrent part of every gate, for all time steps at once."""
  if kind == "elman":
    return x_BxTxD @ layer["W_e"] + layer["b_h"]
  if kind == "lstm":
    return x_BxTxD @ layer["W_x"] + layer["b"]
  return x_BxTxD @ layer["W_x"] + layer["b_x"]


def cell(layer: dict, carry: dict, xw_BxG, cfg: ModelConfig) -> dict:
  """One time step given the precomputed input projection ``xw_BxG``."""
  h_BxH = carry["h"]
  if cfg.kind == "elman":
    return {"h": _activation(cfg.activation)(h_BxH @ layer["W_h"] + xw_BxG)}
  if cfg.kind == "lstm":
    i, f, g, o = jnp.split(xw_BxG + h_BxH @ layer["W_h"], 4, axis=-1)
    c_BxH = jax.nn.sigmoid(f) * carry["c"] + jax.nn.sigmoid(i) * jnp.tanh(g)
    m_BxH = jax.nn.sigmoid(o) * jnp.tanh(c_BxH)
    return {"h": m_BxH @ layer["W_p"] if "W_p" in layer else m_BxH, "c": c_BxH}
  xr, xz, xn = jnp.split(xw_BxG, 3, axis=-1)
  hr, hz, hn = jnp.split(h_BxH @ layer["W_h"] + layer["b_h"], 3, axis=-1)
  r, z = jax.nn.sigmoid(xr + hr), jax.nn.sigmoid(xz + hz)
  n = jnp.tanh(xn + r * hn)  # As cuDNN and torch.nn.GRU: reset applied after W_h h (+ bias).
  return {"h": (1.0 - z) * n + z * h_BxH}


def run_layer(layer: dict, carry: dict, x_BxTxD, reset_BxT, cfg: ModelConfig):
  """Unrolls one layer over the segment with ``lax.scan``; returns (carry, h_BxTxH)."""
  xw_TxBxG = jnp.swapaxes(input_projection(layer, x_BxTxD, cfg.kind), 0, 1)
  reset_TxB = None if reset_BxT is None else reset_BxT.T
  if cfg.kind == "lstm" and not cfg.remat and not cfg.projection:  # Hand-written backward pass.
    h_TxBxH, h, c = lstm_scan(layer["W_h"], xw_TxBxG, carry["h"], carry["c"], reset_TxB, cfg.unroll)
    return {"h": h, "c": c}, jnp.swapaxes(h_TxBxH, 0, 1)

  def body(c, xs):
    xw_BxG, reset_B = xs
    if reset_B is not None:  # A sentence starts here: forget the previous one.
      c = jax.tree.map(lambda a: jnp.where(reset_B[:, None], 0.0, a), c)
    c = cell(layer, c, xw_BxG, cfg)
    return c, c["h"]

  if cfg.remat:
    body = jax.checkpoint(body)
  carry, h_TxBxH = jax.lax.scan(body, carry, (xw_TxBxG, reset_TxB), unroll=cfg.unroll)
  return carry, jnp.swapaxes(h_TxBxH, 0, 1)


def apply(
  params: dict,
  carry: list[dict],
  inputs_BxT,
  cfg: ModelConfig,
  *,
  rng=None,
  train: bool = False,
  hidden: bool = False,
  embedded=None,
):
  """Scores over the predictable ids for every position, and the carry after the segment.

  ``embedded``: ``embed[inputs_BxT]`` computed by the caller (the sparse-embedding step
  differentiates with respect to these rows instead of the whole matrix).
  """
  use_dropout = train and cfg.dropout > 0
  keys = jax.random.split(rng, cfg.num_layers + 1) if use_dropout else [None] * (cfg.num_layers + 1)
  if embedded is None:
    embedded = params["embed"][inputs_BxT]
  x_BxTxD = dropout(embedded, cfg.dropout, keys[0], train)
  reset_BxT = inputs_BxT == cfg.bos_id if cfg.reset_at_eos else None
  new_carry = []
  for layer, c, key in zip(params["layers"], carry, keys[1:]):
    c, h_BxTxH = run_layer(layer, c, x_BxTxD, reset_BxT, cfg)
    x_BxTxD = dropout(h_BxTxH, cfg.dropout, key, train)
    new_carry.append(c)
  feats = {"h": x_BxTxD}
  if cfg.maxent_order:  # The n-gram history, <s>-padded at sentence starts (as the window model).
    from lm_jax.models.maxent import maxent_offsets
    from lm_jax.models.window import windows

    ctx_BxTxC, history = windows(carry[-1]["history"], inputs_BxT, cfg.bos_id)
    feats["maxent"] = maxent_offsets(ctx_BxTxC, cfg)
    new_carry.append({"history": history})
  return output(params, feats, cfg, hidden), new_carry
