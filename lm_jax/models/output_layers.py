"""Output layers: one choice in the model config (``model.output``), plus RNN + MaxEnt.

Every layer maps the model's top hidden states ``h`` [.., D] to a distribution over
the ``V`` predictable ids and offers three functions:

- ``init(key, cfg)``: its parameters (merged into the model's params dict);
- ``scores(params, feats, cfg)``: [.., V] scores whose ``log_softmax`` is the exact,
  normalized log-probability (evaluation, sampling, dumps and interpolation read
  these, whatever was used in training);
- ``train_sum_nll(params, feats, targets, cfg, rng)``: the training loss, summed.

``feats`` is what ``apply(..., hidden=True)`` returns: ``{"h": h_BxTxD}`` and, with
MaxEnt, ``"maxent"``: the hash-table offsets of the history's n-gram features.

The layers (ids are frequency-sorted: ``<unk>``, ``</s>``, then by training count):

- ``full``: ``softmax(h W + b)``; trained with the fused layer of ``lm_jax.losses``.
- ``adaptive`` (Grave et al. 2017, as PyTorch's ``AdaptiveLogSoftmaxWithLoss``): a head
  softmax over the ids below the first cutoff plus one entry per tail cluster;
  cluster ``i`` (ids ``[cutoff_i, cutoff_{i+1})``) is a softmax over its ids from the
  projection ``h P_i`` of size ``D // div ** (i + 1)``.  ``p(w) = p_head(cluster(w))
  p_i(w)``.  Training computes a cluster's softmax only for the rows whose target is in
  it, in chunks of ``CHUNK`` rows; its gradients are made in the same pass as its loss
  (a hand-written backward pass; nothing of size rows x cluster is kept).
- ``class`` (Goodman 2001; Mikolov's RNNLM toolkit): ``p(w) = p(c(w)) p(w | c(w))``
  with classes as frequency bins over the training counts, each a contiguous id
  range (``class_bounds``).  The within-class softmax shares one [D, V] matrix.
- ``sampled`` (Jean et al. 2015, as TensorFlow's ``sampled_softmax_loss`` with its
  default ``unique=True`` log-uniform sampler): full parameters, trained on the target
  and ``num_sampled`` distinct candidates shared by the batch, each logit corrected by
  ``-log`` of its expected count (``-expm1(tries * log1p(-Q(k)))``) and accidental hits
  removed; as the sample covers the vocabulary the loss becomes the full one.  With
  ``sampled_loss="blackout"`` the BlackOut loss of Ji et al. (2015) on the same
  weighted samples.  Only training is sampled: scores are the full softmax.

MaxEnt (Mikolov et al. 2011): for each history length ``n = 1 .. maxent_order - 1``
the last ``n`` inputs (``<s>``-padded at a sentence start, as an n-gram context) hash
to an offset ``o`` in a table of ``maxent_hash_size`` weights, and word ``w`` scores
``table[o + w]`` on top of ``h W + b`` (a contiguous slice per feature, as the RNNLM
toolkit's direct connections).  Trained jointly, normalized exactly by the softmax.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from lm_jax import losses

CHUNK = 32  # adaptive: rows per tail-cluster chunk


def uniform(key, shape, scale):
  return jax.random.uniform(key, shape, minval=-scale, maxval=scale, dtype="float32")


# -- Layout -----------------------------------------------------------------------------


def tail_dims(cfg) -> list[int]:
  """Projection size of each adaptive tail cluster (PyTorch's ``in // div ** (i + 1)``)."""
  return [
    max(1, int(cfg.output_dim // (cfg.adaptive_div ** (i + 1)))) for i in range(len(cfg.cutoffs))
  ]


def cluster_bounds(cfg) -> list[tuple[int, int]]:
  """``[start, end)`` of each adaptive tail cluster."""
  edges = [*cfg.cutoffs, cfg.out_vocab]
  return list(zip(edges[:-1], edges[1:]))


def frequency_classes(counts, num_classes: int) -> tuple[int, ...]:
  """Class boundaries ``(0, b_1, .., V)`` by the RNNLM toolkit's frequency binning.

  Words in id order (frequency order) fill class ``a`` until their cumulative share
  of the training tokens exceeds ``(a + 1) / num_classes``; the word that crosses the
  line still belongs to ``a``.  Every class is a contiguous, non-empty id range.
  """
  counts = np.asarray(counts, np.float64)
  total = counts.sum()
  bounds, a, df = [0], 0, 0.0
  for i, c in enumerate(counts):
    df = min(1.0, df + c / total)
    if df > (a + 1) / num_classes and a < num_classes - 1:
      a += 1
      bounds.append(i + 1)
  if bounds[-1] != len(counts):
    bounds.append(len(counts))
  return tuple(bounds)


def forward_flops_per_token(cfg, counts=None) -> float:
  """Forward matmul FLOPs of the output layer for one token (training).

  Adaptive: the head for every token, a cluster for the share of tokens in it, taken
  from the training ``counts`` (or, without them, a Zipf law ``p(k) ~ 1 / (k + 1)``).
  Sampled: the target and the candidates.  Class is computed densely (as full).
  """
  d, v = cfg.output_dim, cfg.out_vocab
  if cfg.output == "sampled":
    return 2.0 * d * (cfg.num_sampled + 1)
  if cfg.output == "class":
    return 2.0 * d * (v + len(cfg.class_bounds) - 1)
  if cfg.output != "adaptive":
    return 2.0 * d * v
  p = np.asarray(counts, np.float64) if counts is not None else 1.0 / np.arange(1, v + 1)
  p = p / p.sum()
  flops = 2.0 * d * (cfg.cutoffs[0] + len(cfg.cutoffs))
  for (a, b), dim in zip(cluster_bounds(cfg), tail_dims(cfg)):
    flops += p[a:b].sum() * 2.0 * (d * dim + dim * (b - a))
  return flops


# -- Parameters -------------------------------------------------------------------------


def init(key, cfg) -> dict:
  """The output layer's parameters; with tied weights only the bias is new (full, sampled)."""
  s, d, v = cfg.init_scale, cfg.output_dim, cfg.out_vocab
  k_w, k_c, k_m = jax.random.split(key, 3)
  if cfg.output == "adaptive":
    heads = cfg.cutoffs[0] + len(cfg.cutoffs)
    tails = []
    for i, ((a, b), dim) in enumerate(zip(cluster_bounds(cfg), tail_dims(cfg))):
      kp, kw = jax.random.split(jax.random.fold_in(k_c, i))
      tails.append(
        {"P": uniform(kp, (d, dim), s), "W": uniform(kw, (dim, b - a), s), "b": jnp.zeros((b - a,))}
      )
    return {"W_o": uniform(k_w, (d, heads), s), "b_o": jnp.zeros((heads,)), "tail": tails}
  out = {"b_o": jnp.zeros((v,), "float32")}
  if not cfg.tie_weights:
    out["W_o"] = uniform(k_w, (d, v), s)
  if cfg.output == "class":
    c = len(cfg.class_bounds) - 1
    out.update(W_c=uniform(k_c, (d, c), s), b_c=jnp.zeros((c,), "float32"))
  if cfg.maxent_order:
    out["maxent"] = jnp.zeros((cfg.maxent_hash_size,), "float32")
  return out


def output_weights(params: dict, cfg):
  """``(W_DxV, b_V)``: the full softmax matrix (adaptive: the head's; class: the words')."""
  if cfg.tie_weights:
    return params["embed"][: cfg.out_vocab].T, params["b_o"]
  return params["W_o"], params["b_o"]


# -- MaxEnt features ----------------------------------------------------------------------

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


# -- Exact scores -------------------------------------------------------------------------


def _flat(x):
  return x.reshape(-1, x.shape[-1])


def scores(params: dict, feats: dict, cfg):
  """[.., V] scores whose ``log_softmax`` is the exact log-probability of every id."""
  h = feats["h"]
  lead = h.shape[:-1]
  if cfg.output == "adaptive":
    return adaptive_log_probs(params, h, cfg)
  if cfg.output == "class":
    return class_log_probs(params, h, cfg)
  w, b = output_weights(params, cfg)
  logits = h @ w + b
  if cfg.maxent_order:
    m = maxent_scores(params["maxent"], _flat(feats["maxent"]), cfg.out_vocab)
    logits = logits + m.reshape(*lead, cfg.out_vocab)
  return logits


def adaptive_log_probs(params: dict, h, cfg):
  head = jax.nn.log_softmax(h @ params["W_o"] + params["b_o"], axis=-1)
  s = cfg.cutoffs[0]
  parts = [head[..., :s]]
  for i, t in enumerate(params["tail"]):
    parts.append(head[..., s + i, None] + jax.nn.log_softmax((h @ t["P"]) @ t["W"] + t["b"], -1))
  return jnp.concatenate(parts, axis=-1)


def class_log_probs(params: dict, h, cfg):
  bounds = np.asarray(cfg.class_bounds)
  class_of = np.repeat(np.arange(len(bounds) - 1), np.diff(bounds))
  class_lp = jax.nn.log_softmax(h @ params["W_c"] + params["b_c"], axis=-1)
  w, b = output_weights(params, cfg)
  logits = h @ w + b
  # Within-class log-sum-exp: each class's max, then its sum of exponentials.
  m = jax.ops.segment_max(jnp.moveaxis(logits, -1, 0), class_of, len(bounds) - 1)
  m = jax.lax.stop_gradient(jnp.moveaxis(m, 0, -1))
  z = jnp.moveaxis(
    jax.ops.segment_sum(
      jnp.moveaxis(jnp.exp(logits - m[..., class_of]), -1, 0), class_of, len(bounds) - 1
    ),
    0,
    -1,
  )
  lse = jnp.log(z) + m
  return (class_lp - lse)[..., class_of] + logits


# -- Training losses ----------------------------------------------------------------------


def train_sum_nll(params: dict, feats: dict, targets_BxT, cfg, rng=None):
  """The training loss summed over every position (float32)."""
  h = _flat(feats["h"])
  h = h.astype(jnp.promote_types(h.dtype, jnp.float32))
  t = targets_BxT.reshape(-1)
  if cfg.output == "adaptive":
    return adaptive_sum_nll(params, h, t, cfg)
  if cfg.output == "class":
    lp = class_log_probs(params, h, cfg)
    return -jnp.take_along_axis(lp, t[:, None], axis=-1).sum()
  w, b = output_weights(params, cfg)
  if cfg.output == "sampled":
    return sampled_sum_nll(h, w, b, t, rng, cfg.num_sampled, cfg.sampled_loss)
  extra = None
  if cfg.maxent_order:
    extra = maxent_scores(params["maxent"], _flat(feats["maxent"]), cfg.out_vocab)
  return losses.output_nll(h, w, b, t, extra).sum()


def adaptive_sum_nll(params: dict, h_NxD, t_N, cfg):
  """Head softmax (fused layer) plus each tail cluster's softmax over its own rows only."""
  s = cfg.cutoffs[0]
  cluster_N = jnp.zeros_like(t_N)
  for c in cfg.cutoffs:
    cluster_N = cluster_N + (t_N >= c)
  head_t = jnp.where(cluster_N == 0, t_N, s + cluster_N - 1)
  total = losses.output_nll(h_NxD, params["W_o"], params["b_o"], head_t).sum()
  for i, ((a, b), tail) in enumerate(zip(cluster_bounds(cfg), params["tail"])):
    inside = cluster_N == i + 1
    # Rows of this cluster first (stable), padded by one chunk: every slice stays in range.
    rows = jnp.argsort(~inside, stable=True).astype(jnp.int32)
    rows = jnp.concatenate([rows, jnp.zeros((CHUNK,), jnp.int32)])
    local = jnp.clip(t_N - a, 0, b - a - 1)
    total = total + cluster_sum_nll(
      h_NxD, tail["P"], tail["W"], tail["b"], rows, local, inside.sum()
    )
  return total


def _chunk_logits(h_NxD, p, w, b, rows, local, count, i):
  r_R = jax.lax.dynamic_slice_in_dim(rows, i * CHUNK, CHUNK)
  valid_R = i * CHUNK + jnp.arange(CHUNK) < count
  h_RxD = h_NxD[r_R]
  x_Rxd = h_RxD @ p
  logits_Rxn = x_Rxd @ w + b
  return r_R, valid_R, h_RxD, x_Rxd, logits_Rxn, local[r_R]


def _num_chunks(count):
  return (count + CHUNK - 1) // CHUNK


@jax.custom_vjp
def cluster_sum_nll(h_NxD, p, w, b, rows, local, count):
  """Σ over the ``count`` rows listed first in ``rows`` of ``-log softmax(h P W + b)[local]``."""

  def body(i, total):
    _, valid_R, _, _, logits, loc_R = _chunk_logits(h_NxD, p, w, b, rows, local, count, i)
    lse = jax.nn.logsumexp(logits, axis=-1)
    picked = jnp.take_along_axis(logits, loc_R[:, None], axis=-1)[:, 0]
    return total + jnp.where(valid_R, lse - picked, 0.0).sum()

  return jax.lax.fori_loop(0, _num_chunks(count), body, jnp.zeros((), h_NxD.dtype))


def _cluster_fwd(h_NxD, p, w, b, rows, local, count):
  # The loss is a sum (a scalar), so its gradients can be made in the same pass over the
  # chunks as the loss itself: one logits matmul per chunk, no recomputation; the
  # backward pass only scales them by the incoming cotangent.
  def body(i, acc):
    total, dh, dp, dw, db = acc
    r_R, valid_R, h_RxD, x_Rxd, logits, loc_R = _chunk_logits(h_NxD, p, w, b, rows, local, count, i)
    lse = jax.nn.logsumexp(logits, axis=-1)
    picked = jnp.take_along_axis(logits, loc_R[:, None], axis=-1)[:, 0]
    total = total + jnp.where(valid_R, lse - picked, 0.0).sum()
    d_Rxn = jnp.exp(logits - lse[:, None]) - jax.nn.one_hot(loc_R, logits.shape[-1], dtype=w.dtype)
    d_Rxn = d_Rxn * valid_R[:, None]
    dx_Rxd = d_Rxn @ w.T
    dh = dh.at[r_R].add(dx_Rxd @ p.T)
    return total, dh, dp + h_RxD.T @ dx_Rxd, dw + x_Rxd.T @ d_Rxn, db + d_Rxn.sum(0)

  zeros = tuple(jnp.zeros_like(x) for x in (h_NxD, p, w, b))
  total, *grads = jax.lax.fori_loop(
    0, _num_chunks(count), body, (jnp.zeros((), h_NxD.dtype), *zeros)
  )
  return total, tuple(grads)


def _cluster_bwd(grads, g):
  return (*(g * x for x in grads), None, None, None)


cluster_sum_nll.defvjp(_cluster_fwd, _cluster_bwd)


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
