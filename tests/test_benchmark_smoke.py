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
