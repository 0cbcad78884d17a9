"""``configs/lm1b.py``: the One Billion Word presets plan at full size and train as ``,tiny``."""

from __future__ import annotations

import functools
import math

import jax
import pytest
from runs import finals_of, run_metrics

from configs import lm1b
from lm_jax import plan, train
from lm_jax.models import ModelConfig
from lm_jax.spec import parse_neural
from lm_jax.train.step import init_state


def parameters_at_full_size(preset: str) -> int:
  """The preset's parameter count at V = 793,471, from shapes only (nothing allocated)."""
  spec = parse_neural(lm1b.get_config(preset))
  cfg = ModelConfig.build(spec.model, plan.zipf_vocab(lm1b.VOCAB))
  state = jax.eval_shape(
    functools.partial(init_state, spec.seed, cfg, spec.optim, spec.train.batch_size)
  )
  return sum(math.prod(x.shape) for x in jax.tree.leaves(state.params))


@pytest.mark.parametrize(
  "preset,published",
  # Jozefowicz et al. 2016, Table 1: LSTM-2048-512 0.83B, 2-layer LSTM-8192-1024 1.8B
  # parameters (the counts are printed to two significant digits: 2% tolerance).
  [("lstm_2048_512_lm1b", 0.83e9), ("lstm_8192_1024_lm1b", 1.8e9)],
)
def test_jozefowicz_presets_have_the_published_parameter_counts(preset, published):
  assert parameters_at_full_size(preset) == pytest.approx(published, rel=0.02)


# adaptive_large_lm1b is adaptive_small_lm1b with two layers: validated, not trained again.
@pytest.mark.parametrize("preset", sorted(set(lm1b.PRESETS) - {"adaptive_large_lm1b"}))
def test_tiny_variant_trains(preset, tmp_path):
  train.train_and_evaluate(lm1b.get_config(f"{preset},tiny"), str(tmp_path))
  losses = [r["loss"] for r in run_metrics(tmp_path) if r["kind"] == "train"]
  assert losses[-1] < losses[0]
  test = finals_of(run_metrics(tmp_path))["test"]["perplexity"]
  assert math.isfinite(test) and test > 1
