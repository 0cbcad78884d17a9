"""Style does not drift: ruff's linter and formatter, as configured in pyproject.toml."""

import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO


def _ruff(*args: str) -> subprocess.CompletedProcess:
  exe = shutil.which("ruff")
  cmd = [exe] if exe else [sys.executable, "-m", "ruff"]
  return subprocess.run([*cmd, *args], cwd=REPO, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args", [("check", "."), ("format", "--check", ".")])
def test_ruff(args):
  proc = _ruff(*args)
  assert proc.returncode == 0, f"ruff {' '.join(args)}:\n{proc.stdout[-4000:]}{proc.stderr[-2000:]}"
