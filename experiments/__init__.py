"""Thin absl launchers; each calls one lm_jax library function."""
