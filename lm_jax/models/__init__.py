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
from typing import Any, Callable, NamedTuple

import ml_collections

from lm_jax.config_fields import freeze
from lm_jax.errors import ConfigError

KINDS = ("window", "elman", "lstm", "gru")
ACTIVATIONS = ("tanh", "sigmoid")
GRADS = ("autodiff", "manual")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Everything a model function needs, static under jit."""

  kind: str
  embed_dim: int
  hidden_dim: int
  num_layers: int = 1
  context: int = 4            # window: tokens of history (the n - 1 of an n-gram)
  activation: str = "tanh"    # window hidden layer and Elman cell
  dropout: float = 0.0        # on non-recurrent connections only (Zaremba et al. 2014)
  tie_weights: bool = False   # softmax reuses embed[:out_vocab] (needs embed_dim == hidden_dim)
  init_scale: float = 0.1     # weights ~ U(-init_scale, init_scale); biases 0
  unroll: int = 1             # lax.scan unroll factor
  reset_at_eos: bool = False  # sentence-independent RNN: state resets where the input is <s>
  remat: bool = False         # jax.checkpoint the scan body: less memory, more compute
  grad: str = "autodiff"      # "manual": hand-derived BPTT (lm_jax.models.bptt)
  in_vocab: int = 0           # embedding rows: vocab.size (includes <s>)
  out_vocab: int = 0          # softmax outputs: vocab.num_predictable
  bos_id: int = -1

  def with_vocab(self, vocab) -> "ModelConfig":
    """Attaches the vocabulary sizes (known only once the data is loaded)."""
    return dataclasses.replace(self, in_vocab=vocab.size, out_vocab=vocab.num_predictable,
                               bos_id=vocab.bos_id)


def model_config(model: ml_collections.ConfigDict) -> ModelConfig:
  """Validates ``config.model`` and freezes it; raises ConfigError naming the fix."""
  cfg = freeze("model", {k: model[k] for k in model.keys()}, ModelConfig,
               ignore=frozenset({"in_vocab", "out_vocab", "bos_id"}))  # Filled from the vocabulary.
  if cfg.kind not in KINDS:
    raise ConfigError(f"model.kind={cfg.kind!r}; use one of {KINDS}.")
  if cfg.activation not in ACTIVATIONS:
    raise ConfigError(f"model.activation={cfg.activation!r}; use one of {ACTIVATIONS}.")
  if cfg.grad not in GRADS:
    raise ConfigError(f"model.grad={cfg.grad!r}; use one of {GRADS}.")
  for name in ("embed_dim", "hidden_dim", "num_layers", "context", "unroll"):
    if getattr(cfg, name) < 1:
      raise ConfigError(f"model.{name} must be >= 1, got {getattr(cfg, name)}.")
  if not 0.0 <= cfg.dropout < 1.0:
    raise ConfigError(f"model.dropout must be in [0, 1), got {cfg.dropout}.")
  if cfg.init_scale <= 0:
    raise ConfigError(f"model.init_scale must be > 0, got {cfg.init_scale}.")
  if cfg.tie_weights and cfg.embed_dim != cfg.hidden_dim:
    raise ConfigError(
        f"model.tie_weights needs model.embed_dim == model.hidden_dim (got {cfg.embed_dim} "
        f"and {cfg.hidden_dim}): the softmax reuses the embedding matrix. Set them equal "
        "or set model.tie_weights=False.")
  if cfg.kind == "window" and cfg.num_layers != 1:
    raise ConfigError("the fixed-window model has one hidden layer; set model.num_layers=1.")
  if cfg.grad == "manual":
    bad = [msg for cond, msg in (
        (cfg.kind != "elman", f"model.kind={cfg.kind!r} (needs 'elman')"),
        (cfg.num_layers != 1, f"model.num_layers={cfg.num_layers} (needs 1)"),
        (cfg.dropout > 0, f"model.dropout={cfg.dropout} (needs 0)"),
        (cfg.tie_weights, "model.tie_weights=True (needs False)"),
        (cfg.reset_at_eos, "model.reset_at_eos=True (needs False)")) if cond]
    if bad:
      raise ConfigError("model.grad='manual' is the hand-derived BPTT of a 1-layer untied Elman "
                        "RNN without dropout; this config has " + ", ".join(bad) +
                        ". Fix those or use model.grad='autodiff'.")
  return cfg


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
    out["W_o"] = uniform(key, (cfg.hidden_dim, cfg.out_vocab), cfg.init_scale)
  return out


def output_weights(params: dict, cfg: ModelConfig):
  """``(W_HxV, b_V)`` of the softmax layer; tied: ``embed[:V_out].T`` (``<s>``'s row is input-only)."""
  if cfg.tie_weights:
    return params["embed"][:cfg.out_vocab].T, params["b_o"]
  return params["W_o"], params["b_o"]


def output_logits(params: dict, h_BxTxH, cfg: ModelConfig):
  """``h @ W_o + b_o`` (see ``output_weights``)."""
  w_HxV, b_V = output_weights(params, cfg)
  return h_BxTxH @ w_HxV + b_V


def output(params: dict, h_BxTxH, cfg: ModelConfig, hidden: bool):
  """What ``apply`` returns: the logits, or with ``hidden=True`` the softmax layer's input."""
  return h_BxTxH if hidden else output_logits(params, h_BxTxH, cfg)
