"""Data parallelism: 8 simulated CPU devices train to the 1-device numbers; clear errors otherwise."""

import json
import os
import subprocess
import sys

import pytest

from lm_jax import parallel
from lm_jax.errors import ConfigError
from tests.conftest import REPO

# Runs in a fresh process: the device count is fixed when jax is imported.
SCRIPT = r"""
import json, logging, sys
import jax
from configs import rnn
from lm_jax import train
from lm_jax.errors import ConfigError
from lm_jax.rundir import RunDir

compiles = []  # One message per XLA compilation of the train step.
class Count(logging.Handler):
  def emit(self, record):
    if "Finished XLA compilation of jit(train_step)" in record.getMessage():
      compiles.append(record.getMessage())
logging.getLogger("jax").addHandler(Count())
jax.config.update("jax_log_compiles", True)

def config(mesh_model=1):
  c = rnn.get_config("lstm_small_ptb,tiny")
  c.model.dropout = 0.2  # Dropout keys must not depend on how the batch is split.
  c.train.update(batch_size=8, num_steps=6, log_every_steps=3, checkpoint_every_steps=4)
  c.eval.batch_size = 8
  c.mesh.model = mesh_model
  return c

def curve(workdir, res):
  return {"final": {k: [v.nll, v.tokens] for k, v in res.items()},
          "losses": [r["loss"] for r in RunDir.open(workdir).read_metrics() if r["kind"] == "train"]}

c, workdir, moved = config(), sys.argv[1], sys.argv[2]
out = {"devices": jax.device_count(), **curve(workdir, train.train_and_evaluate(c, workdir))}
out["compiles"] = len(compiles)
if jax.device_count() == 1:  # Stopped after its step-4 checkpoint; the 8-device process resumes it.
  train.train_and_evaluate(c, moved, stop_after=4)
else:  # Vocabulary matrices split over 4 devices, batch over 2; then the run above resumed
  # with them split over 2 and the batch over 4. (A run split over all 8 took 36 s here,
  # 20 of them in evaluation's per-step collectives, against 10 s split over 4.)
  out["model4"] = curve(workdir + "_m4", train.train_and_evaluate(config(4), workdir + "_m4"))
  out["resumed"] = curve(moved, train.train_and_evaluate(config(2), moved))
  from lm_jax import plan
  from lm_jax.spec import parse_neural
  big = config()  # SGD on a 16-unit LSTM: the vocabulary matrices are nearly all the state.
  big.model.num_layers = 1
  out["argument_bytes"] = {}
  for m in (1, 8):
    big.mesh.model = m
    p = plan.plan(parse_neural(big), plan.zipf_vocab(1 << 16), 8 * 35 * 2, 0)
    out["argument_bytes"][m] = [p.argument_bytes, p.parameter_bytes, p.parameter_bytes_per_device]
c.eval.batch_size = 1  # Cannot be split: evaluated replicated, same numbers.
out["eval_b1"] = train.train_and_evaluate(c, workdir + "_b1")["test"].nll  # A new run: eval batch is part of it.
c.train.batch_size = 12
try:
  train.train_and_evaluate(c, workdir + "_12")
except ConfigError as e:
  out["error"] = str(e)
print(json.dumps(out))
"""


