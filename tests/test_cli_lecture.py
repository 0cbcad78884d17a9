"""The main job end to end, shrunk: every model family, table, plot, samples, interpolation."""

import subprocess
import sys

from tests.conftest import REPO


def test_lecture_main_job_writes_table_plot_and_samples(tmp_path):
  wd = tmp_path / "lecture"
  epochs = [
    f"--config.neural.{m}.overrides.train.num_epochs=1" for m in ("window", "elman", "lstm")
  ]
  r = subprocess.run(
    [
      sys.executable,
      "-m",
      "experiments.lecture",
      f"--workdir={wd}",
      "--config.ngram.orders=(1, 5)",
      "--config.ngram.smoothings=('laplace', 'modified_kneser_ney')",
      "--config.num_samples=1",
      *epochs,
    ],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=900,
  )
  assert r.returncode == 0, r.stderr[-3000:]
  report = (wd / "results.md").read_text()
  for name in ("laplace_1", "modified_kneser_ney_5", "window", "elman", "lstm"):
    assert f"| {name} |" in report, name
  assert "Linear interpolation (modified_kneser_ney_5" in report
  assert report.count("\n- ") >= 5  # One sample per model with samples.
  assert (wd / "curves.png").stat().st_size > 10_000
  assert (wd / "neural" / "lstm" / "test.tokens.tsv").is_file()
  assert "[neural 3/3]" in r.stdout  # Progress is shown while it runs.
