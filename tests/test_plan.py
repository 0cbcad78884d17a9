"""The plan command: compiled memory and FLOPs of the real train step, refusal when it cannot fit."""

import dataclasses
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO


def plan(*args: str) -> subprocess.CompletedProcess:
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(REPO)}
  env.pop("XLA_FLAGS", None)
  return subprocess.run(
    [sys.executable, "-m", "experiments.plan", *args],
    cwd=REPO,
    env=env,
    capture_output=True,
    text=True,
    timeout=300,
    check=False,
  )


def test_plan_of_a_tiny_config_on_two_devices():
  proc = plan("--config=configs/rnn.py:lstm_small_ptb,tiny", "--devices=2")
  assert proc.returncode == 0, proc.stderr[-2000:]
  out = proc.stdout
  assert "devices: 2" in out and "ok: the job fits" in out
  # 2x16 LSTM over the embedded corpus: the parameter count printed is the model's own.
  from configs import rnn
  from lm_jax.data.pipeline import load_data

  _, vocab, _ = load_data(rnn.get_config("lstm_small_ptb,tiny").data)
  v, h = vocab.num_predictable, 16
  # embed (V+1) x H, two LSTM layers 4H x (H + H) + 4H biases, softmax H x V + V.
  expected = (v + 1) * h + 2 * (4 * h * 2 * h + 4 * h) + h * v + v
  assert f"parameters: {expected:,} " in out


def test_a_job_that_cannot_fit_is_refused_naming_what_to_shard():
  proc = plan(
    "--config=configs/rnn.py:lstm_small_ptb",
    "--config.model.embed_dim=1024",
    "--config.model.hidden_dim=1024",
    "--vocab_size=2000000",
    "--accelerator=tpu-v5e",
  )
  assert proc.returncode == 1 and "Traceback" not in proc.stderr
  assert "DOES NOT FIT" in proc.stdout
  assert "error: the job needs about" in proc.stderr and "['embed']" in proc.stderr
  assert "a larger mesh.model, now 1," in proc.stderr and "lower train.batch_size" in proc.stderr


def test_the_peak_counts_the_initialiser_and_a_refusal_names_it():
  """The initialiser is compiled as training jits it: its memory holds at least the state
  it returns, and the plan's peak is the largest of it, the step's and the evaluation's."""
  from configs import rnn
  from lm_jax import plan as plan_lib
  from lm_jax.errors import ConfigError
  from lm_jax.spec import parse_neural

  spec = parse_neural(rnn.get_config("lstm_small_ptb,tiny"))
  p = plan_lib.plan(spec, plan_lib.zipf_vocab(5_000), 10_000, 0)
  assert p.init_bytes >= p.parameter_bytes > 0  # it returns the parameters (and the rest)
  assert p.peak_bytes == max(p.step_bytes, p.init_bytes, p.eval_bytes) >= p.step_bytes
  # A device that holds the step but not the initialiser: the refusal says which.
  big = dataclasses.replace(p, init_bytes=p.step_bytes + 2**40)
  memory = plan_lib.ACCELERATORS["tpu-v5e"][1]
  assert big.step_bytes < memory < big.peak_bytes
  with pytest.raises(ConfigError, match="initialising the state peaks at .* above the step"):
    plan_lib.check_fits(big, ["tpu-v5e"])
  plan_lib.check_fits(p, ["tpu-v5e"])  # the real plan fits: no error


def test_the_peak_counts_the_evaluation_whose_full_softmax_a_sampled_step_never_makes():
  """Sampled softmax at V = 100,000: the step scores 65 columns per row, but evaluation
  scores all V for each of its rows, so its scores alone (rows x T x V x 4 bytes) are a
  floor under its memory, and here that is what the plan's peak is."""
  from configs import rnn
  from lm_jax import plan as plan_lib
  from lm_jax.errors import ConfigError
  from lm_jax.spec import parse_neural

  c = rnn.get_config("lstm_small_ptb_sampled,tiny")
  c.model.num_sampled = 64
  c.eval.batch_size = 32
  spec = parse_neural(c)
  v = 100_000
  p = plan_lib.plan(spec, plan_lib.zipf_vocab(v), 10_000, 0)
  scores = 32 * spec.train.seq_len * v * 4
  assert p.eval_rows == 32 and p.eval_bytes >= scores > p.step_bytes
  assert p.peak_bytes == p.eval_bytes
  with pytest.raises(ConfigError, match="evaluation needs .* lower eval.batch_size"):
    plan_lib.check_fits(dataclasses.replace(p, eval_bytes=2**40), ["tpu-v5e"])
