"""Manual BPTT gradient check: hand-derived gradients vs jax.grad and finite differences.

  python -m experiments.check_bptt --config=configs/check_bptt.py
  python -m experiments.check_bptt --config=configs/check_bptt.py:sigmoid
  python -m experiments.check_bptt --config=configs/check_bptt.py:truncated
  python -m experiments.check_bptt --config=configs/check_bptt.py --config.hidden_size=64

Takes about 5 s on one CPU core. Expected: relative errors ~1e-16 against jax.grad and
~1e-10 against centred finite differences, a final "OK" line and exit status 0. With
--config.inject_error=W_h (or any parameter name, or "carry" to drop the carried
gradient) it prints "FAIL ..." naming that parameter and exits with status 1.
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """arg: "" or "tanh" (rolled-out layer slide), "sigmoid" (BPTT slides), "truncated" (k=3)."""
  cfg = ml_collections.ConfigDict()
  cfg.vocab_size = 13
  cfg.embed_size = 5
  cfg.hidden_size = 8
  cfg.batch_size = 3
  cfg.seq_len = 7
  cfg.activation = "sigmoid" if arg == "sigmoid" else "tanh"
  cfg.truncation = (
    3 if arg == "truncated" else 0
  )  # 0 = full BPTT; k cuts the gradient every k steps
  cfg.seed = 0
  cfg.grad_rtol = 1e-10  # manual vs jax.grad, both float64
  cfg.fd_rtol = 1e-6  # manual vs centred finite differences
  cfg.fd_eps = 1e-5
  cfg.fd_coords = 6  # coordinates per parameter: its largest gradient + random ones
  cfg.inject_error = ""  # "" | parameter name (e.g. "W_h", "h0") | "carry": tests the check
  if arg not in (None, "", "tanh", "sigmoid", "truncated"):
    raise ValueError(f"configs/check_bptt.py:{arg}: use '', 'tanh', 'sigmoid' or 'truncated'.")
  return cfg
