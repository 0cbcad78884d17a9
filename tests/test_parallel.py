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

c = rnn.get_config("lstm_small_ptb,tiny")
c.model.dropout = 0.2  # Dropout keys must not depend on how the batch is split.
c.train.update(batch_size=8, num_steps=6, log_every_steps=3, checkpoint_every_steps=4)
c.eval.batch_size = 8
workdir = sys.argv[1]
res = train.train_and_evaluate(c, workdir)
out = {"devices": jax.device_count(),
       "final": {k: [v.nll, v.tokens] for k, v in res.items()},
       "losses": [r["loss"] for r in RunDir.open(workdir).read_metrics() if r["kind"] == "train"],
       "compiles": len(compiles)}
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
    [sys.executable, "-c", SCRIPT, str(tmp_path / f"d{devices}")],
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
