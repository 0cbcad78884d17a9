"""The fixed-window neural language model (Bengio et al. 2003; lecture "fixed window").

``e = [embed(x_{t-n+2}); ..; embed(x_t)]``, ``h = f(e @ W_h + b_h)``,
``p(x_{t+1} | ..) = softmax(h @ W_o + b_o)`` over the predictable ids.

Params: ``{"embed": [V_in, E], "W_h": [C*E, H], "b_h": [H], "W_o": [H, V_out], "b_o": [V_out]}``
with ``C = cfg.context`` (= n - 1); tied weights drop "W_o" and reuse ``embed[:V_out]``.

Contexts never cross a sentence start: positions before the sentence's ``<s>``
are filled with ``<s>`` itself, so the first word sees ``<s> .. <s>`` (as an
n-gram model pads with ``<s>``).  The model reads the same input stream as the
RNNs; its carry is just the last ``C`` input ids, so windows span segment
boundaries and evaluation does not depend on how the text is cut into batches.

Initialisation: embedding and weights ~ U(-init_scale, init_scale), biases 0.
Dropout (if any) acts on the concatenated embeddings and on the hidden layer.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lm_jax.models import ModelConfig, dropout, init_output, output, uniform


def init(rng, cfg: ModelConfig) -> dict:
  """Params for ``cfg`` (uniform ±init_scale weights, zero biases)."""
  k_embed, k_h, k_out = jax.random.split(rng, 3)
  s = cfg.init_scale
  return {
    "embed": uniform(k_embed, (cfg.in_vocab, cfg.embed_dim), s),
    "W_h": uniform(k_h, (cfg.context * cfg.embed_dim, cfg.hidden_dim), s),
    "b_h": jnp.zeros((cfg.hidden_dim,), "float32"),
    **init_output(k_out, cfg),
  }


def init_carry(cfg: ModelConfig, batch_size: int) -> dict:
  """The history before any text: all ``<s>``."""
  return {"history": jnp.full((batch_size, cfg.context), cfg.bos_id, jnp.int32)}


def windows(history_BxC, inputs_BxT, bos_id: int):
  """For each position, the ``C`` most recent inputs, oldest first, ``<s>``-padded at sentence starts."""
  c = history_BxC.shape[1]
  t = inputs_BxT.shape[1]
  ext_BxL = jnp.concatenate([history_BxC, inputs_BxT], axis=1)
  # Column k (0 = oldest) of the window ending at input t is ext[t + 1 + k].
  ctx_BxTxC = jnp.stack([ext_BxL[:, 1 + k : 1 + k + t] for k in range(c)], axis=-1)
  is_bos = ctx_BxTxC == bos_id
  # A column lies before the sentence if a more recent column is <s>.
  bos_at_or_after = jax.lax.cummax(is_bos[..., ::-1].astype(jnp.int32), axis=2)[..., ::-1]
  before_sentence = (
    jnp.concatenate([bos_at_or_after[..., 1:], jnp.zeros_like(bos_at_or_after[..., :1])], axis=-1)
    > 0
  )
  return jnp.where(before_sentence, bos_id, ctx_BxTxC), ext_BxL[:, t:]


def apply(
  params: dict,
  carry: dict,
  inputs_BxT,
  cfg: ModelConfig,
  *,
  rng=None,
  train: bool = False,
  hidden: bool = False,
  embedded=None,  # Only recurrent models take pre-gathered rows (optim.sparse_embedding).
):
  """Logits over the predictable ids for every position, and the new history."""
  ctx_BxTxC, history_BxC = windows(carry["history"], inputs_BxT, cfg.bos_id)
  b, t = inputs_BxT.shape
  k_e, k_h = jax.random.split(rng) if (train and cfg.dropout > 0) else (None, None)
  e_BxTxCE = params["embed"][ctx_BxTxC].reshape(b, t, cfg.context * cfg.embed_dim)
  e_BxTxCE = dropout(e_BxTxCE, cfg.dropout, k_e, train)
  act = jnp.tanh if cfg.activation == "tanh" else jax.nn.sigmoid
  h_BxTxH = dropout(act(e_BxTxCE @ params["W_h"] + params["b_h"]), cfg.dropout, k_h, train)
  return output(params, {"h": h_BxTxH}, cfg, hidden), {"history": history_BxC}
