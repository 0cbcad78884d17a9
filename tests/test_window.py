"""Fixed-window model: <s>-padded windows, the Bengio formula, causality, normalisation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lm_jax.models import ModelConfig, window

V, BOS = 9, 9  # predictable ids 0..8, <s> = 9
apply = jax.jit(window.apply, static_argnums=3, static_argnames="train")


def cfg_for(**kw):
  base = dict(
    kind="window",
    embed_dim=4,
    hidden_dim=6,
    context=3,
    init_scale=0.5,
    in_vocab=V + 1,
    out_vocab=V,
    bos_id=BOS,
  )
  return ModelConfig(**{**base, **kw})


def test_windows_golden():
  hist = jnp.full((1, 3), BOS, jnp.int32)
  x = jnp.asarray([[BOS, 2, 3, 4, BOS, 5]], jnp.int32)
  ctx, new_hist = window.windows(hist, x, BOS)
  # Oldest first; anything before the most recent <s> in the window is <s>:
  # t=4 reads [3, 4, <s>] -> [<s>, <s>, <s>]; t=5 reads [4, <s>, 5] -> [<s>, <s>, 5].
  assert ctx[0].tolist() == [[9, 9, 9], [9, 9, 2], [9, 2, 3], [2, 3, 4], [9, 9, 9], [9, 9, 5]]
  assert new_hist.tolist() == [[4, 9, 5]]
  # The next segment continues from that history.
  ctx2, _ = window.windows(new_hist, jnp.asarray([[6, 7]], jnp.int32), BOS)
  assert ctx2[0].tolist() == [[9, 5, 6], [5, 6, 7]]


def test_matches_the_formula():
  cfg = cfg_for()
  p = window.init(jax.random.PRNGKey(0), cfg)
  x = np.array([[BOS, 2, 3, 4, BOS, 5]], np.int32)
  logits, _ = apply(p, window.init_carry(cfg, 1), jnp.asarray(x), cfg)
  ctx = [[9, 9, 9], [9, 9, 2], [9, 2, 3], [2, 3, 4], [9, 9, 9], [9, 9, 5]]
  pn = jax.tree.map(lambda a: np.asarray(a, np.float64), p)
  for t, c in enumerate(ctx):
    e = np.concatenate([pn["embed"][i] for i in c])  # e = [e(x_{t-2}); e(x_{t-1}); e(x_t)]
    h = np.tanh(e @ pn["W_h"] + pn["b_h"])
    np.testing.assert_allclose(logits[0, t], h @ pn["W_o"] + pn["b_o"], atol=1e-5)


def test_never_sees_the_future_and_normalises():
  cfg = cfg_for()
  p = window.init(jax.random.PRNGKey(1), cfg)
  rng = np.random.default_rng(0)
  x = rng.integers(0, V, size=(2, 8)).astype(np.int32)
  x[:, 0] = BOS
  logits, _ = apply(p, window.init_carry(cfg, 2), jnp.asarray(x), cfg)
  assert logits.shape == (2, 8, V)
  np.testing.assert_allclose(jax.nn.softmax(logits).sum(-1), 1.0, atol=1e-6)
  for t in range(7):
    y = x.copy()
    y[:, t + 1] = (y[:, t + 1] + 1) % V
    changed, _ = apply(p, window.init_carry(cfg, 2), jnp.asarray(y), cfg)
    np.testing.assert_array_equal(changed[:, : t + 1], logits[:, : t + 1])
    assert not np.allclose(changed[:, t + 1], logits[:, t + 1])


def test_context_is_limited_to_the_window():
  cfg = cfg_for()
  p = window.init(jax.random.PRNGKey(2), cfg)
  x = np.array([[BOS, 1, 2, 3, 4, 5, 6]], np.int32)
  y = x.copy()
  y[0, 1] = 7  # 4 tokens before the last position: outside a 3-token window
  a, _ = apply(p, window.init_carry(cfg, 1), jnp.asarray(x), cfg)
  b, _ = apply(p, window.init_carry(cfg, 1), jnp.asarray(y), cfg)
  np.testing.assert_array_equal(a[0, 4:], b[0, 4:])
  assert not np.allclose(a[0, 3], b[0, 3])


def test_segments_compose_and_tying():
  cfg = cfg_for(hidden_dim=4, tie_weights=True, dropout=0.3)
  p = window.init(jax.random.PRNGKey(3), cfg)
  assert "W_o" not in p and p["W_h"].shape == (12, 4) and p["embed"].shape == (V + 1, 4)
  x = jnp.asarray([[BOS, 1, 2, 3, BOS, 4, 5, 6]], jnp.int32)
  whole, _ = apply(p, window.init_carry(cfg, 1), x, cfg)
  first, carry = apply(p, window.init_carry(cfg, 1), x[:, :3], cfg)
  second, _ = apply(p, carry, x[:, 3:], cfg)
  np.testing.assert_allclose(jnp.concatenate([first, second], 1), whole, atol=1e-6)
  train, _ = apply(p, window.init_carry(cfg, 1), x, cfg, rng=jax.random.PRNGKey(0), train=True)
  assert not np.allclose(train, whole)


def test_window_rejects_several_layers():
  import ml_collections

  from lm_jax.errors import ConfigError
  from lm_jax.spec import parse_model

  block = ml_collections.ConfigDict(dict(kind="window", embed_dim=4, hidden_dim=4, num_layers=2))
  with pytest.raises(ConfigError, match="num_layers=1"):
    parse_model(dict(block))
