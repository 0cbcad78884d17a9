"""Smoke tests: the n-gram benchmark runs end to end on a small corpus with KenLM absent (no timings checked)."""

from experiments import benchmark
from experiments.benchmarks import ngram


def test_ngram_benchmark_runs_without_lmplz(monkeypatch):
  monkeypatch.setenv(
    "LMPLZ", "/nonexistent/lmplz"
  )  # An explicit LMPLZ that is missing: no fallback search.
  assert ngram.find_tool("lmplz") is None and ngram.find_tool("query") is None
  md = ngram.run(None, quick=True, corpus="pydoc")  # The embedded corpus: no download, no data dir.
  assert md.startswith("## N-gram models")
  for heading in (
    "### Estimation",
    "### Test-set scoring",
    "### NLTK",
    "### Peak memory",
    "### Goals",
    "### Machine",
  ):
    assert heading in md
  assert "lmplz: not available" in md and "n/a (peer not available)" in md


def test_sections_are_kept_between_markers(tmp_path):
  path = tmp_path / "BENCHMARKS.md"
  path.write_text(
    "# header\n\n<!-- suite:ngram -->\n## old ngram\n\nnumbers\n<!-- /suite:ngram -->\n\n"
    "<!-- suite:bptt -->\n## bptt\n<!-- /suite:bptt -->\n"
  )
  assert benchmark.read_sections(str(path)) == {
    "ngram": "## old ngram\n\nnumbers",
    "bptt": "## bptt",
  }
  assert benchmark.read_sections(str(tmp_path / "absent.md")) == {}


def test_plan_memory_measures_the_planned_step():
  from experiments.benchmarks import plan_memory

  job = (dict(kind="lstm", embed_dim=16, hidden_dim=16, num_layers=1), {}, dict(batch_size=4), 50)
  planned, measured = plan_memory.measure(*job, steps=2)
  # The plan counts at least the state (parameters of a 50-word 16-unit LSTM) and the stream.
  params = 51 * 16 + 4 * 16 * 32 + 4 * 16 + 16 * 50 + 50
  assert planned >= 4 * params + 2 * 4 * 4 * 35 * 100
  assert measured >= 0  # resident growth; its size is the benchmark's figure, not checked here


def test_ngram_ooc_measures_a_command_and_renders_rows(tmp_path):
  import sys

  from experiments.benchmarks import ngram_ooc

  (tmp_path / "f").write_bytes(b"x" * 4096)
  # A command that holds 64 MiB for a moment: its sampled peak memory must see it.
  r = ngram_ooc.sampled(
    [
      sys.executable,
      "-c",
      "import time; b = bytearray(64 << 20); b[::4096] = b'1' * (16384); time.sleep(1)",
    ],
    str(tmp_path),
  )
  assert r["pss"] > 64 * 2**20 and r["disk"] == 4096 and r["seconds"] > 0
  stage = {"stage": "read", "seconds": 1.0, "peak_rss": 2**30, "disk": 2**20}
  row = {
    "tokens": 10_000_000,
    "ngrams": [5, 6],
    "lm_jax": {"seconds": 4.0, "pss": 2**30, "disk": 2**20},
    "lmplz": {"seconds": 2.0, "pss": 2**29},
    "lm_jax_ppl": 100.0,
    "lmplz_ppl": 100.01,
    "stages": [stage],
  }
  md = ngram_ooc.markdown([row], "lmplz")
  assert "| 10M | 5, 6 | 4.0 | 2.0 | 2.00x | 1024 | 512 | 1 | 100.0000 | 100.0100 | 1.0e-04 |" in md
  assert "| read | 1.0 s, 1024 MiB, 1 MiB |" in md and "| start-up, text pass | 3.0 s |" in md
