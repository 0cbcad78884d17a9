"""Experiment configs: one ``get_config(arg)`` file per model family.

``arg`` is ``PRESET`` or ``PRESET,tiny``; ``tiny`` shrinks any preset to a
seconds-long run on the embedded ``pydoc`` corpus (no download, CI-sized).
Every key a run reads is declared in ``base_config()``, so ``lock_config``
rejects a misspelt ``--config.x=y`` override.
"""

from __future__ import annotations

import ml_collections

from lm_jax import spec


def base_config() -> ml_collections.ConfigDict:
  """Every key a training run reads, with lm_jax's defaults (``lm_jax.spec``: Zaremba et al.
  2014's small LSTM on PTB)."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.data = spec.as_config(spec.DataSpec(name="ptb"))
  c.model = spec.as_config(spec.ModelSettings())
  c.train = spec.as_config(spec.TrainConfig())
  optim = spec.as_config(spec.OptimConfig())
  for key in [k for k in optim.keys() if k.startswith("plateau")]:
    del optim[key]
  optim.plateau = spec.as_config(spec.PlateauSpec())
  c.optim = optim
  c.eval = spec.as_config(spec.EvalConfig())
  c.mesh = spec.as_config(spec.MeshSpec())
  return c


def parse_arg(arg: str | None, presets) -> tuple[str, bool]:
  """``"PRESET[,tiny]"`` -> (preset, tiny); an unknown preset names the known ones."""
  parts = [p for p in (arg or "").split(",") if p]
  extra = [p for p in parts[1:] if p != "tiny"]
  if not parts or parts[0] not in presets or extra:
    raise ValueError(
      f"config argument {arg!r}: use PRESET or PRESET,tiny with PRESET in {sorted(presets)}."
    )
  return parts[0], "tiny" in parts[1:]


def make_tiny(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Shrinks a preset to seconds: embedded corpus, 16 units, 30 steps; the same code paths."""
  c.data = spec.as_config(spec.DataSpec(name="pydoc", level=c.data.level))
  c.model.embed_dim = c.model.hidden_dim = 16
  c.model.num_layers = min(c.model.num_layers, 2)
  if c.model.get("projection"):
    c.model.projection = 8
  c.model.context = min(c.model.context, 3)
  if c.model.get("output") == "adaptive":  # Cutoffs inside the embedded corpus's ~2,300 ids.
    c.model.adaptive_cutoffs = "200,1000"
  c.model.num_sampled = min(c.model.get("num_sampled", 64), 64)
  c.model.num_classes = min(c.model.get("num_classes", 20), 20)
  if c.optim.get("maxent_learning_rate"):  # the same rate per token over fewer tokens a step
    per_seq = c.train.loss_normalizer == "sequences"  # a sum over time, a mean over the batch
    c.optim.maxent_learning_rate *= 4 / c.train.batch_size * (1 if per_seq else 8 / c.train.seq_len)
  c.train.batch_size, c.train.seq_len = 4, 8
  c.train.num_steps = 30
  c.train.log_every_steps, c.train.checkpoint_every_steps = 10, 20
  c.eval.batch_size = 16
  return c
