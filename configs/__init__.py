"""Experiment configs: one ``get_config(arg)`` file per model family.

``arg`` is ``PRESET`` or ``PRESET,tiny``; ``tiny`` shrinks any preset to a
seconds-long run on the embedded ``pydoc`` corpus (no download, CI-sized).
Every key a run reads is declared in ``base_config()``, so ``lock_config``
rejects a misspelt ``--config.x=y`` override.
"""

from __future__ import annotations

import ml_collections
from ml_collections import config_dict

from lm_jax.data.pipeline import data_config


def base_config() -> ml_collections.ConfigDict:
  """All keys with neutral defaults (Zaremba et al. 2014's small LSTM on PTB)."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.data = data_config("ptb")
  c.model = ml_collections.ConfigDict(dict(
      kind="lstm", embed_dim=200, hidden_dim=200, num_layers=2, context=4, activation="tanh",
      dropout=0.0, tie_weights=False, init_scale=0.1, unroll=1, reset_at_eos=False,
      remat=False, grad="autodiff"))
  c.train = ml_collections.ConfigDict(dict(
      batch_size=20, seq_len=35, num_epochs=13, num_steps=config_dict.placeholder(int),
      carry_state=True, loss_normalizer="sequences", log_every_steps=100,
      checkpoint_every_steps=1000, keep_checkpoints=2, eval_every_epochs=1,
      eval_every_steps=config_dict.placeholder(int)))
  c.optim = ml_collections.ConfigDict(dict(
      name="sgd", learning_rate=1.0, momentum=0.0, b1=0.9, b2=0.999, eps=1e-8,
      weight_decay=0.0, clip_norm=5.0, schedule="constant", decay_rate=0.5,
      decay_after_epochs=4,
      plateau=dict(enabled=False, factor=0.5, patience=1, rtol=1e-3, cooldown=0, min_scale=0.0)))
  # dump_tokens: per-token log-probabilities as {valid,test}.tokens.tsv (for interpolation).
  c.eval = ml_collections.ConfigDict(dict(batch_size=10, dump_tokens=False))
  return c


def parse_arg(arg: str | None, presets) -> tuple[str, bool]:
  """``"PRESET[,tiny]"`` -> (preset, tiny); an unknown preset names the known ones."""
  parts = [p for p in (arg or "").split(",") if p]
  extra = [p for p in parts[1:] if p != "tiny"]
  if not parts or parts[0] not in presets or extra:
    raise ValueError(f"config argument {arg!r}: use PRESET or PRESET,tiny with PRESET in "
                     f"{sorted(presets)}.")
  return parts[0], "tiny" in parts[1:]


def make_tiny(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Shrinks a preset to seconds: embedded corpus, 16 units, 30 steps; the same code paths."""
  level = c.data.level
  c.data = data_config("pydoc", level)
  c.model.embed_dim = c.model.hidden_dim = 16
  c.model.num_layers = min(c.model.num_layers, 2)
  c.model.context = min(c.model.context, 3)
  c.train.batch_size, c.train.seq_len = 4, 8
  c.train.num_steps = 30
  c.train.log_every_steps, c.train.checkpoint_every_steps = 10, 20
  c.eval.batch_size = 16
  return c
