"""Multi-host for real: two processes x 4 CPU devices, joined over loopback, equal one process x 8.

Each process runs the README's command with ``LM_JAX_DISTRIBUTED=1`` and the
``JAX_COORDINATOR_ADDRESS`` / ``JAX_NUM_PROCESSES`` / ``JAX_PROCESS_ID`` variables;
collectives cross processes over gloo.  Process 0 writes the run directory, both
write their checkpoint shards.  A kill of both after a checkpoint and a restart
of both (on a data x model mesh) ends with the records of an uninterrupted run.
"""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from runs import finals_of, run_metrics

from tests.conftest import REPO

TIMING = ("steps_per_sec", "tokens_per_sec", "elapsed_s", "eta_s", "compile_s")
ARGS = [
  "--config=configs/rnn.py:lstm_small_ptb,tiny",
  "--config.model.dropout=0.2",  # Dropout keys must not depend on how the batch is split.
  "--config.train.batch_size=8",
  "--config.train.num_steps=60",
  "--config.train.checkpoint_every_steps=20",
  "--config.train.log_every_steps=10",
  "--config.eval.batch_size=8",
]


def _env(devices: int, **extra) -> dict:
  env = {
    **os.environ,
    "JAX_PLATFORMS": "cpu",
    "PYTHONPATH": str(REPO),
    "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
    **extra,
  }
  for key in (
    "LM_JAX_DISTRIBUTED",
    "JAX_COORDINATOR_ADDRESS",
    "JAX_NUM_PROCESSES",
    "JAX_PROCESS_ID",
  ):
    if key not in extra:
      env.pop(key, None)
  return env


def _start_pair(workdir, *extra: str) -> list[subprocess.Popen]:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  return [
    subprocess.Popen(
      [sys.executable, "-m", "experiments.train", f"--workdir={workdir}", *ARGS, *extra],
      cwd=REPO,
      env=_env(
        4,
        LM_JAX_DISTRIBUTED="1",
        JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
        JAX_NUM_PROCESSES="2",
        JAX_PROCESS_ID=str(i),
      ),
      stdout=subprocess.DEVNULL,
      stderr=subprocess.PIPE,
      text=True,
    )
    for i in range(2)
  ]


def _finish(procs) -> None:
  for p in procs:
    _, err = p.communicate(timeout=400)
    assert p.returncode == 0, err[-3000:]


def _records(workdir) -> list[dict]:
  return [{k: v for k, v in r.items() if k not in TIMING} for r in run_metrics(workdir)]


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("one_x8")
  proc = subprocess.run(
    [sys.executable, "-m", "experiments.train", f"--workdir={workdir}", *ARGS],
    cwd=REPO,
    env=_env(8),
    capture_output=True,
    text=True,
    timeout=400,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  return _records(workdir)


def _assert_same_run(got: list[dict], want: list[dict]) -> None:
  assert [(r["kind"], r.get("step"), r.get("split")) for r in got] == [
    (r["kind"], r.get("step"), r.get("split")) for r in want
  ]
  for a, b in zip(got, want):
    for key in ("loss", "nll"):
      if key in b:  # float32 sums across processes may add in another order
        assert a[key] == pytest.approx(b[key], rel=1e-5), (a, b)
    if "tokens" in b:
      assert a["tokens"] == b["tokens"]


def test_two_processes_equal_one_process_with_eight_devices_kill_and_resume(tmp_path, one_process):
  workdir = tmp_path / "two_x4"
  procs = _start_pair(workdir)
  deadline = time.monotonic() + 300
  while not (workdir / "checksums.json").exists():  # The first checkpoint is complete.
    assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
    time.sleep(0.05)
  for p in procs:
    p.send_signal(signal.SIGKILL)
    p.wait()
  assert not finals_of(run_metrics(workdir))
  # Both restart and resume from the checkpoint, now with the vocabulary matrices split over
  # a model axis of 2 that spans the two processes' devices (4 x 2 mesh).
  _finish(_start_pair(workdir, "--config.mesh.model=2"))
  got = _records(workdir)
  _assert_same_run(got, one_process)
  assert finals_of(got)["test"]["tokens"] == finals_of(one_process)["test"]["tokens"]
  shards = sorted(n for n in os.listdir(workdir / "checkpoints" / "60" / "state") if "process" in n)
  assert shards == ["ocdbt.process_0", "ocdbt.process_1"]  # Each process wrote its own.
