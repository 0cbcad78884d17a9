"""Faults: SIGKILL/SIGTERM mid-run resume to the uninterrupted numbers; torn saves and bad workdirs."""

import os
import random
import signal
import subprocess
import sys
import time

import pytest
from runs import finals_of, run_metrics

from lm_jax import checkpoint, train
from lm_jax.errors import WorkdirError
from lm_jax.rundir import RunDir
from tests.conftest import REPO

# Two epochs (1132 steps each) so plateau state and epoch-end evaluations are resumed too;
# a checkpoint every 25 steps makes a kill land during a save about as often as between them.
STEPS, EVERY = 2400, 25


def command(workdir) -> list[str]:
  return [
    sys.executable,
    "-m",
    "experiments.train",
    "--config=configs/rnn.py:elman_ptb,tiny",
    f"--workdir={workdir}",
    f"--config.train.num_steps={STEPS}",
    f"--config.train.checkpoint_every_steps={EVERY}",
    "--config.train.log_every_steps=100",
  ]


def start(workdir) -> subprocess.Popen:
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(REPO)}
  return subprocess.Popen(
    command(workdir),
    cwd=REPO,
    env=env,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.PIPE,
    text=True,
  )


def finish(proc: subprocess.Popen) -> str:
  _, err = proc.communicate(timeout=300)
  assert proc.returncode == 0, err[-3000:]
  return err


def steps_on_disk(workdir) -> list[int]:
  """Finalized checkpoint steps (orbax renames STEP.orbax-checkpoint-tmp-* to STEP when done)."""
  d = workdir / "checkpoints"
  return sorted(int(n) for n in os.listdir(d) if n.isdigit()) if d.is_dir() else []


def wait_for_checkpoint(proc, workdir, after: int = -1) -> None:
  deadline = time.monotonic() + 240
  while not [s for s in steps_on_disk(workdir) if s > after]:
    assert proc.poll() is None, f"the run exited ({proc.returncode}) before checkpointing"
    assert time.monotonic() < deadline, "no checkpoint within 240 s"
    time.sleep(0.02)


def records(workdir) -> list[dict]:
  return [{k: v for k, v in r.items() if k not in train.TIMING_KEYS} for r in run_metrics(workdir)]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("full")
  finish(start(workdir))
  return records(workdir)


def test_sigkill_then_sigterm_resume_to_the_uninterrupted_numbers(tmp_path, uninterrupted):
  seed = random.randrange(10**6)
  rng = random.Random(seed)
  proc = start(tmp_path)
  wait_for_checkpoint(proc, tmp_path)
  time.sleep(rng.uniform(0.0, 1.0))  # a random point: between steps, mid-save, mid-eval
  proc.send_signal(signal.SIGKILL)
  proc.wait(timeout=60)
  killed_at = steps_on_disk(tmp_path)[-1]
  assert killed_at < STEPS, f"the run finished before the kill (seed {seed}); raise STEPS"

  proc = start(tmp_path)  # Resumes; SIGTERM once it has saved past the killed run's step.
  wait_for_checkpoint(proc, tmp_path, after=killed_at)
  proc.send_signal(signal.SIGTERM)
  err = finish(proc)  # The engine saves after the current step and exits 0.
  assert "stopping after step" in err, err[-2000:]
  stopped_at = steps_on_disk(tmp_path)[-1]
  assert killed_at < stopped_at < STEPS, (killed_at, stopped_at, seed)
  assert not finals_of(records(tmp_path))

  finish(start(tmp_path))
  got = records(tmp_path)
  assert finals_of(got) == finals_of(uninterrupted), f"seed {seed}"  # exact, not close
  assert got == uninterrupted, f"seed {seed}"  # every record, none doubled or lost


def test_a_leftover_temporary_save_is_ignored_and_removed(tmp_path):
  from configs import rnn

  config = rnn.get_config("elman_ptb,tiny")
  config.train.update(num_steps=10, checkpoint_every_steps=5, log_every_steps=5)
  train.train_and_evaluate(config, str(tmp_path), stop_after=5)
  # What a save killed midway leaves: a newer step, half written, under orbax's temporary name.
  torn = tmp_path / "checkpoints" / "9.orbax-checkpoint-tmp-1700000000000000"
  (torn / "state").mkdir(parents=True)
  (torn / "state" / "_METADATA").write_text('{"tree_metadata": {"step"')
  assert checkpoint.Checkpointer(str(tmp_path)).latest_step() == 5
  full = train.train_and_evaluate(config, str(tmp_path))  # resumes from 5, not from the torn 9
  assert not torn.exists()
  clean = train.train_and_evaluate(config, str(tmp_path / "clean"))
  assert full == clean


def test_unwritable_workdir_is_a_clear_error_naming_the_path(tmp_path):
  blocker = tmp_path / "a_file"
  blocker.write_text("")
  with pytest.raises(WorkdirError, match=f"cannot write the run directory {blocker}/run"):
    RunDir.create(str(blocker / "run"), "neural")
  from configs import rnn

  with pytest.raises(WorkdirError, match="choose a --workdir"):
    train.train_and_evaluate(rnn.get_config("elman_ptb,tiny"), str(blocker / "run"))
  if os.geteuid() != 0:  # root writes through permission bits
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(WorkdirError, match=str(locked)):
      RunDir.create(str(locked), "neural")


def test_cli_reports_an_unwritable_workdir_in_one_line(tmp_path):
  blocker = tmp_path / "a_file"
  blocker.write_text("")
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(REPO)}
  proc = subprocess.run(
    command(blocker / "run"), cwd=REPO, env=env, capture_output=True, text=True, timeout=120
  )
  assert proc.returncode == 1
  assert f"error: cannot write the run directory {blocker}/run" in proc.stderr
  assert "Traceback" not in proc.stderr
