"""lm_jax: classic language modeling in JAX, from counted n-grams to RNNs trained with BPTT."""

__version__ = "0.1.0"
