"""Shared fixtures: where the real corpora are, and tiny corpora written to tmp dirs."""

import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
XLA_CACHE_ENV = "JAX_COMPILATION_CACHE_DIR"


def pytest_configure(config):
  """One persistent XLA compilation cache for the whole session: the pytest workers and the
  runs they start in subprocesses (inheriting the environment) compile the same tiny models
  over and over. A cached executable is the one XLA compiled, so every number is unchanged.
  Set up once, by the controlling process, before any worker starts; removed at the end.
  The size cap turns on jax's file lock, so concurrent writers and readers do not collide.
  A run the tests kill mid-write can leave an entry cut off: jax then warns and compiles."""
  if hasattr(config, "workerinput") or XLA_CACHE_ENV in os.environ:
    return
  if importlib.util.find_spec("filelock") is None:  # jax's lock needs it: no cache then.
    return
  config.lm_jax_xla_cache = tempfile.mkdtemp(prefix="lm_jax_tests_xla_cache_")
  os.environ.update({
    XLA_CACHE_ENV: config.lm_jax_xla_cache,
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
    "JAX_COMPILATION_CACHE_MAX_SIZE": str(4 << 30),
  })  # fmt: skip


def pytest_unconfigure(config):
  if getattr(config, "lm_jax_xla_cache", None):
    shutil.rmtree(config.lm_jax_xla_cache, ignore_errors=True)


def data_dir() -> pathlib.Path | None:
  """LM_JAX_DATA_DIR, else ../shared/data beside the checkout (where CI puts it)."""
  env = os.environ.get("LM_JAX_DATA_DIR")
  cand = pathlib.Path(env) if env else REPO.parent / "shared" / "data"
  return cand if (cand / "ptb" / "ptb.train.txt").is_file() else None


@pytest.fixture(scope="session")
def ptb_dir() -> pathlib.Path:
  d = data_dir()
  if d is None:
    if os.environ.get("CI"):
      pytest.fail(
        "CI must provide PTB: set LM_JAX_DATA_DIR to the folder holding ptb/ (../shared/data)."
      )
    pytest.skip("PTB not found: set LM_JAX_DATA_DIR to a folder holding ptb/ptb.*.txt")
  return d


@pytest.fixture(scope="session")
def kenlm_reference(ptb_dir) -> pathlib.Path:
  ref = REPO.parent / "shared" / "reference" / "kenlm"
  env = os.environ.get("LM_JAX_KENLM_REFERENCE")
  ref = pathlib.Path(env) if env else ref
  if not (ref / "ptb.o5.arpa.gz").is_file():
    if os.environ.get("CI"):
      pytest.fail(f"CI must provide KenLM's reference ARPA files at {ref}.")
    pytest.skip("KenLM reference ARPA files not found (set LM_JAX_KENLM_REFERENCE)")
  return ref


def write_corpus(
  root: pathlib.Path, train: str, valid: str = "a b\n", test: str = "b a\n"
) -> pathlib.Path:
  root.mkdir(parents=True, exist_ok=True)
  for name, text in (("train", train), ("valid", valid), ("test", test)):
    (root / f"{name}.txt").write_text(text, encoding="utf-8")
  return root


def run_python(script: str, timeout: int = 120) -> str:
  """Runs ``script`` in a fresh interpreter (its own imports, forks, memory) from the repo
  root; returns its stdout, failing the test with its stderr if it fails."""
  env = {**os.environ, "PYTHONPATH": str(REPO)}
  proc = subprocess.run(
    [sys.executable, "-c", script],
    cwd=REPO,
    env=env,
    capture_output=True,
    text=True,
    timeout=timeout,
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  return proc.stdout
