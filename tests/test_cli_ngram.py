"""End-to-end runs of ``python -m experiments.ngram`` as a user types them."""

import json
import os
import subprocess
import sys

import pytest
from runs import finals_of, run_metrics

from tests.conftest import REPO, run_python, write_corpus


def run_cli(*args, env=None):
  return subprocess.run(
    [sys.executable, "-m", "experiments.ngram", *args],
    cwd=REPO,
    capture_output=True,
    text=True,
    env={**os.environ, **(env or {})},
    timeout=600,
  )


def test_embedded_default_writes_the_workdir(tmp_path):
  wd = tmp_path / "run"
  r = run_cli(
    "--config=configs/ngram.py",
    f"--workdir={wd}",
    "--config.write_arpa=True",
    "--config.dump_tokens=True",
  )
  assert r.returncode == 0, r.stderr
  for f in (
    "config.json",
    "vocab.json",
    "run.json",
    "metrics.jsonl",
    "model.arpa",
    "samples.txt",
    "test.tokens.tsv",
  ):
    assert (wd / f).is_file(), f
  finals = finals_of(run_metrics(wd))
  assert set(finals) == {"valid", "test"}
  for rec in finals.values():
    assert {"split", "perplexity", "tokens", "nll", "oovs"} <= set(rec)
    assert rec["perplexity"] == pytest.approx(2.718281828 ** (rec["nll"] / rec["tokens"]))
  assert "ppl1=" in r.stdout and "perplexity" in r.stdout
  info = json.loads((wd / "run.json").read_text())
  assert info["corpus"]["checksums"] and info["vocab_hash"] and info["environment"]["devices"]
  rows = (wd / "test.tokens.tsv").read_text().splitlines()
  assert len(rows) == finals["test"]["tokens"] + 1


def test_generic_directory_and_overrides(tmp_path):
  root = write_corpus(tmp_path / "c", "a b c\nb c a\nc a b\na c b\n" * 20)
  wd = tmp_path / "run"
  r = run_cli(
    "--config=configs/ngram.py",
    f"--workdir={wd}",
    "--config.data.name=",
    f"--config.data.dir={root}",
    "--config.order=2",
    "--config.smoothing=laplace",
  )
  assert r.returncode == 0, r.stderr
  cfg = json.loads((wd / "config.json").read_text())
  assert cfg["order"] == 2 and cfg["smoothing"] == "laplace"


def test_bad_input_fails_with_a_clear_message(tmp_path):
  r = run_cli("--config=configs/ngram.py", f"--workdir={tmp_path / 'a'}", "--config.ordr=3")
  assert r.returncode != 0 and "ordr" in r.stderr
  r = run_cli("--config=configs/ngram.py", f"--workdir={tmp_path / 'b'}", "--config.order=0")
  assert r.returncode != 0 and "order=0 is outside 1..20" in r.stderr
  r = run_cli(
    "--config=configs/ngram.py",
    f"--workdir={tmp_path / 'c'}",
    "--config.data.name=ptb",
    f"--config.data.dir={tmp_path}",
    "--config.data.download=False",
    env={"XDG_CACHE_HOME": str(tmp_path / "cache")},
  )
  assert r.returncode != 0 and "ptb.train.txt not found" in r.stderr
  r = run_cli(
    "--config=configs/ngram.py", f"--workdir={tmp_path / 'd'}", "--config.smoothing=stupid_backoff"
  )
  assert r.returncode == 0 and "not probabilities" in r.stdout


@pytest.mark.slow
def test_ptb_command(ptb_dir, tmp_path):
  wd = tmp_path / "kn5"
  r = run_cli(
    "--config=configs/ngram.py:ptb", f"--workdir={wd}", env={"LM_JAX_DATA_DIR": str(ptb_dir)}
  )
  assert r.returncode == 0, r.stderr
  finals = finals_of(run_metrics(wd))
  assert finals["test"]["perplexity"] == pytest.approx(141.19, abs=0.05)
  assert finals["test"]["tokens"] == 82_430 and finals["test"]["oovs"] == 0


def test_an_ngram_run_never_starts_jax(tmp_path):
  # Counting, smoothing, ARPA writing, scoring and sampling are numpy: starting jax (about
  # 1.5 s of imports, plus compiles) would be paid by every n-gram command for nothing.
  script = (
    "import sys; from configs import ngram; from lm_jax.ngram import run; "
    "c = ngram.get_config('default'); c.write_arpa = True; "
    f"run.run(c, {str(tmp_path / 'kn')!r}, verbose=False); "
    "print(sorted(m for m in sys.modules if m == 'jax' or m.startswith('jax.')))"
  )
  assert run_python(script).strip().splitlines()[-1] == "[]"
  assert (tmp_path / "kn" / "model.arpa").stat().st_size > 0
  run_json = json.loads((tmp_path / "kn" / "run.json").read_text())
  assert run_json["environment"]["backend"] == "numpy"
