"""The training loss (softmax layer + cross-entropy, hand-written backward) against jax.grad."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lm_jax import losses


def reference_sum(h_BxTxH, w, b, targets_BxT):
  """Autodiff-able reference: log_softmax of the logits, as evaluation scores them."""
  return losses.token_nll(h_BxTxH @ w + b, targets_BxT).sum()


@pytest.mark.parametrize("n,h,v,scale", [(6, 4, 9, 1.0), (35, 16, 66, 3.0), (1, 3, 2, 0.1)])
def test_output_sum_nll_matches_autodiff_of_the_softmax_layer(n, h, v, scale):
  ks = jax.random.split(jax.random.PRNGKey(n * v), 4)
  h_BxTxH = scale * jax.random.normal(ks[0], (1, n, h))
  w, b = jax.random.normal(ks[1], (h, v)), jax.random.normal(ks[2], (v,))
  targets = jax.random.randint(ks[3], (1, n), 0, v)
  ours = jax.value_and_grad(losses.output_sum_nll, argnums=(0, 1, 2))(h_BxTxH, w, b, targets)
  ref = jax.value_and_grad(reference_sum, argnums=(0, 1, 2))(h_BxTxH, w, b, targets)
  np.testing.assert_allclose(ours[0], ref[0], rtol=1e-5)
  for name, g, r in zip(("h", "W", "b"), ours[1], ref[1]):
    assert float(jnp.abs(r).max()) > 0, name  # the comparison is not between zeros
    np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-5, err_msg=name)
  # Σ_v (softmax - onehot) = 0 for every position, so ∂b sums to 0.
  np.testing.assert_allclose(ours[1][2].sum(), 0.0, atol=1e-4)


def test_output_sum_nll_two_words_golden():
  # h = [[1], [0]], W = [[2, 0]], b = [0, 0], targets = [0, 1]:
  # position 1: logits (2, 0) -> nll = ln(1 + e^-2); position 2: logits (0, 0) -> ln 2.
  h = jnp.array([[[1.0], [0.0]]])
  total = losses.output_sum_nll(h, jnp.array([[2.0, 0.0]]), jnp.zeros(2), jnp.array([[0, 1]]))
  assert float(total) == pytest.approx(np.log1p(np.exp(-2.0)) + np.log(2.0), rel=1e-6)


def test_output_sum_nll_is_finite_for_extreme_logits():
  h = jnp.array([[[1e4]]])  # logits (1e4, -1e4, 0): target 1 has nll 2e4
  w, b = jnp.array([[1.0, -1.0, 0.0]]), jnp.zeros(3)
  value, grads = jax.value_and_grad(losses.output_sum_nll, argnums=(0, 1, 2))(
    h, w, b, jnp.array([[1]])
  )
  assert float(value) == pytest.approx(2e4, rel=1e-6)  # lse = 1e4, picked = -1e4
  assert all(bool(jnp.isfinite(g).all()) for g in grads)
  np.testing.assert_allclose(grads[2], [1.0, -1.0, 0.0], atol=1e-6)  # ∂b = softmax - onehot
