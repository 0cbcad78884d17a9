"""The LSTM scan's hand-written backward pass against jax.grad of a plain lax.scan."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lm_jax import losses
from lm_jax.models import ModelConfig, rnn
from lm_jax.models.lstm_scan import lstm_scan


def plain_scan(W_h, xw_TxBxG, h0, c0, reset_TxB, unroll=1):
  """The same recurrence, differentiated by JAX."""

  def body(carry, xs):
    h, c = carry
    xw, reset = xs
    if reset is not None:
      h, c = jnp.where(reset[:, None], 0.0, h), jnp.where(reset[:, None], 0.0, c)
    i, f, g, o = jnp.split(xw + h @ W_h, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return (h, c), h

  (h, c), hs = jax.lax.scan(body, (h0, c0), (xw_TxBxG, reset_TxB), unroll=unroll)
  return hs, h, c


@pytest.mark.parametrize("with_reset,unroll", [(False, 1), (True, 1), (True, 3)])
def test_values_and_all_gradients_match_autodiff(with_reset, unroll):
  T, B, H = 7, 3, 5
  ks = jax.random.split(jax.random.PRNGKey(T + unroll), 6)
  W_h = 0.5 * jax.random.normal(ks[0], (H, 4 * H))
  xw = jax.random.normal(ks[1], (T, B, 4 * H))
  h0, c0 = 0.5 * jax.random.normal(ks[2], (B, H)), jax.random.normal(ks[3], (B, H))
  reset = jax.random.bernoulli(ks[4], 0.3, (T, B)) if with_reset else None
  if with_reset:
    reset = reset.at[0, 0].set(True).at[0, 1].set(False)  # the initial state matters in row 1
  proj = jax.random.normal(ks[5], (H,))

  def loss(fn, W_h, xw, h0, c0):
    hs, h, c = fn(W_h, xw, h0, c0, reset, unroll)
    # Every output receives a different cotangent: all of h(t), h_T and c_T.
    return (
      jnp.sum(jnp.sin(hs @ proj) * jnp.arange(1, T + 1)[:, None]) + jnp.sum(h * h) - jnp.sum(c**3)
    )

  args = (W_h, xw, h0, c0)
  ours = jax.value_and_grad(lambda *a: loss(lstm_scan, *a), argnums=(0, 1, 2, 3))(*args)
  ref = jax.value_and_grad(lambda *a: loss(plain_scan, *a), argnums=(0, 1, 2, 3))(*args)
  np.testing.assert_allclose(ours[0], ref[0], rtol=1e-6)
  for name, g, r in zip(("W_h", "xw", "h0", "c0"), ours[1], ref[1]):
    assert float(jnp.abs(r).max()) > 0, name  # the comparison is not between zeros
    np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-5 * float(jnp.abs(r).max()), err_msg=name)
  if with_reset:
    assert float(jnp.abs(ours[1][2][0]).max()) == 0.0  # row 0 reset at t=0: h0 cannot matter


def test_model_gradient_equals_the_plain_scan_model():
  """A 2-layer LSTM LM with reset_at_eos: hand-written BPTT vs remat (plain scan) gradients."""
  cfg = ModelConfig(
    kind="lstm",
    embed_dim=6,
    hidden_dim=5,
    num_layers=2,
    init_scale=0.5,
    reset_at_eos=True,
    in_vocab=12,
    out_vocab=11,
    bos_id=11,
  )
  params = rnn.init(jax.random.PRNGKey(0), cfg)
  x = np.random.default_rng(0).integers(0, 11, size=(3, 9)).astype(np.int32)
  x[:, 0], x[1, 4] = 11, 11
  y = np.roll(x, -1, axis=1) % 11

  def loss(p, c):
    logits, _ = rnn.apply(p, rnn.init_carry(c, 3), jnp.asarray(x), c)
    return losses.token_nll(logits, jnp.asarray(y)).sum()

  ours = jax.grad(loss)(params, cfg)
  ref = jax.grad(loss)(params, ModelConfig(**{**cfg.__dict__, "remat": True}))
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), ours, ref)
