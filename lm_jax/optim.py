"""Optimizers and learning-rate schedules: SGD as in the lecture, Adam, clipping, decay, plateau.

The optax chain produces an update direction (clipped, maybe Adam-scaled); the
training step multiplies it by ``-learning_rate(step) * plateau_scale``.  The
plateau scale comes from ``optax.contrib.reduce_on_plateau`` fed with the
validation loss once per epoch; its state lives in the train state (and so in
every checkpoint).
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import ml_collections
import optax

from lm_jax.config_fields import freeze
from lm_jax.errors import ConfigError

NAMES = ("sgd", "adam")
SCHEDULES = ("constant", "epoch_decay", "cosine")


@dataclasses.dataclass(frozen=True)
class OptimConfig:
  """``config.optim``, frozen (the plateau block is flattened into ``plateau_*``)."""

  name: str = "sgd"
  learning_rate: float = 1.0
  momentum: float = 0.0
  b1: float = 0.9
  b2: float = 0.999
  eps: float = 1e-8
  weight_decay: float = 0.0
  clip_norm: float = 0.0          # global-norm clipping threshold; 0 turns it off
  schedule: str = "constant"
  decay_rate: float = 0.5         # epoch_decay: factor per epoch once decay starts
  decay_after_epochs: int = 4     # epoch_decay: epochs at the full rate (Zaremba's max_epoch)
  plateau: bool = False
  plateau_factor: float = 0.5
  plateau_patience: int = 1
  plateau_rtol: float = 1e-3
  plateau_cooldown: int = 0
  plateau_min_scale: float = 0.0


def optim_config(optim: ml_collections.ConfigDict) -> OptimConfig:
  """Validates ``config.optim`` and freezes it."""
  flat = {k: optim[k] for k in optim.keys() if k != "plateau"}
  if "plateau" in optim:
    p = optim.plateau
    flat.update({"plateau": p.enabled, **{f"plateau_{k}": p[k] for k in p.keys() if k != "enabled"}})
  cfg = freeze("optim", flat, OptimConfig)
  if cfg.name not in NAMES:
    raise ConfigError(f"optim.name={cfg.name!r}; use one of {NAMES}.")
  if cfg.schedule not in SCHEDULES:
    raise ConfigError(f"optim.schedule={cfg.schedule!r}; use one of {SCHEDULES}.")
  if cfg.learning_rate <= 0 or cfg.clip_norm < 0:
    raise ConfigError("optim.learning_rate must be > 0 and optim.clip_norm >= 0 (0 = no clipping).")
  if cfg.plateau and not (0 < cfg.plateau_factor < 1 and cfg.plateau_patience >= 1):
    raise ConfigError("optim.plateau needs 0 < factor < 1 and patience >= 1 (epochs without "
                      "improvement before the rate is multiplied by factor).")
  return cfg


def make_optimizer(cfg: OptimConfig) -> optax.GradientTransformation:
  """Update direction before the learning rate: clip, (L2 / momentum | Adam), decoupled decay."""
  parts = []
  if cfg.clip_norm > 0:
    parts.append(optax.clip_by_global_norm(cfg.clip_norm))
  if cfg.name == "sgd":
    if cfg.weight_decay:
      parts.append(optax.add_decayed_weights(cfg.weight_decay))
    if cfg.momentum:
      parts.append(optax.trace(decay=cfg.momentum))
  else:
    parts.append(optax.scale_by_adam(b1=cfg.b1, b2=cfg.b2, eps=cfg.eps))
    if cfg.weight_decay:
      parts.append(optax.add_decayed_weights(cfg.weight_decay))  # AdamW (Loshchilov & Hutter).
  return optax.chain(*parts) if parts else optax.identity()


def make_plateau(cfg: OptimConfig) -> optax.GradientTransformationExtraArgs:
  """Reduce-on-plateau, fed one validation loss per epoch (accumulation_size=1)."""
  return optax.contrib.reduce_on_plateau(
      factor=cfg.plateau_factor if cfg.plateau else 0.5, patience=cfg.plateau_patience,
      rtol=cfg.plateau_rtol, cooldown=cfg.plateau_cooldown, min_scale=cfg.plateau_min_scale)


def plateau_update(cfg: OptimConfig, plateau_state, valid_nll_per_token: float):
  """The plateau state after one epoch's validation loss; unchanged when plateau is off."""
  if not cfg.plateau:
    return plateau_state
  _, new_state = make_plateau(cfg).update({}, plateau_state, value=jnp.float32(valid_nll_per_token))
  return new_state


def learning_rate(cfg: OptimConfig, step, steps_per_epoch: int, total_steps: int):
  """The scheduled rate at ``step`` (before the plateau scale); jittable."""
  step = jnp.asarray(step)
  if cfg.schedule == "epoch_decay":
    # Zaremba et al. 2014: lr * decay ** max(epoch + 1 - max_epoch, 0), epochs counted from 0.
    epoch = step // steps_per_epoch
    return cfg.learning_rate * cfg.decay_rate ** jnp.maximum(epoch + 1 - cfg.decay_after_epochs, 0)
  if cfg.schedule == "cosine":
    frac = jnp.minimum(step / max(total_steps, 1), 1.0)
    return cfg.learning_rate * 0.5 * (1.0 + jnp.cos(math.pi * frac))
  return jnp.asarray(cfg.learning_rate, jnp.float32)
