"""LSTM with a projection (LSTMP, Sak et al. 2014): shapes, a NumPy reference, training."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from runs import finals_of, run_metrics

from configs import rnn as rnn_configs
from lm_jax import train
from lm_jax.errors import ConfigError
from lm_jax.models import ModelConfig, rnn
from lm_jax.spec import parse_neural

V, BOS = 11, 11
CFG = ModelConfig(
  kind="lstm",
  embed_dim=3,
  hidden_dim=5,
  projection=3,
  num_layers=2,
  init_scale=0.5,
  in_vocab=V + 1,
  out_vocab=V,
  bos_id=BOS,
)


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def reference(params, inputs_BxT):
  """The LSTMP equations one step at a time in NumPy (float64)."""
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
  x = p["embed"][inputs_BxT]
  for layer in p["layers"]:
    b = x.shape[0]
    h, c = np.zeros((b, CFG.projection)), np.zeros((b, CFG.hidden_dim))
    out = []
    for t in range(x.shape[1]):
      i, f, g, o = np.split(x[:, t] @ layer["W_x"] + layer["b"] + h @ layer["W_h"], 4, axis=-1)
      c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
      h = (_sigmoid(o) * np.tanh(c)) @ layer["W_p"]  # The projection is the layer's output.
      out.append(h)
    x = np.stack(out, axis=1)
  return x @ p["W_o"] + p["b_o"]


def test_lstmp_shapes_and_values_match_the_equations():
  params = rnn.init(jax.random.PRNGKey(0), CFG)
  assert params["layers"][0]["W_h"].shape == (3, 20) and params["layers"][0]["W_p"].shape == (5, 3)
  assert params["layers"][1]["W_x"].shape == (3, 20) and params["W_o"].shape == (3, V)
  inputs = jnp.array([[BOS, 1, 2, 3, 4, 5], [BOS, 6, 7, 8, 9, 10]], jnp.int32)
  logits, carry = rnn.apply(params, rnn.init_carry(CFG, 2), inputs, CFG)
  assert carry[0]["h"].shape == (2, 3) and carry[0]["c"].shape == (2, 5)
  np.testing.assert_allclose(logits, reference(params, np.asarray(inputs)), rtol=1e-5, atol=1e-6)


def test_projection_is_an_lstm_option_and_ties_at_its_size():
  config = rnn_configs.get_config("elman_ptb,tiny")
  config.model.projection = 8
  with pytest.raises(ConfigError, match="model.projection is an LSTM projection"):
    parse_neural(config)
  config = rnn_configs.get_config("lstm_small_ptb,tiny")
  config.model.update(projection=8, tie_weights=True)  # embed_dim 16 != projection 8
  with pytest.raises(ConfigError, match="model.embed_dim == model.projection"):
    parse_neural(config)


def test_a_tiny_lstmp_run_trains_and_resumes(tmp_path):
  config = rnn_configs.get_config("lstm_small_ptb,tiny")
  config.model.update(projection=8, embed_dim=8, tie_weights=True)
  full = train.train_and_evaluate(config, str(tmp_path / "full"))
  assert train.train_and_evaluate(config, str(tmp_path / "split"), stop_after=20) == {}
  assert train.train_and_evaluate(config, str(tmp_path / "split")) == full
  losses = [r["loss"] for r in run_metrics(tmp_path / "full") if r["kind"] == "train"]
  assert losses[-1] < losses[0]
  assert finals_of(run_metrics(tmp_path / "full"))["test"]["perplexity"] < 1000
