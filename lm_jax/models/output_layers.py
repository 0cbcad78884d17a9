"""Output layers: one choice in the model config (``model.output``), plus RNN + MaxEnt.

Every layer maps the model's top hidden states ``h`` [.., D] to a distribution over
the ``V`` predictable ids and offers three functions:

- ``init(key, cfg)``: its parameters (merged into the model's params dict);
- ``scores(params, feats, cfg)``: [.., V] scores whose ``log_softmax`` is the exact,
  normalized log-probability (evaluation, sampling, dumps and interpolation read
  these, whatever was used in training);
- ``train_sum_nll(params, feats, targets, cfg, rng)``: the training loss, summed;
- ``token_nll(params, feats, targets, cfg)``: each position's exact ``-ln p(target)``
  (evaluation), equal to ``-log_softmax(scores)[target]``.  For ``adaptive`` it computes
  a tail cluster's softmax only for the rows whose target is in it, as training does:
  at the One Billion Word size the [rows x V] block of ``scores`` costs several times
  the training step per token.

``feats`` is what ``apply(..., hidden=True)`` returns: ``{"h": h_BxTxD}`` and, with
MaxEnt, ``"maxent"``: the hash-table offsets of the history's n-gram features.

The layers (ids are frequency-sorted: ``<unk>``, ``</s>``, then by training count):

- ``full``: ``softmax(h W + b)``; trained with the fused layer of ``lm_jax.losses``.
- ``adaptive`` (Grave et al. 2017, as PyTorch's ``AdaptiveLogSoftmaxWithLoss``): a head
  softmax over the ids below the first cutoff plus one entry per tail cluster;
  cluster ``i`` (ids ``[cutoff_i, cutoff_{i+1})``) is a softmax over its ids from the
  projection ``h P_i`` of size ``D // div ** (i + 1)``.  ``p(w) = p_head(cluster(w))
  p_i(w)``.  Training computes a cluster's softmax only for the rows whose target is in
  it (``adaptive_tail``: one block sized to those rows, gradients made in the same pass
  as the loss; nothing of size rows x cluster is kept).
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

import jax
import jax.numpy as jnp
import numpy as np

from lm_jax import losses
from lm_jax.models import adaptive_tail
from lm_jax.models.maxent import maxent_scores
from lm_jax.models.sampled_softmax import sampled_sum_nll


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


def vocab_sizes(cfg) -> frozenset[int]:
  """Sizes of the vocabulary-indexed dimensions (the mesh's ``model`` axis splits these).

  The embedding's rows, the softmax's columns, the adaptive head's and each tail
  cluster's columns.  Not the MaxEnt hash table: each feature reads a window
  ``table[o : o + V]`` at a hashed offset, which crosses any split, so XLA would
  gather the whole table every step (measured in the compiled plan of
  ``rnnme_lm1b``: 2x the temporaries); replicated, it costs its size once.
  """
  sizes = {cfg.in_vocab, cfg.out_vocab}
  if cfg.output == "adaptive":
    sizes.add(cfg.cutoffs[0] + len(cfg.cutoffs))
    sizes.update(b - a for a, b in cluster_bounds(cfg))
  return frozenset(sizes)


def param_keys(cfg) -> frozenset:
  """The keys ``init`` adds to the model's params (shapes only, nothing allocated)."""
  return frozenset(jax.eval_shape(lambda: init(jax.random.PRNGKey(0), cfg)).keys())


def output_weights(params: dict, cfg):
  """``(W_DxV, b_V)``: the full softmax matrix (adaptive: the head's; class: the words')."""
  if cfg.tie_weights:
    return params["embed"][: cfg.out_vocab].T, params["b_o"]
  return params["W_o"], params["b_o"]


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


# -- Exact per-token negative log-likelihood (evaluation) ------------------------------


def token_nll(params: dict, feats: dict, targets_BxT, cfg, scores_sharding=None):
  """[B, T] ``-ln p(target)`` under the exact, normalized distribution (float32).

  ``scores_sharding`` (``lm_jax.parallel.scores_sharding``) places the [B, T, V] scores
  of the layers that make them."""
  if cfg.output != "adaptive":
    logits = scores(params, feats, cfg)
    if scores_sharding is not None:
      logits = jax.lax.with_sharding_constraint(logits, scores_sharding)
    return losses.token_nll(logits, targets_BxT)
  h = _flat(feats["h"])
  h = h.astype(jnp.promote_types(h.dtype, jnp.float32))
  nll_N = adaptive_token_nll(params, h, targets_BxT.reshape(-1), cfg)
  return nll_N.reshape(targets_BxT.shape)


def _head_targets(t_N, cfg):
  """``(cluster_N, head_t_N)``: each target's cluster (0: the head) and its head entry."""
  cluster_N = jnp.zeros_like(t_N)
  for c in cfg.cutoffs:
    cluster_N = cluster_N + (t_N >= c)
  return cluster_N, jnp.where(cluster_N == 0, t_N, cfg.cutoffs[0] + cluster_N - 1)


def _tail_rows(params: dict, cluster_N, t_N, cfg):
  """Per tail cluster ``i``: ``(i, its params, its rows first (padded), each row's id
  within the cluster, how many rows)``, as ``adaptive_tail`` takes them."""
  for i, ((a, b), tail) in enumerate(zip(cluster_bounds(cfg), params["tail"])):
    inside = cluster_N == i + 1
    local = jnp.clip(t_N - a, 0, b - a - 1)
    yield i, tail, adaptive_tail.padded_rows(inside), local, inside.sum()


def adaptive_token_nll(params: dict, h_NxD, t_N, cfg):
  """[N] exact ``-ln p(t)``: the head's term for every row, a tail cluster's for its rows."""
  cluster_N, head_t = _head_targets(t_N, cfg)
  logits = h_NxD @ params["W_o"] + params["b_o"]
  picked = jnp.take_along_axis(logits, head_t[:, None], axis=-1)[:, 0]
  nll_N = jax.nn.logsumexp(logits, axis=-1) - picked
  for _, tail, rows, local, count in _tail_rows(params, cluster_N, t_N, cfg):
    nll_N = nll_N + adaptive_tail.cluster_token_nll(
      h_NxD, tail["P"], tail["W"], tail["b"], rows, local, count
    )
  return nll_N


# -- Training losses ----------------------------------------------------------------------


def train_sum_nll(params: dict, feats: dict, targets_BxT, cfg, rng=None):
  """The training loss summed over every position (float32)."""
  h = _flat(feats["h"])
  h = h.astype(jnp.promote_types(h.dtype, jnp.float32))
  t = targets_BxT.reshape(-1)
  if cfg.output == "adaptive":
    return adaptive_sum_nll(params, h, t, cfg, rng)
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


def adaptive_sum_nll(params: dict, h_NxD, t_N, cfg, rng=None):
  """Head softmax (fused layer) plus each tail cluster's softmax over its own rows only.

  With ``cfg.adaptive_dropout`` and an ``rng``: inverted dropout on each cluster's
  projected rows ``h P`` (training only; scoring is exact and undropped).
  """
  cluster_N, head_t = _head_targets(t_N, cfg)
  total = losses.output_nll(h_NxD, params["W_o"], params["b_o"], head_t).sum()
  for i, tail, rows, local, count in _tail_rows(params, cluster_N, t_N, cfg):
    mask = None
    if cfg.adaptive_dropout and rng is not None:
      keep = 1.0 - cfg.adaptive_dropout
      drop_key = jax.random.fold_in(rng, i)
      shape = (h_NxD.shape[0], tail["P"].shape[1])
      mask = jax.random.bernoulli(drop_key, keep, shape).astype(h_NxD.dtype) / keep
    total = total + adaptive_tail.cluster_sum_nll(
      h_NxD, tail["P"], tail["W"], tail["b"], rows, local, count, mask
    )
  return total
