"""Neural language models as pure functions over plain-dict params.

Every model family exposes the same three functions, bundled as a ``Model``:

- ``init(rng, cfg) -> params``
- ``init_carry(cfg, batch_size) -> carry`` (the state passed between segments)
- ``apply(params, carry, inputs_BxT, cfg, *, rng=None, train=False, hidden=False) -> (scores_BxTxV, carry)``
  (scores: ``log_softmax`` of them is the exact log-probability, whatever
  ``model.output`` is; ``hidden=True``: the output layer's inputs ``{"h": h_BxTxH, ..}``
  instead, for ``output_layers.train_sum_nll``)

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
  class_bounds: tuple[int, ...] = ()  # output="class": first id of each class, then V

  @classmethod
  def build(cls, settings: ModelSettings, vocab) -> ModelConfig:
    """The model of ``settings`` over ``vocab`` (known only once the data is loaded)."""
    from lm_jax.errors import ConfigError

    v = vocab.num_predictable
    bounds = ()
    if settings.output == "class":
      if vocab.counts is None:
        raise ConfigError(
          "model.output='class' bins words by their training counts, and this run's "
          "vocab.json has none (written by an older lm_jax); start a new run."
        )
      from lm_jax.models.output_layers import frequency_classes

      bounds = frequency_classes(vocab.counts, settings.num_classes)
    if settings.output == "adaptive" and settings.cutoffs[-1] >= v:
      raise ConfigError(
        f"model.adaptive_cutoffs={settings.adaptive_cutoffs!r} must stay below the "
        f"{v} predictable ids of this vocabulary; lower the last cutoff."
      )
    if settings.output == "sampled" and settings.num_sampled > v:
      raise ConfigError(
        f"model.num_sampled={settings.num_sampled} distinct candidates cannot be drawn from "
        f"{v} ids; lower it (a few percent of the vocabulary is usual)."
      )
    if settings.maxent_order and settings.maxent_hash_size < 2 * v:
      raise ConfigError(
        f"model.maxent_hash_size={settings.maxent_hash_size} must be at least twice the "
        f"{v} predictable ids (each feature reads a slice of V weights); raise it."
      )
    return cls(
      **dataclasses.asdict(settings),
      in_vocab=vocab.size,
      out_vocab=v,
      bos_id=vocab.bos_id,
      class_bounds=bounds,
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
  """The output layer's params (``lm_jax.models.output_layers``)."""
  from lm_jax.models import output_layers

  return output_layers.init(key, cfg)


def output_weights(params: dict, cfg: ModelConfig):
  """``(W_HxV, b_V)`` of the softmax layer; tied: ``embed[:V_out].T`` (``<s>``'s row is input-only)."""
  from lm_jax.models import output_layers

  return output_layers.output_weights(params, cfg)


def output(params: dict, feats: dict, cfg: ModelConfig, hidden: bool):
  """What ``apply`` returns: the scores, or with ``hidden=True`` the output layer's inputs."""
  from lm_jax.models import output_layers

  return feats if hidden else output_layers.scores(params, feats, cfg)
