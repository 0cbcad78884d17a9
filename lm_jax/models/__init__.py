"""Neural language models as pure functions over plain-dict params.

Every model family exposes the same three functions, bundled as a ``Model``:

- ``init(rng, cfg) -> params``
- ``init_carry(cfg, batch_size) -> carry`` (the state passed between segments)
- ``apply(params, carry, inputs_BxT, cfg, *, rng=None, train=False, hidden=False) -> (logits_BxTxV, carry)``
  (``hidden=True``: the softmax layer's input ``h_BxTxH`` instead of the logits, for
  ``losses.output_sum_nll``)

``inputs_BxT`` is the lm_jax input stream (``<s>`` where a sentence starts,
see ``lm_jax.data.batching``), ``V`` is ``cfg.out_vocab`` (every id but ``<s>``).
``cfg`` is a frozen, hashable ``ModelConfig``; an ml_collections ConfigDict never
reaches a jitted function.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

from lm_jax.spec import ModelSettings


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModelConfig(ModelSettings):
  """Everything a model function needs, static under jit: the settings plus the vocabulary."""

  in_vocab: int  # embedding rows: vocab.size (includes <s>)
  out_vocab: int  # softmax outputs: vocab.num_predictable
  bos_id: int

  @classmethod
  def build(cls, settings: ModelSettings, vocab) -> ModelConfig:
    """The model of ``settings`` over ``vocab`` (known only once the data is loaded)."""
    return cls(
      **dataclasses.asdict(settings),
      in_vocab=vocab.size,
      out_vocab=vocab.num_predictable,
      bos_id=vocab.bos_id,
    )


class Model(NamedTuple):
  init: Callable[..., Any]
  init_carry: Callable[..., Any]
  apply: Callable[..., Any]


def get_model(cfg: ModelConfig) -> Model:
  """The (init, init_carry, apply) functions of ``cfg.kind``."""
  if cfg.kind == "window":
    from lm_jax.models import window as m
  else:
    from lm_jax.models import rnn as m
  return Model(m.init, m.init_carry, m.apply)


# Pieces shared by every family: initialisation, dropout, the output layer.


def uniform(key, shape: tuple[int, ...], scale: float):
  """U(-scale, scale), float32: Zaremba et al. (2014) initialise every weight this way."""
  import jax

  return jax.random.uniform(key, shape, minval=-scale, maxval=scale, dtype="float32")


def dropout(x, rate: float, rng, train: bool):
  """Inverted dropout: kept units are scaled by 1 / (1 - rate) so eval needs no rescaling."""
  if not train or rate == 0.0:
    return x
  import jax
  import jax.numpy as jnp

  if rng is None:
    raise ValueError("dropout in training needs an rng key; pass rng= to apply().")
  keep = jax.random.bernoulli(rng, 1.0 - rate, x.shape)
  return jnp.where(keep, x / (1.0 - rate), 0.0)


def init_output(key, cfg: ModelConfig) -> dict:
  """Softmax layer over the predictable ids; with tying only the bias is new."""
  import jax.numpy as jnp

  out = {"b_o": jnp.zeros((cfg.out_vocab,), "float32")}
  if not cfg.tie_weights:
    out["W_o"] = uniform(key, (cfg.output_dim, cfg.out_vocab), cfg.init_scale)
  return out


def output_weights(params: dict, cfg: ModelConfig):
  """``(W_HxV, b_V)`` of the softmax layer; tied: ``embed[:V_out].T`` (``<s>``'s row is input-only)."""
  if cfg.tie_weights:
    return params["embed"][: cfg.out_vocab].T, params["b_o"]
  return params["W_o"], params["b_o"]


def output_logits(params: dict, h_BxTxH, cfg: ModelConfig):
  """``h @ W_o + b_o`` (see ``output_weights``)."""
  w_HxV, b_V = output_weights(params, cfg)
  return h_BxTxH @ w_HxV + b_V


def output(params: dict, h_BxTxH, cfg: ModelConfig, hidden: bool):
  """What ``apply`` returns: the logits, or with ``hidden=True`` the softmax layer's input."""
  return h_BxTxH if hidden else output_logits(params, h_BxTxH, cfg)
