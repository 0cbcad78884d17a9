"""The training cross-entropy (hand-written backward pass) against log_softmax and jax.grad."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lm_jax import losses


def reference_sum(logits_BxTxV, targets_BxT):
  return losses.token_nll(logits_BxTxV, targets_BxT).sum()


@pytest.mark.parametrize("shape,scale", [((2, 3, 7), 1.0), ((4, 5, 66), 10.0), ((1, 1, 2), 0.1)])
def test_sum_nll_value_and_gradient_match_autodiff_of_log_softmax(shape, scale):
  k1, k2 = jax.random.split(jax.random.PRNGKey(sum(shape)))
  logits = scale * jax.random.normal(k1, shape, jnp.float32)
  targets = jax.random.randint(k2, shape[:2], 0, shape[2])
  value, grad = jax.value_and_grad(lambda x: losses.sum_nll(x, targets)[0])(logits)
  ref_value, ref_grad = jax.value_and_grad(reference_sum)(logits, targets)
  np.testing.assert_allclose(value, ref_value, rtol=1e-6)
  np.testing.assert_allclose(grad, ref_grad, rtol=1e-5, atol=1e-6)
  # Each row's gradient is softmax - onehot: it sums to 0 over the vocabulary.
  np.testing.assert_allclose(grad.sum(-1), 0.0, atol=1e-5)


def test_sum_nll_weights_mask_and_count():
  logits = jnp.array([[[0.0, 0.0], [5.0, -5.0]]])  # nll: ln 2, then softplus(-10) ~ 4.54e-5
  targets = jnp.array([[1, 0]])
  total, count = losses.sum_nll(logits, targets, jnp.array([[1.0, 0.0]]))
  assert float(count) == 1.0
  assert float(total) == pytest.approx(np.log(2.0), rel=1e-6)
  g = jax.grad(lambda x: losses.sum_nll(x, targets, jnp.array([[1.0, 0.0]]))[0])(logits)
  np.testing.assert_allclose(g[0, 1], 0.0)  # a masked position sends no gradient
  np.testing.assert_allclose(g[0, 0], [0.5, -0.5], rtol=1e-6)


def test_sum_nll_is_finite_for_extreme_logits():
  logits = jnp.array([[[1e4, -1e4, 0.0]]])
  value, grad = jax.value_and_grad(lambda x: losses.sum_nll(x, jnp.array([[1]]))[0])(logits)
  assert float(value) == pytest.approx(2e4, rel=1e-6)  # lse = 1e4, picked = -1e4
  assert bool(jnp.isfinite(grad).all())
  np.testing.assert_allclose(grad[0, 0], [1.0, -1.0, 0.0], atol=1e-6)


@pytest.mark.parametrize("n,h,v", [(6, 4, 9), (35, 16, 66), (1, 3, 2)])
def test_output_sum_nll_matches_autodiff_of_the_softmax_layer(n, h, v):
  ks = jax.random.split(jax.random.PRNGKey(n * v), 4)
  h_BxTxH = jax.random.normal(ks[0], (1, n, h))
  w, b = jax.random.normal(ks[1], (h, v)), jax.random.normal(ks[2], (v,))
  targets = jax.random.randint(ks[3], (1, n), 0, v)
  ours = jax.value_and_grad(losses.output_sum_nll, argnums=(0, 1, 2))(h_BxTxH, w, b, targets)
  ref = jax.value_and_grad(lambda x, w, b: reference_sum(x @ w + b, targets),
                           argnums=(0, 1, 2))(h_BxTxH, w, b)
  np.testing.assert_allclose(ours[0], ref[0], rtol=1e-5)
  for name, g, r in zip(("h", "W", "b"), ours[1], ref[1]):
    np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-5, err_msg=name)
