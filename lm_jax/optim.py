"""Optimizers and learning-rate schedules: SGD as in the lecture, Adam, clipping, decay, plateau.

The optax chain produces an update direction (clipped, maybe Adam-scaled); the
training step multiplies it by ``-learning_rate(step) * plateau_scale``.  The
plateau scale comes from ``optax.contrib.reduce_on_plateau`` fed with the
validation loss once per epoch; its state lives in the train state (and so in
every checkpoint).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import optax

from lm_jax.spec import OptimConfig  # The config and its defaults live with the run spec.

__all__ = ["OptimConfig", "make_optimizer", "make_plateau", "plateau_update", "learning_rate"]


def make_optimizer(cfg: OptimConfig) -> optax.GradientTransformation:
  """Update direction before the learning rate: clip, (L2 / momentum | Adagrad | Adam), decay.

  With ``maxent_learning_rate`` the MaxEnt table (``params["maxent"]``) takes its own
  direction, ``(g + maxent_l2 * w) * maxent_learning_rate / learning_rate``, so after the
  step's ``-learning_rate(step)`` it is plain SGD at ``maxent_learning_rate`` with the same
  decay.  Adam would give each rarely hashed weight a full-size step whatever its gradient,
  which lets the n-gram weights memorize the training text.
  """
  clip = [optax.clip_by_global_norm(cfg.clip_norm)] if cfg.clip_norm > 0 else []
  main_parts = _main_parts(cfg)
  if not cfg.maxent_learning_rate:  # one flat chain: the state layout of earlier checkpoints
    parts = clip + main_parts
    return optax.chain(*parts) if parts else optax.identity()
  main = optax.chain(*main_parts) if main_parts else optax.identity()
  maxent = optax.chain(
    optax.add_decayed_weights(cfg.maxent_l2),
    optax.scale(cfg.maxent_learning_rate / cfg.learning_rate),
  )
  split = optax.multi_transform({"main": main, "maxent": maxent}, maxent_labels)
  return optax.chain(*clip, split)


def maxent_labels(params: dict) -> dict:
  """``"maxent"`` for the MaxEnt table, ``"main"`` for every other leaf."""
  return {
    k: jax.tree.map(lambda _, k=k: "maxent" if k == "maxent" else "main", v)
    for k, v in params.items()
  }


def _main_parts(cfg: OptimConfig) -> list:
  parts = []
  if cfg.name == "sgd":
    if cfg.weight_decay:
      parts.append(optax.add_decayed_weights(cfg.weight_decay))
    if cfg.momentum:
      parts.append(optax.trace(decay=cfg.momentum))
  elif cfg.name == "adagrad":  # Duchi et al. 2011; Jozefowicz et al. 2016, Grave et al. 2017
    parts.append(optax.scale_by_rss(initial_accumulator_value=cfg.adagrad_initial, eps=cfg.eps))
    if cfg.weight_decay:
      parts.append(optax.add_decayed_weights(cfg.weight_decay))
  else:
    parts.append(optax.scale_by_adam(b1=cfg.b1, b2=cfg.b2, eps=cfg.eps))
    if cfg.weight_decay:
      parts.append(optax.add_decayed_weights(cfg.weight_decay))  # AdamW (Loshchilov & Hutter).
  return parts


def make_plateau(cfg: OptimConfig) -> optax.GradientTransformationExtraArgs:
  """Reduce-on-plateau, fed one validation loss per epoch (accumulation_size=1)."""
  return optax.contrib.reduce_on_plateau(
    factor=cfg.plateau_factor if cfg.plateau else 0.5,
    patience=cfg.plateau_patience,
    rtol=cfg.plateau_rtol,
    cooldown=cfg.plateau_cooldown,
    min_scale=cfg.plateau_min_scale,
  )


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
