"""The run directory: kinds, the lock, atomic files, tolerant readers, TensorBoard scalars."""

import json
import os
import re
import socket
import subprocess
import sys

import pytest
from runs import run_metrics

from configs import rnn as rnn_configs
from lm_jax import train
from lm_jax.errors import WorkdirError
from lm_jax.rundir import RunDir
from tests.conftest import REPO


def test_create_records_the_kind_and_refuses_another(tmp_path):
  with RunDir.create(str(tmp_path / "a"), "ngram") as rd:
    assert json.loads((tmp_path / "a" / "run.json").read_text()) == {"kind": "ngram"}
    assert (tmp_path / "a" / ".lock").exists()
    rd.write_text("samples.txt", "x\n")
  assert not (tmp_path / "a" / ".lock").exists()
  with pytest.raises(WorkdirError, match="holds an n-gram run .* a neural run there"):
    RunDir.create(str(tmp_path / "a"), "neural")
  with RunDir.create(str(tmp_path / "a"), "ngram"):  # The same kind resumes.
    pass
  assert RunDir.open(str(tmp_path / "a")).kind == "ngram"
  with pytest.raises(WorkdirError, match="needs a neural run"):
    RunDir.open(str(tmp_path / "a"), "neural")


@pytest.mark.parametrize("workdir", ["", "   ", None])
def test_an_empty_workdir_is_refused(workdir):
  with pytest.raises(WorkdirError, match="--workdir is empty"):
    RunDir.create(workdir, "ngram")


def test_the_lock_names_a_live_holder_and_replaces_a_dead_one(tmp_path):
  first = RunDir.create(str(tmp_path), "neural")
  with pytest.raises(
    WorkdirError, match=rf"in use by pid {os.getpid()} on {re.escape(socket.gethostname())}"
  ):
    RunDir.create(str(tmp_path), "neural")
  first.close()
  dead = subprocess.Popen([sys.executable, "-c", "pass"])
  dead.wait()
  (tmp_path / ".lock").write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid}))
  with RunDir.create(str(tmp_path), "neural"):
    assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()
  (tmp_path / ".lock").write_text(json.dumps({"host": "elsewhere", "pid": dead.pid}))
  with pytest.raises(WorkdirError, match="on elsewhere"):  # Another host: cannot tell, refuse.
    RunDir.create(str(tmp_path), "neural")


def test_only_named_outputs_are_removed(tmp_path):
  with RunDir.create(str(tmp_path), "ngram") as rd:
    with pytest.raises(ValueError):
      rd.remove_outputs("../elsewhere.txt")
    rd.write_text("model.arpa", "x")
    rd.remove_outputs("model.arpa", "samples.txt")
  assert sorted(os.listdir(tmp_path)) == ["run.json"]


def test_readers_give_one_line_errors(tmp_path):
  with RunDir.create(str(tmp_path), "neural") as rd:
    rd.write_text("config.json", '{"model": {"kind": "ls')
  rd = RunDir.open(str(tmp_path))
  with pytest.raises(WorkdirError, match="config.json is truncated or corrupt") as err:
    rd.read_config()
  assert "\n" not in str(err.value)
  with pytest.raises(WorkdirError, match="rerun that model with --config.eval.dump_tokens=True"):
    rd.read_token_dump("valid")
  with pytest.raises(WorkdirError, match="not an lm_jax run directory"):
    RunDir.open(str(tmp_path.parent))


def test_tensorboard_shows_the_training_loss_and_validation_perplexity(tmp_path):
  from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

  config = rnn_configs.get_config("elman_ptb,tiny")
  config.train.update(num_steps=12, log_every_steps=4, eval_every_steps=6)
  train.train_and_evaluate(config, str(tmp_path))
  events = EventAccumulator(str(tmp_path))
  events.Reload()
  loss = events.Scalars("train/loss")
  valid = events.Scalars("valid/perplexity")
  records = run_metrics(tmp_path)
  assert (
    [e.step for e in loss] == [r["step"] for r in records if r["kind"] == "train"] == [4, 8, 12]
  )
  assert [e.value for e in loss] == pytest.approx(
    [r["loss"] for r in records if r["kind"] == "train"]
  )
  assert [e.step for e in valid] == [6, 12, 12]  # two points in training, then the final one
  assert [e.step for e in events.Scalars("test/perplexity")] == [12]


def test_readme_lecture_table_is_the_committed_result():
  """README's embedded-corpus table must be copied from experiments/results/lecture_pydoc.md."""
  results = (REPO / "experiments" / "results" / "lecture_pydoc.md").read_text()
  rows = dict(re.findall(r"^\| (\w+) \| [^|]+ \| ([\d.]+ \| [\d.]+) \|", results, re.M))
  readme = (REPO / "README.md").read_text()
  table = readme.split("| model | valid ppl | test ppl |", 1)[1].split("\n\n", 1)[0]
  names = {
    "bigram Laplace": "laplace_2",
    "trigram Katz": "katz_3",
    "5-gram interpolated Kneser-Ney": "kneser_ney_5",
    "5-gram interpolated modified Kneser-Ney": "modified_kneser_ney_5",
    "fixed-window network": "window",
    "Elman RNN": "elman",
    "LSTM": "lstm",
  }
  checked = 0
  for line in table.splitlines():
    cells = [c.strip() for c in line.strip("|").split("|")]
    name = next((v for k, v in names.items() if cells[0].startswith(k)), None)
    if name:
      assert f"{cells[1]} | {cells[2]}" == rows[name], (cells, rows[name])
      checked += 1
  assert checked == len(names)
  mix = re.search(r"valid ppl ([\d.]+), test ppl ([\d.]+)\.", results)
  assert f"| {mix[1]} | {mix[2]} |" in table
