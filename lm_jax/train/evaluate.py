"""Evaluation of a neural model: one function, used during training and after it.

Every scored token is predicted exactly once (``batching.eval_grid``); the
segments of the grid are scanned with the state carried along each row, and
the split's sums are accumulated in float64 from the per-token scores.
"""

from __future__ import annotations

import functools

import jax
import numpy as np
from jax.sharding import NamedSharding

from lm_jax import parallel
from lm_jax.data import batching
from lm_jax.data.tokens import TokenArray
from lm_jax.evaluation import EvalResult, from_token_logprobs
from lm_jax.models import ModelConfig, get_model, output_layers


def eval_step(params, carry, batch: dict, cfg: ModelConfig, scores_sharding=None):
  """``(nll_BxT, carry)``: per-position negative log-likelihood of one [B, T] eval segment."""
  feats, carry = get_model(cfg).apply(params, carry, batch["inputs"], cfg, train=False, hidden=True)
  nll = output_layers.token_nll(params, feats, batch["targets"], cfg, scores_sharding)
  return nll, carry


@functools.partial(jax.jit, static_argnames=("cfg", "batch_size", "scores_sharding"))
def _eval_token_nll(
  params, grid_SxBxT: dict, *, cfg: ModelConfig, batch_size: int, scores_sharding=None
):
  """eval_step scanned over the segments of a grid, carrying the state along each row: [S, B, T].

  With ``scores_sharding`` (a model axis), the vocabulary-sized parameters are first
  moved onto their vocabulary dimension (``parallel.vocab_spec(uneven=True)``), once
  for the whole grid: a matrix split on its other dimension would give every device
  partial sums of all the scores, all-reduced whole before they are split.
  """
  if scores_sharding is not None:
    mesh, sizes = scores_sharding.mesh, output_layers.vocab_sizes(cfg)
    params = jax.tree.map(
      lambda x: jax.lax.with_sharding_constraint(
        x, NamedSharding(mesh, parallel.vocab_spec(x.shape, sizes, mesh, uneven=True))
      ),
      params,
    )

  def body(carry, batch):
    nll_BxT, carry = eval_step(params, carry, batch, cfg, scores_sharding)
    return carry, nll_BxT

  return jax.lax.scan(body, get_model(cfg).init_carry(cfg, batch_size), grid_SxBxT)[1]


def compile_segment(params, cfg: ModelConfig, batch_size: int, seq_len: int, mesh):
  """The evaluation of one [batch_size, seq_len] segment compiled from the shapes and
  shardings of ``params`` (``jax.ShapeDtypeStruct`` leaves will do): what a plan reads
  the evaluation's memory per device from (more segments add only their ids)."""
  shape = (1, batch_size, seq_len)
  ids = jax.ShapeDtypeStruct(shape, np.int32)
  rows = parallel.rows_sharding(mesh, ids, batch_size, axis=1)
  ids = jax.ShapeDtypeStruct(shape, np.int32, sharding=rows)
  grid = {"inputs": ids, "targets": ids}
  scores = parallel.scores_sharding(mesh, rows)
  return _eval_token_nll.lower(
    params, grid, cfg=cfg, batch_size=batch_size, scores_sharding=scores
  ).compile()


def token_logprobs(
  params, tokens: TokenArray, cfg: ModelConfig, batch_size: int, seq_len: int, mesh=None
) -> np.ndarray:
  """ln p of every scored token in corpus order; each token is scored once."""
  grid = batching.eval_grid(tokens, cfg.bos_id, batch_size, seq_len)
  segs = grid.num_segments
  arrays = {"inputs": grid.inputs_BxL, "targets": grid.targets_BxL}
  # [B, S*T] -> [S, B, T]: the scan steps through segments.
  grid_SxBxT = {
    k: np.moveaxis(v.reshape(batch_size, segs, seq_len), 1, 0) for k, v in arrays.items()
  }
  mesh = parallel.make_mesh() if mesh is None else mesh
  # Rows split over the data axis when they divide evenly (batch 1 runs replicated).
  rows = parallel.rows_sharding(mesh, grid_SxBxT["inputs"], batch_size, axis=1)
  grid_SxBxT = {k: parallel.put(v, rows) for k, v in grid_SxBxT.items()}
  nll_SxBxT = _eval_token_nll(
    params,
    grid_SxBxT,
    cfg=cfg,
    batch_size=batch_size,
    scores_sharding=parallel.scores_sharding(mesh, rows),
  )
  nll_SxBxT = parallel.fetch(nll_SxBxT)
  nll_BxL = np.moveaxis(nll_SxBxT, 0, 1).reshape(batch_size, segs * seq_len)
  out = np.empty(tokens.num_tokens, np.float64)
  valid = grid.index_BxL >= 0
  out[grid.index_BxL[valid]] = -nll_BxL[valid]
  return out


def evaluate(
  params, tokens: TokenArray, split: str, cfg: ModelConfig, batch_size: int, seq_len: int, mesh=None
) -> tuple[EvalResult, np.ndarray]:
  """The split's sums under lm_jax's convention and the per-token ln p they were summed from."""
  logp = token_logprobs(params, tokens, cfg, batch_size, seq_len, mesh)
  return from_token_logprobs(split, logp, tokens.oov, tokens.num_sentences), logp
