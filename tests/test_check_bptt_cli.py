"""End-to-end: `python -m experiments.check_bptt` passes on the default config, fails loudly."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _check_bptt(*flags: str) -> subprocess.CompletedProcess:
  cmd = [sys.executable, "-m", "experiments.check_bptt", "--config=configs/check_bptt.py", *flags]
  return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_default_config_exits_zero_and_prints_every_parameter():
  proc = _check_bptt()
  assert proc.returncode == 0, proc.stdout + proc.stderr
  out = proc.stdout
  assert "relative error = max|manual - ref| / max(max|ref|, 1e-300)" in out
  for name in ("embed", "layers/0/W_e", "layers/0/W_h", "layers/0/b_h", "W_o", "b_o", "h0"):
    assert f"\n{name} " in out, name
  assert out.rstrip().splitlines()[-1].startswith("OK: every parameter within tolerance")


@pytest.mark.parametrize(
  "flag,named",
  [
    ("--config.inject_error=W_h", "layers/0/W_h"),  # one wrong gradient term
    ("--config.inject_error=carry", "layers/0/W_h"),  # dropped carried dL/dh(t-1)
  ],
)
def test_a_wrong_gradient_exits_nonzero_naming_the_parameter(flag, named):
  proc = _check_bptt(flag)
  assert proc.returncode == 1, proc.stdout + proc.stderr
  assert f"FAIL {named}: manual vs jax.grad relative error" in proc.stdout
  assert "manual BPTT gradient check failed for" in proc.stderr and named in proc.stderr


def test_bad_config_value_names_the_fix():
  proc = _check_bptt("--config.activation=relu")
  assert proc.returncode != 0
  assert "use one of ('sigmoid', 'tanh')" in proc.stderr
  assert "Traceback" not in proc.stderr
