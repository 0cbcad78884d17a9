"""Recurrent models: scan == a Python-loop reference, causality, normalisation, carry, reset."""

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from lm_jax.errors import ConfigError
from lm_jax.models import ModelConfig, get_model, rnn
from lm_jax.spec import parse_model

V = 11  # predictable ids 0..10; <s> = 11; the embedding has 12 rows
BOS = V


# Jitted once per config: eager scans would recompile their body on every call.
apply = jax.jit(rnn.apply, static_argnums=3, static_argnames="train")


def cfg_for(kind, **kw):
  base = dict(
    kind=kind,
    embed_dim=6,
    hidden_dim=5,
    num_layers=2,
    init_scale=0.5,
    in_vocab=V + 1,
    out_vocab=V,
    bos_id=BOS,
  )
  return ModelConfig(**{**base, **kw})


def inputs_with_sentences(rng, b=3, t=9):
  x = rng.integers(2, V, size=(b, t)).astype(np.int32)
  x[:, 0] = BOS
  x[0, 4] = BOS  # a sentence starts mid-segment in row 0
  x[2, 6] = BOS
  return x


def reference_logits(params, inputs_BxT, cfg):
  """Python loop over time and layers, written from the formulas, in float64."""
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
  sig = lambda z: 1.0 / (1.0 + np.exp(-z))
  act = np.tanh if cfg.activation == "tanh" else sig
  b, t = inputs_BxT.shape
  h = [np.zeros((b, cfg.hidden_dim)) for _ in p["layers"]]
  c = [np.zeros((b, cfg.hidden_dim)) for _ in p["layers"]]
  w_o = p["embed"][: cfg.out_vocab].T if cfg.tie_weights else p["W_o"]
  out = []
  for step in range(t):
    x = p["embed"][inputs_BxT[:, step]]
    reset = (inputs_BxT[:, step] == cfg.bos_id)[:, None] & cfg.reset_at_eos
    for l, layer in enumerate(p["layers"]):
      hp, cp = np.where(reset, 0.0, h[l]), np.where(reset, 0.0, c[l])
      if cfg.kind == "elman":  # z2 = h_prev W_h + e W_e + b_h ; h = f(z2)
        h[l] = act(hp @ layer["W_h"] + x @ layer["W_e"] + layer["b_h"])
      elif cfg.kind == "lstm":
        z = x @ layer["W_x"] + hp @ layer["W_h"] + layer["b"]
        i, f, g, o = np.split(z, 4, axis=1)
        c[l] = sig(f) * cp + sig(i) * np.tanh(g)
        h[l] = sig(o) * np.tanh(c[l])
      else:
        zx, zh = x @ layer["W_x"] + layer["b_x"], hp @ layer["W_h"] + layer["b_h"]
        r = sig(zx[:, : cfg.hidden_dim] + zh[:, : cfg.hidden_dim])
        u = sig(
          zx[:, cfg.hidden_dim : 2 * cfg.hidden_dim] + zh[:, cfg.hidden_dim : 2 * cfg.hidden_dim]
        )
        n = np.tanh(zx[:, 2 * cfg.hidden_dim :] + r * zh[:, 2 * cfg.hidden_dim :])
        h[l] = (1 - u) * n + u * hp
      x = h[l]
    out.append(x @ w_o + p["b_o"])
  return np.stack(out, axis=1)


CASES = [
  ("elman", {}),
  ("elman", {"activation": "sigmoid", "num_layers": 1}),
  ("elman", {"reset_at_eos": True}),
  ("lstm", {}),
  ("lstm", {"reset_at_eos": True, "unroll": 3}),
  ("gru", {}),
  ("gru", {"num_layers": 1, "reset_at_eos": True}),
  ("elman", {"tie_weights": True, "hidden_dim": 6}),
  ("lstm", {"remat": True, "unroll": 4}),
]


@pytest.mark.parametrize("kind,kw", CASES)
def test_scan_matches_python_loop(kind, kw):
  cfg = cfg_for(kind, **kw)
  params = rnn.init(jax.random.PRNGKey(0), cfg)
  x = inputs_with_sentences(np.random.default_rng(0))
  got, _ = apply(params, rnn.init_carry(cfg, 3), jnp.asarray(x), cfg)
  np.testing.assert_allclose(
    np.asarray(got), reference_logits(params, x, cfg), atol=2e-5, rtol=1e-5
  )


@pytest.mark.parametrize("kind", ["elman", "lstm", "gru"])
def test_never_sees_the_future_and_normalises(kind):
  cfg = cfg_for(kind)
  params = rnn.init(jax.random.PRNGKey(1), cfg)
  x = inputs_with_sentences(np.random.default_rng(1))
  logits, _ = apply(params, rnn.init_carry(cfg, 3), jnp.asarray(x), cfg)
  assert logits.shape == (3, 9, V)  # the softmax never offers <s>
  np.testing.assert_allclose(jax.nn.softmax(logits).sum(-1), 1.0, atol=1e-6)
  for t in range(8):
    y = x.copy()
    y[:, t + 1] = (y[:, t + 1] + 1) % V  # change the token after position t
    changed, _ = apply(params, rnn.init_carry(cfg, 3), jnp.asarray(y), cfg)
    np.testing.assert_array_equal(changed[:, : t + 1], logits[:, : t + 1])
    assert not np.allclose(changed[:, t + 1], logits[:, t + 1])


