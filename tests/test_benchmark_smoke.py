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
