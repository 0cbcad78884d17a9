"""End to end: ``python -m experiments.train`` / ``experiments.sample`` on ``,tiny`` configs."""

import json
import pathlib
import subprocess
import sys

import pytest
from runs import finals_of, run_metrics

from configs import lm1b as lm1b_configs
from configs import rnn as rnn_configs
from configs import window as window_configs
from lm_jax.spec import parse_neural

REPO = pathlib.Path(__file__).resolve().parents[1]


def run(module, *args, check=True):
  proc = subprocess.run(
    [sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True, timeout=300
  )
  if check and proc.returncode != 0:
    raise AssertionError(f"{module} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
  return proc


def test_train_then_sample_writes_a_self_describing_workdir(tmp_path):
  run(
    "experiments.train",
    "--config=configs/window.py:ptb,tiny",
    f"--workdir={tmp_path}",
    "--config.train.num_steps=8",
  )
  for name in ("config.json", "vocab.json", "run.json", "metrics.jsonl"):
    assert (tmp_path / name).is_file(), name
  assert json.loads((tmp_path / "config.json").read_text())["model"]["kind"] == "window"
  assert json.loads((tmp_path / "config.json").read_text())["train"]["num_steps"] == 8
  assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit()) == ["8"]
  records = run_metrics(tmp_path)
  assert [r["step"] for r in records if "loss" in r] == [8]
  final = finals_of(records)
  assert set(final) == {"valid", "test"} and all(r["final"] for r in final.values())
  assert final["test"]["tokens"] > 0 and final["test"]["perplexity"] > 1
  out = (
    run(
      "experiments.sample",
      f"--workdir={tmp_path}",
      "--num_samples=3",
      "--temperature=0.8",
      "--seed=0",
      "--top_k=20",
      "--max_len=10",
    )
    .stdout.strip()
    .splitlines()
  )
  assert len(out) == 3
  for line in out:
    logprob, text = line.split("\t")
    assert float(logprob) < 0 and "<unk>" not in text


def test_char_preset_tiny_runs_at_character_level(tmp_path):
  run(
    "experiments.train",
    "--config=configs/rnn.py:char_shakespeare,tiny",
    f"--workdir={tmp_path}",
    "--config.train.num_steps=4",
    "--config.train.log_every_steps=2",
  )
  vocab = json.loads((tmp_path / "vocab.json").read_text())
  assert vocab["level"] == "char" and " " in vocab["tokens"]
  assert finals_of(run_metrics(tmp_path))["test"]["perplexity"] > 1


def test_unknown_keys_and_invalid_values_fail_before_training(tmp_path):
  proc = run(
    "experiments.train",
    "--config=configs/rnn.py:elman_ptb,tiny",
    f"--workdir={tmp_path}",
    "--config.model.hiden_dim=3",
    check=False,
  )
  assert proc.returncode != 0 and "hiden_dim" in proc.stderr
  proc = run(
    "experiments.train",
    "--config=configs/rnn.py:elman_ptb,tiny",
    f"--workdir={tmp_path}",
    "--config.model.tie_weights=True",
    "--config.model.embed_dim=8",
    check=False,
  )
  assert proc.returncode == 1 and "Traceback" not in proc.stderr
  assert "error: model.tie_weights needs model.embed_dim == model.hidden_dim" in proc.stderr
  assert not (tmp_path / "checkpoints").exists()


ALL_PRESETS = (
  [(rnn_configs, p) for p in rnn_configs.PRESETS]
  + [(lm1b_configs, p) for p in lm1b_configs.PRESETS]
  + [(window_configs, "ptb")]
)


@pytest.mark.parametrize("module,preset", ALL_PRESETS)
def test_every_preset_and_its_tiny_variant_validate(module, preset):
  full, tiny = module.get_config(preset), module.get_config(preset + ",tiny")
  parse_neural(full)
  spec = parse_neural(tiny)
  assert tiny.data.name == "pydoc" and spec.train.num_steps <= 50
  assert tiny.data.level == full.data.level
  with pytest.raises(ValueError, match="PRESET"):
    module.get_config(preset + ",huge")


def test_lstm_small_is_zarembas_small_config():
  c = rnn_configs.get_config("lstm_small_ptb")
  assert (c.model.kind, c.model.num_layers, c.model.hidden_dim, c.model.embed_dim) == (
    "lstm",
    2,
    200,
    200,
  )
  assert (c.train.seq_len, c.train.batch_size, c.train.num_epochs) == (35, 20, 13)
  assert (c.optim.name, c.optim.learning_rate, c.optim.schedule) == ("sgd", 1.0, "epoch_decay")
  assert (c.optim.decay_rate, c.optim.decay_after_epochs, c.optim.clip_norm) == (0.5, 4, 5.0)
  assert (c.model.init_scale, c.model.dropout, c.train.loss_normalizer) == (0.1, 0.0, "sequences")
  assert c.data.name == "ptb"
