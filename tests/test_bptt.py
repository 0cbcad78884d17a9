"""Manual BPTT (lm_jax.models.bptt) against jax.grad, a hand derivation and SGD curves."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import check_bptt as check_config
from lm_jax.errors import ConfigError
from lm_jax.models import bptt, bptt_check


def _problem(seed, V, E, H, B, T, dtype=np.float64):
  """Random params (shared layout), h0, tokens and a 0/1 mask with some padding.

  As in lm_jax.models.rnn the input vocabulary has one row more than the softmax (an
  input-only <s>), so V_in = V + 1 and V_out = V.

  numpy, not jax.random: eager jax.random compiles a kernel per shape, which would
  dominate this file's runtime.
  """
  rng = np.random.default_rng(seed)
  normal = lambda *shape, std=1.0: jnp.asarray(std * rng.standard_normal(shape), dtype)
  params = {
    "embed": normal(V + 1, E),
    "layers": [
      {
        "W_e": normal(E, H, std=E**-0.5),
        "W_h": normal(H, H, std=H**-0.5),
        "b_h": normal(H, std=0.1),
      }
    ],
    "W_o": normal(H, V, std=H**-0.5),
    "b_o": normal(V, std=0.1),
  }
  h0_BxH = jnp.asarray(rng.uniform(-0.5, 0.5, (B, H)), dtype)
  x_BxT = jnp.asarray(rng.integers(0, V + 1, (B, T)), jnp.int32)
  y_BxT = jnp.asarray(rng.integers(0, V, (B, T)), jnp.int32)
  w_np = (rng.uniform(size=(B, T)) < 0.8).astype(dtype)
  w_np[0, 0] = 1  # never all padding
  return params, h0_BxH, x_BxT, y_BxT, jnp.asarray(w_np)


def _rel(a, b):
  """max|a-b| / max(max|b|, 1e-300), the relative error the check reports."""
  a, b = np.asarray(a), np.asarray(b)
  return float(np.max(np.abs(a - b))) / max(float(np.max(np.abs(b))), 1e-300)


def _all_grads(fn, params, h0_BxH, x_BxT, y_BxT, w_BxT, activation, truncation, c_BxH):
  """∂/∂(params, h0, w) of sum_nll + <c, h(T)>, so the h(T) cotangent is exercised too."""

  def loss(params, h0_BxH, w_BxT):
    sum_nll, hT_BxH = fn(params, h0_BxH, x_BxT, y_BxT, w_BxT, activation, truncation)
    return sum_nll + jnp.sum(c_BxH * hT_BxH)

  return jax.grad(loss, argnums=(0, 1, 2))(params, h0_BxH, w_BxT)


# (V, E, H, B, T, activation, truncation): T = 1, B = 1, H from 1 to 64, both activations,
# full BPTT (0), k = 1 (no carried gradient), k dividing T or not, k > T.
SHAPES = [
  (5, 3, 1, 1, 1, "tanh", 0),
  (6, 2, 3, 2, 1, "sigmoid", 1),
  (7, 4, 1, 2, 5, "sigmoid", 2),
  (11, 6, 16, 1, 9, "tanh", 3),
  (13, 8, 64, 3, 4, "sigmoid", 0),
  (9, 5, 32, 4, 12, "tanh", 4),
  (17, 16, 64, 2, 20, "tanh", 0),
  (10, 4, 8, 5, 8, "sigmoid", 11),
]


@pytest.mark.parametrize("V,E,H,B,T,activation,truncation", SHAPES)
def test_manual_matches_jax_grad_float64(V, E, H, B, T, activation, truncation):
  with jax.enable_x64(True):
    prob = _problem(V * T + H, V, E, H, B, T)
    c_BxH = jnp.asarray(np.random.default_rng(1).standard_normal((B, H)))

    @jax.jit  # one compilation per shape keeps the file fast
    def run(prob, c_BxH):
      args = (*prob, activation, truncation)
      return (
        _all_grads(bptt.manual_elman_sum_nll, *args, c_BxH),
        _all_grads(bptt.elman_sum_nll, *args, c_BxH),
        bptt.manual_elman_sum_nll(*args),
        bptt.elman_sum_nll(*args),
        bptt.manual_grads(*args)[1:],  # direct pass: no custom_vjp, zero h(T) cotangent
        _all_grads(bptt.elman_sum_nll, *args, 0 * c_BxH)[:2],
      )

    manual, auto, value_m, value_a, direct_m, direct_a = run(prob, c_BxH)
    for name, m, a in [("", manual, auto), ("direct", direct_m, direct_a)]:
      for (path, m_leaf), a_leaf in zip(
        jax.tree_util.tree_flatten_with_path(m)[0], jax.tree.leaves(a)
      ):
        assert _rel(m_leaf, a_leaf) <= 1e-10, f"{name}{jax.tree_util.keystr(path)}"
    for m, a in zip(value_m, value_a):  # sum_nll and h(T)
      assert _rel(m, a) <= 1e-13


def test_hand_derived_gradients_for_one_step():
  # V = 2, E = H = 1, T = B = 1, tanh, W_h = 0 so h0 plays no part; x = 1, y = 0.
  # e = W_x[1] = 2, z2 = e W_e = 2 * 0.5 = 1, h = tanh(1); z1 = h W_o = (h, -h);
  # ŷ0 = e^h / (e^h + e^-h) = sigmoid(2h), L = -log ŷ0; δ1 = ŷ - y = (ŷ0 - 1, 1 - ŷ0);
  # δ3 = δ1 W_oᵀ = (ŷ0 - 1) - (1 - ŷ0) = 2(ŷ0 - 1); δ2 = δ3 (1 - h²).
  with jax.enable_x64(True):
    params = {
      "embed": jnp.array([[0.0], [2.0]]),
      "layers": [{"W_e": jnp.array([[0.5]]), "W_h": jnp.array([[0.0]]), "b_h": jnp.array([0.0])}],
      "W_o": jnp.array([[1.0, -1.0]]),
      "b_o": jnp.array([0.0, 0.0]),
    }
    h = math.tanh(1.0)
    y0 = 1 / (1 + math.exp(-2 * h))
    d2 = 2 * (y0 - 1) * (1 - h * h)
    sum_nll, g, dh0 = bptt.manual_grads(
      params, jnp.zeros((1, 1)), jnp.array([[1]]), jnp.array([[0]]), jnp.ones((1, 1)), "tanh"
    )
    np.testing.assert_allclose(sum_nll, -math.log(y0), rtol=1e-14)
    np.testing.assert_allclose(g["b_o"], [y0 - 1, 1 - y0], rtol=1e-14)  # δ1
    np.testing.assert_allclose(g["W_o"], [[h * (y0 - 1), h * (1 - y0)]], rtol=1e-14)  # δ1 ⊗ h
    np.testing.assert_allclose(g["layers"][0]["b_h"], [d2], rtol=1e-14)  # δ2
    np.testing.assert_allclose(g["layers"][0]["W_e"], [[2 * d2]], rtol=1e-14)  # δ2 ⊗ e
    np.testing.assert_allclose(g["layers"][0]["W_h"], [[0.0]], atol=0)  # δ2 ⊗ h0, h0 = 0
    np.testing.assert_allclose(g["embed"], [[0.0], [0.5 * d2]], rtol=1e-14)  # δ2 W_eᵀ at row 1
    np.testing.assert_allclose(dh0, [[0.0]], atol=0)  # δ2 W_hᵀ, W_h = 0


@pytest.mark.parametrize("k", [1, 3])
def test_truncation_reaches_back_at_most_to_the_chunk_start(k):
  # Inputs 0..T-1 give step s its own embedding row, so a nonzero row s means that the
  # gradient of L(t) reached step s; BPTT(k) allows exactly k*floor(t/k) <= s <= t.
  V, H, T = 8, 4, 7
  params, h0_BxH, _, y_BxT, _ = _problem(0, V, 3, H, 1, T, np.float32)
  x_BxT = jnp.arange(T)[None]
  grads = jax.jit(lambda w: bptt.manual_grads(params, h0_BxH, x_BxT, y_BxT, w, "tanh", k))
  for t in range(T):
    _, g, dh0_BxH = grads(jnp.zeros((1, T)).at[0, t].set(1))  # the loss is L(t) alone
    reached = np.abs(np.asarray(g["embed"])).sum(1) > 0
    expected = (np.arange(V + 1) >= k * (t // k)) & (np.arange(V + 1) <= t)
    np.testing.assert_array_equal(reached, expected, err_msg=f"L({t}), k={k}")
    assert bool(np.any(dh0_BxH != 0)) == (t < k)


def test_chunks_with_carried_state_compose_to_the_full_sequence():
  # Two chunks whose state is carried (not stopped) differentiate like one sequence:
  # the h(T) cotangent of the second chunk's pass flows into the first chunk's backward.
  with jax.enable_x64(True):
    params, h0_BxH, x_BxT, y_BxT, w_BxT = _problem(3, 9, 4, 6, 2, 10)

    def two_chunks(params, h0_BxH):
      s1, h5 = bptt.manual_elman_sum_nll(params, h0_BxH, x_BxT[:, :5], y_BxT[:, :5], w_BxT[:, :5])
      s2, _ = bptt.manual_elman_sum_nll(params, h5, x_BxT[:, 5:], y_BxT[:, 5:], w_BxT[:, 5:])
      return s1 + s2

    whole = lambda p, h: bptt.elman_sum_nll(p, h, x_BxT, y_BxT, w_BxT)[0]
    got = jax.jit(jax.grad(two_chunks, argnums=(0, 1)))(params, h0_BxH)
    want = jax.jit(jax.grad(whole, argnums=(0, 1)))(params, h0_BxH)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14), got, want)


def test_float32_sgd_with_manual_gradients_follows_autodiff():
  params, h0_BxH, x_BxT, y_BxT, w_BxT = _problem(0, 12, 8, 16, 4, 10, np.float32)

  def curve(fn):
    mean = lambda p: fn(p, h0_BxH, x_BxT, y_BxT, w_BxT, "sigmoid", 0)[0] / jnp.sum(w_BxT)

    def step(p, _):  # plain SGD, lr 0.5
      loss, g = jax.value_and_grad(mean)(p)
      return jax.tree.map(lambda w, dw: w - 0.5 * dw, p, g), loss

    return np.asarray(jax.jit(lambda p: jax.lax.scan(step, p, None, length=100)[1])(params))

  manual, auto = curve(bptt.manual_elman_sum_nll), curve(bptt.elman_sum_nll)
  assert manual[-1] < 0.8 * manual[0]  # it learns, so the curves are not trivially flat
  np.testing.assert_allclose(manual, auto, rtol=1e-4)


def test_check_gradients_passes_and_names_an_injected_error():
  report = bptt_check.check_gradients(check_config.get_config())
  assert report.ok, report.format()
  assert all(r.fd_rel is not None and r.fd_rel <= 1e-6 for r in report.rows)
  cfg = check_config.get_config("truncated")
  cfg.inject_error = "W_h"
  report = bptt_check.check_gradients(cfg)
  assert report.failed_names() == ["layers/0/W_h"]
  assert all(r.fd_rel is None for r in report.rows)  # truncated BPTT is not dL/dθ


def test_invalid_options_name_the_fix():
  params, h0_BxH, x_BxT, y_BxT, w_BxT = _problem(0, 5, 2, 3, 1, 2, np.float32)
  with pytest.raises(ConfigError, match="activation"):
    bptt.manual_elman_sum_nll(params, h0_BxH, x_BxT, y_BxT, w_BxT, "relu")
  with pytest.raises(ConfigError, match="truncation"):
    bptt.manual_elman_sum_nll(params, h0_BxH, x_BxT, y_BxT, w_BxT, "tanh", -1)
  two_layers = dict(params, layers=params["layers"] * 2)
  with pytest.raises(ConfigError, match="num_layers=1"):
    bptt.manual_grads(two_layers, h0_BxH, x_BxT, y_BxT, w_BxT)
  with pytest.raises(ConfigError, match="inject_error"):
    bptt_check.check_gradients(dict(check_config.get_config(), inject_error="W_q"))


def test_integer_masks_and_jit_give_the_float_mask_gradients():
  params, h0_BxH, x_BxT, y_BxT, w_BxT = _problem(5, 7, 3, 4, 2, 6, np.float32)
  grad = jax.jit(jax.grad(lambda p, w: bptt.manual_elman_sum_nll(p, h0_BxH, x_BxT, y_BxT, w)[0]))
  jax.tree.map(
    np.testing.assert_array_equal, grad(params, w_BxT.astype(jnp.int32)), grad(params, w_BxT)
  )