@pytest.mark.parametrize("kind", ["elman", "lstm", "gru"])
def test_segments_compose_through_the_carry(kind):
  cfg = cfg_for(kind)
  params = rnn.init(jax.random.PRNGKey(2), cfg)
  x = jnp.asarray(inputs_with_sentences(np.random.default_rng(2)))
  whole, carry_whole = apply(params, rnn.init_carry(cfg, 3), x, cfg)
  first, carry = apply(params, rnn.init_carry(cfg, 3), x[:, :4], cfg)
  second, carry = apply(params, carry, x[:, 4:], cfg)
  np.testing.assert_allclose(jnp.concatenate([first, second], 1), whole, atol=1e-6)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6), carry, carry_whole)


def test_reset_at_eos_makes_sentences_independent():
  cfg = cfg_for("lstm", reset_at_eos=True)
  params = rnn.init(jax.random.PRNGKey(3), cfg)
  x = inputs_with_sentences(np.random.default_rng(3))
  logits, _ = apply(params, rnn.init_carry(cfg, 3), jnp.asarray(x), cfg)
  fresh, _ = apply(params, rnn.init_carry(cfg, 1), jnp.asarray(x[:1, 4:]), cfg)
  np.testing.assert_allclose(logits[:1, 4:], fresh, atol=1e-6)  # row 0's sentence from t=4
  carried = dataclasses.replace(cfg, reset_at_eos=False)
  logits_c, _ = apply(params, rnn.init_carry(cfg, 3), jnp.asarray(x), carried)
  assert not np.allclose(logits_c[:1, 4:], fresh, atol=1e-4)


def test_elman_param_layout_is_the_shared_contract():
  cfg = cfg_for("elman", embed_dim=6, hidden_dim=5, num_layers=2)
  params = rnn.init(jax.random.PRNGKey(0), cfg)
  shapes = jax.tree.map(lambda a: a.shape, params)
  assert shapes == {
    "embed": (V + 1, 6),
    "W_o": (5, V),
    "b_o": (V,),
    "layers": [
      {"W_e": (6, 5), "W_h": (5, 5), "b_h": (5,)},
      {"W_e": (5, 5), "W_h": (5, 5), "b_h": (5,)},
    ],
  }
  tied = rnn.init(jax.random.PRNGKey(0), cfg_for("elman", hidden_dim=6, tie_weights=True))
  assert "W_o" not in tied


@pytest.mark.parametrize("kind", ["elman", "lstm", "gru"])
def test_init_is_uniform_within_scale_with_zero_biases(kind):
  cfg = cfg_for(kind, embed_dim=32, hidden_dim=32, init_scale=0.1)
  params = rnn.init(jax.random.PRNGKey(0), cfg)
  for path, a in jax.tree_util.tree_flatten_with_path(params)[0]:
    name = path[-1].key
    if name.startswith("b"):
      assert not np.any(a), name
    else:
      assert np.abs(a).max() <= 0.1 and np.abs(a).max() > 0.09, name


def test_dropout_only_in_training_and_reproducible():
  cfg = cfg_for("lstm", dropout=0.5)
  params = rnn.init(jax.random.PRNGKey(0), cfg)
  x = jnp.asarray(inputs_with_sentences(np.random.default_rng(0)))
  carry = rnn.init_carry(cfg, 3)
  ev, _ = apply(params, carry, x, cfg)
  ev_nodrop, _ = apply(params, carry, x, dataclasses.replace(cfg, dropout=0.0))
  np.testing.assert_array_equal(ev, ev_nodrop)  # inverted dropout: nothing to rescale at eval
  k = jax.random.PRNGKey(7)
  tr1, _ = apply(params, carry, x, cfg, rng=k, train=True)
  tr2, _ = apply(params, carry, x, cfg, rng=k, train=True)
  np.testing.assert_array_equal(tr1, tr2)
  assert not np.allclose(tr1, ev)


def model_block(**kw):
  base = dict(
    kind="elman",
    embed_dim=8,
    hidden_dim=8,
    num_layers=1,
    context=4,
    activation="tanh",
    dropout=0.0,
    tie_weights=False,
    init_scale=0.1,
    unroll=1,
    reset_at_eos=False,
    remat=False,
    grad="autodiff",
  )
  return ml_collections.ConfigDict({**base, **kw})


@pytest.mark.parametrize(
  "kw,message",
  [
    ({"tie_weights": True, "hidden_dim": 16}, "embed_dim == model.hidden_dim"),
    ({"grad": "manual", "kind": "lstm"}, "model.kind='lstm'"),
    ({"grad": "manual", "dropout": 0.5, "num_layers": 2}, "model.num_layers=2"),
    ({"kind": "transformer"}, "model.kind"),
    ({"activation": "relu"}, "model.activation"),
    ({"dropout": 1.0}, "model.dropout"),
  ],
)
def test_config_validation_names_the_problem(kw, message):
  with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
    parse_model(dict(model_block(**kw)))


def test_valid_config_freezes_and_hashes():
  cfg = parse_model(dict(model_block(grad="manual")))
  assert hash(cfg) == hash(parse_model(dict(model_block(grad="manual"))))
  assert get_model(cfg).apply is rnn.apply
