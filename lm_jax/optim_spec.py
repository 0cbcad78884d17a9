"""``config.optim``: the optimizer section of the run spec (``lm_jax.spec`` re-exports it).

Like every spec module, nothing here imports jax.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from lm_jax.config_fields import freeze, one_of
from lm_jax.errors import ConfigError

OPTIMIZERS = ("sgd", "adam", "adagrad")
SCHEDULES = ("constant", "epoch_decay", "cosine")


@dataclasses.dataclass(frozen=True)
class PlateauSpec:
  """``config.optim.plateau``: reduce-on-plateau, fed the validation loss once per epoch."""

  enabled: bool = False
  factor: float = 0.5
  patience: int = 1
  rtol: float = 1e-3
  cooldown: int = 0
  min_scale: float = 0.0


@dataclasses.dataclass(frozen=True)
class OptimConfig:
  """``config.optim``, frozen (the plateau block flattened into ``plateau_*``)."""

  name: str = "sgd"
  learning_rate: float = 1.0
  momentum: float = 0.0
  b1: float = 0.9
  b2: float = 0.999
  eps: float = 1e-8
  adagrad_initial: float = 0.1  # adagrad: the accumulator's start (TensorFlow's default)
  weight_decay: float = 0.0
  clip_norm: float = 5.0  # global-norm clipping threshold; 0 turns it off
  schedule: str = "constant"
  decay_rate: float = 0.5  # epoch_decay: factor per epoch once decay starts
  decay_after_epochs: int = 4  # epoch_decay: epochs at the full rate (Zaremba's max_epoch)
  sparse_embedding: bool = False  # SGD: update only the embedding rows a step used (large V)
  # RNN + MaxEnt: > 0 trains the hashed n-gram weights by plain SGD on the step's loss at this
  # rate (times the schedule's decay), with L2 ``maxent_l2``, as RNNME's direct connections
  # (its per-token rate 0.1 is 0.1 x tokens per step with loss_normalizer="tokens"); 0 = the
  # main optimizer.
  maxent_learning_rate: float = 0.0
  maxent_l2: float = 0.0
  plateau: bool = False
  plateau_factor: float = 0.5
  plateau_patience: int = 1
  plateau_rtol: float = 1e-3
  plateau_cooldown: int = 0
  plateau_min_scale: float = 0.0


def parse_optim(section: dict[str, Any]) -> OptimConfig:
  """``config.optim`` (with its ``plateau`` block), validated and flattened."""
  flat = {k: v for k, v in section.items() if k != "plateau"}
  if "plateau" in section:
    plateau = freeze("optim.plateau", dict(section["plateau"]), PlateauSpec)
    flat.update(
      {
        "plateau": plateau.enabled,
        **{
          f"plateau_{k}": getattr(plateau, k)
          for k in ("factor", "patience", "rtol", "cooldown", "min_scale")
        },
      }
    )
  cfg = freeze("optim", flat, OptimConfig)
  one_of("optim.name", cfg.name, OPTIMIZERS)
  one_of("optim.schedule", cfg.schedule, SCHEDULES)
  if cfg.learning_rate <= 0:
    raise ConfigError(f"optim.learning_rate must be > 0, got {cfg.learning_rate}.")
  if cfg.clip_norm < 0:
    raise ConfigError(f"optim.clip_norm must be >= 0 (0 = no clipping), got {cfg.clip_norm}.")
  if cfg.sparse_embedding and (cfg.name != "sgd" or cfg.momentum or cfg.weight_decay):
    raise ConfigError(
      "optim.sparse_embedding updates only the embedding rows a step used, which is exact "
      "for plain SGD only; set optim.name='sgd', momentum=0, weight_decay=0, or "
      "optim.sparse_embedding=False."
    )
  if cfg.maxent_learning_rate < 0 or cfg.maxent_l2 < 0:
    raise ConfigError(
      "optim.maxent_learning_rate and optim.maxent_l2 must be >= 0 (0 = the MaxEnt weights "
      f"share the main optimizer), got {cfg.maxent_learning_rate} and {cfg.maxent_l2}."
    )
  if cfg.maxent_l2 and not cfg.maxent_learning_rate:
    raise ConfigError(
      "optim.maxent_l2 applies to the MaxEnt weights' own SGD; set optim.maxent_learning_rate "
      "> 0 as well, or optim.maxent_l2=0."
    )
  if cfg.plateau and not (0 < cfg.plateau_factor < 1 and cfg.plateau_patience >= 1):
    raise ConfigError(
      "optim.plateau needs 0 < factor < 1 and patience >= 1 (epochs without "
      "improvement before the rate is multiplied by factor)."
    )
  return cfg
