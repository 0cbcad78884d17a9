"""``config.model``'s output-layer fields, checked with the rest of the spec (no jax import).

The checks that need the vocabulary size (cutoffs below V, candidates, hash table size)
happen in ``models.ModelConfig.build``.
"""

from __future__ import annotations

from lm_jax.config_fields import at_least, one_of
from lm_jax.errors import ConfigError

OUTPUTS = ("full", "adaptive", "class", "sampled")
SAMPLED_LOSSES = ("softmax", "blackout")


def check_output(cfg) -> None:
  """The output layer's own fields (those that need the vocabulary size: ``ModelConfig.build``)."""
  one_of("model.output", cfg.output, OUTPUTS)
  one_of("model.sampled_loss", cfg.sampled_loss, SAMPLED_LOSSES)
  at_least("model", cfg, ("num_classes", "num_sampled", "maxent_hash_size"))
  at_least("model", cfg, ("maxent_order",), low=0)
  try:
    cuts = cfg.cutoffs
  except ValueError:
    cuts = None
  if cuts is None or any(b <= a for a, b in zip(cuts, cuts[1:])) or any(c < 1 for c in cuts):
    raise ConfigError(
      f"model.adaptive_cutoffs={cfg.adaptive_cutoffs!r} must be increasing positive ids "
      "separated by commas, such as '2000,10000'."
    )
  if cfg.output == "adaptive" and not cuts:
    raise ConfigError(
      "model.output='adaptive' needs model.adaptive_cutoffs, such as '2000,10000' "
      "(the head keeps ids below the first cutoff)."
    )
  if cfg.output == "adaptive" and cfg.adaptive_div < 1:
    raise ConfigError(f"model.adaptive_div must be >= 1, got {cfg.adaptive_div}.")
  if not 0.0 <= cfg.adaptive_dropout < 1.0 or (cfg.adaptive_dropout and cfg.output != "adaptive"):
    raise ConfigError(
      f"model.adaptive_dropout={cfg.adaptive_dropout} drops the adaptive softmax's tail "
      "projections: it needs model.output='adaptive' and a rate in [0, 1); "
      f"this config has model.output={cfg.output!r}."
    )
  if cfg.tie_weights and cfg.output in ("adaptive", "class"):
    raise ConfigError(
      f"model.tie_weights shares the embedding with a full output matrix; model.output="
      f"{cfg.output!r} has none. Set model.tie_weights=False or model.output='full'."
    )
  if cfg.maxent_order == 1:
    raise ConfigError(
      "model.maxent_order=1 adds no feature (the order-1 feature is the output bias); "
      "use 0 (no MaxEnt) or >= 2."
    )
  if cfg.maxent_order and (cfg.kind == "window" or cfg.output != "full"):
    raise ConfigError(
      "model.maxent_order adds hashed n-gram scores to a full softmax of a recurrent "
      f"model; this config has model.kind={cfg.kind!r}, model.output={cfg.output!r}. "
      "Use model.kind elman/lstm/gru with model.output='full', or model.maxent_order=0."
    )
