"""MaxEnt features of RNN + MaxEnt (Mikolov et al. 2011), hashed into one weight table.

For each history length ``n = 1 .. maxent_order - 1`` the last ``n`` inputs hash to an
offset ``o``; word ``w`` then scores ``table[o + w]``, a contiguous slice of V weights
per feature (the RNNLM toolkit's direct connections), added to the output logits.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

_MIX = np.uint32(0x9E3779B1)  # Knuth's multiplicative hash constant (2^32 / golden ratio).


def maxent_offsets(ctx_BxTxC, cfg):
  """[B, T, C] table offsets of the history features; ``ctx`` holds the last C inputs, oldest first."""
  c = ctx_BxTxC.shape[-1]
  span = cfg.maxent_hash_size - cfg.out_vocab + 1  # every slice [o, o + V) fits the table
  h = jnp.full(ctx_BxTxC.shape[:-1], np.uint32(c), jnp.uint32)
  offs = []
  for n in range(1, c + 1):  # history length n: the newest n inputs
    tok = ctx_BxTxC[..., c - n].astype(jnp.uint32)
    h = (h ^ (tok + np.uint32(n))) * _MIX
    h = h ^ (h >> np.uint32(15))
    offs.append((h % np.uint32(span)).astype(jnp.int32))
  return jnp.stack(offs, axis=-1)


def maxent_scores(table, offsets_NxK, v: int):
  """[N, V]: the sum over features of ``table[o : o + V]``."""
  rows = jax.vmap(jax.vmap(lambda o: jax.lax.dynamic_slice_in_dim(table, o, v)))(offsets_NxK)
  return rows.sum(axis=1)