def run_on(devices: int, tmp_path) -> dict:
  env = {
    **os.environ,
    "JAX_PLATFORMS": "cpu",
    "PYTHONPATH": str(REPO),
    "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
  }
  env.pop(parallel.DISTRIBUTED_ENV, None)
  proc = subprocess.run(
    [sys.executable, "-c", SCRIPT, str(tmp_path / f"d{devices}"), str(tmp_path / "moved")],
    cwd=REPO,
    env=env,
    capture_output=True,
    text=True,
    timeout=240,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  return json.loads(proc.stdout.strip().splitlines()[-1])


def test_eight_devices_match_one_device(tmp_path):
  one, eight = run_on(1, tmp_path), run_on(8, tmp_path)
  assert (one["devices"], eight["devices"]) == (1, 8)
  for split in ("valid", "test"):
    assert eight["final"][split][1] == one["final"][split][1]  # the same tokens scored
    # Only the order of float32 sums across devices differs.
    assert eight["final"][split][0] == pytest.approx(one["final"][split][0], rel=1e-5)
  assert eight["losses"] == pytest.approx(one["losses"], rel=1e-5)
  assert eight["eval_b1"] == pytest.approx(one["eval_b1"], rel=1e-5)
  assert one["compiles"] == eight["compiles"] == 1  # outputs keep the input shardings
  assert "error" not in one  # 12 rows split over 1 device
  assert "train.batch_size=12" in eight["error"] and "8 devices" in eight["error"]
  # mesh.model: the same curve with the vocabulary split, and a 1-device checkpoint resumed
  # on 8 devices (each restored onto its shardings) ends where the uninterrupted run does.
  for run in (eight["model4"], eight["resumed"]):
    assert run["losses"] == pytest.approx(one["losses"], rel=1e-5)
    for split in ("valid", "test"):
      assert run["final"][split][1] == one["final"][split][1]
      assert run["final"][split][0] == pytest.approx(one["final"][split][0], rel=1e-5)
  # Per-device memory from the compiled step: the parameters (and so the arguments, which
  # they dominate) drop by the model axis's 8 devices.
  (args1, params1, dev1), (args8, params8, dev8) = (eight["argument_bytes"][k] for k in "18")
  assert params1 == params8 == dev1 > 0.95 * args1  # one model, whole on each device of 8 x 1
  assert dev8 == pytest.approx(params1 / 8, rel=0.01)
  assert args8 == pytest.approx(args1 / 8, rel=0.05)


UNEVEN = r"""
import functools, json
import jax, numpy as np
from configs import rnn
from lm_jax import parallel, plan
from lm_jax.data.tokens import TokenArray
from lm_jax.models import ModelConfig
from lm_jax.spec import parse_neural
from lm_jax.train import step as S
from lm_jax.train.evaluate import compile_segment, token_logprobs

spec = parse_neural(rnn.get_config("lstm_small_ptb_sampled,tiny"))
v, b, t = 10_001, 8, spec.train.seq_len  # V odd: no model axis divides it
cfg = ModelConfig.build(spec.model, plan.zipf_vocab(v))
rng = np.random.default_rng(0)
ids = rng.integers(0, v, b * t * 3).astype(np.int32)
ends = np.arange(20, len(ids) + 1, 20)
tokens = TokenArray(ids=ids[: ends[-1]], starts=np.r_[0, ends], oov=np.zeros(ends[-1], bool))
out = {}
for model in (1, 8):
  mesh = parallel.make_mesh(model)
  init = functools.partial(S.init_state, 0, cfg, spec.optim, b)
  abstract = jax.eval_shape(init)
  shardings = S.state_shardings(abstract, mesh, b, cfg)
  params = jax.jit(init, out_shardings=shardings)().params
  placed = S.placed(abstract, shardings).params
  memory = compile_segment(placed, cfg, b, t, mesh).memory_analysis()
  out[model] = {
    "logp": token_logprobs(params, tokens, cfg, b, t, mesh).tolist(),
    "temp": memory.temp_size_in_bytes,
    "output_spec": list(shardings.params["W_o"].spec),
  }
out["scores_bytes"] = b * t * v * 4
print(json.dumps(out))
"""


def test_evaluation_splits_the_scores_over_the_model_axis_when_v_does_not_divide(tmp_path):
  """8 simulated devices, V = 10,001: the output matrix can only be split on its hidden
  dimension, so a device would hold partial sums of every row's scores. Evaluation moves
  the matrix onto its vocabulary dimension first: with ``mesh.model=8`` no device holds a
  whole [rows, T, V] block of scores (4 bytes each), and the log-probabilities are the
  data-parallel ones."""
  env = {
    **os.environ,
    "JAX_PLATFORMS": "cpu",
    "PYTHONPATH": str(REPO),
    "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
  }
  env.pop(parallel.DISTRIBUTED_ENV, None)
  proc = subprocess.run(
    [sys.executable, "-c", UNEVEN], cwd=REPO, env=env, capture_output=True, text=True, timeout=240
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  assert out["8"]["output_spec"] == ["model"]  # [D, V] split on D, not on V
  assert out["8"]["temp"] < out["scores_bytes"]
  assert out["8"]["logp"] == pytest.approx(out["1"]["logp"], rel=1e-5)


def test_batch_must_divide_over_the_mesh():
  mesh = parallel.make_mesh()
  parallel.check_divisible(mesh.shape[parallel.DATA_AXIS] * 3, mesh, "train.batch_size")
  if mesh.shape[parallel.DATA_AXIS] > 1:
    with pytest.raises(ConfigError, match="not divisible"):
      parallel.check_divisible(mesh.shape[parallel.DATA_AXIS] + 1, mesh, "train.batch_size")


def test_distributed_env(monkeypatch):
  monkeypatch.delenv(parallel.DISTRIBUTED_ENV, raising=False)
  assert parallel.initialize_distributed() is False
  monkeypatch.setenv(parallel.DISTRIBUTED_ENV, "0")
  assert parallel.initialize_distributed() is False
  monkeypatch.setenv(parallel.DISTRIBUTED_ENV, "maybe")
  with pytest.raises(ConfigError, match="LM_JAX_DISTRIBUTED"):
    parallel.initialize_distributed()
