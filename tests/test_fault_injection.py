"""Fault injection through the command line, as a user meets it.

Every case asserts the exit status, one ``error:`` line that names the cause (and
no traceback), that no file outside the workdir changed, and that nothing in it
was lost (a snapshot of the files a run owns before and after).
"""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from runs import run_metrics

from tests.conftest import REPO, XLA_CACHE_ENV

TIMING = ("steps_per_sec", "tokens_per_sec", "elapsed_s", "eta_s", "compile_s")
TINY = "--config=configs/rnn.py:elman_ptb,tiny"


def cli(module: str, *args: str, cwd=REPO, check=None, file_limit_kib=None, timeout=180):
  """Runs ``experiments.<module>``; ``file_limit_kib`` caps file sizes (``ulimit -f``, as a full
  disk: writes past it fail with EFBIG; Python ignores SIGXFSZ)."""
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(REPO)}
  cmd = [sys.executable, "-m", f"experiments.{module}", *map(str, args)]
  if file_limit_kib is not None:  # A shell sets the limit: no fork of this threaded process.
    cmd = ["bash", "-c", f'ulimit -f {file_limit_kib} && exec "$0" "$@"', *cmd]
    env.pop(XLA_CACHE_ENV, None)  # A cache entry cut off at the limit would be left behind.
  proc = subprocess.run(
    cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
  )
  if check is not None:
    assert proc.returncode == check, proc.stderr[-3000:]
  return proc


def refused(proc, *phrases: str) -> str:
  """The one ``error:`` line of a refused command; it must name every phrase."""
  assert proc.returncode != 0, proc.stderr[-2000:]
  assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
  errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
  assert len(errors) == 1, proc.stderr[-2000:]
  for phrase in phrases:
    assert phrase in errors[0], errors[0]
  return errors[0]


def snapshot(root) -> dict[str, str]:
  """sha256 of every file under ``root`` (the lock and TensorBoard's new event files aside)."""
  out = {}
  for dirpath, _, files in os.walk(root):
    for name in files:
      if name == ".lock":
        continue
      path = os.path.join(dirpath, name)
      with open(path, "rb") as f:
        out[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
  return out


def train_tiny(workdir, *extra, check=0, **kw):
  return cli(
    "train",
    TINY,
    f"--workdir={workdir}",
    "--config.train.num_steps=20",
    "--config.train.checkpoint_every_steps=10",
    "--config.train.log_every_steps=5",
    *extra,
    check=check,
    **kw,
  )


def records(workdir):
  return [{k: v for k, v in r.items() if k not in TIMING} for r in run_metrics(workdir)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """A finished tiny training run (checkpoints at steps 10 and 20)."""
  workdir = tmp_path_factory.mktemp("trained")
  train_tiny(workdir, "--config.eval.dump_tokens=True")
  return workdir


def test_an_empty_workdir_is_refused_and_the_current_directory_untouched(tmp_path):
  (tmp_path / "model.arpa").write_text("a user's file\n")
  (tmp_path / "samples.txt").write_text("another\n")
  before = snapshot(tmp_path)
  refused(
    cli("ngram", f"--config={REPO}/configs/ngram.py", "--workdir=", cwd=tmp_path),
    "--workdir is empty",
  )
  assert snapshot(tmp_path) == before


def test_a_run_of_another_kind_is_refused_and_the_training_run_kept(trained, tmp_path):
  before = snapshot(trained)
  refused(cli("ngram", f"--workdir={trained}"), "holds a neural run", "its own --workdir")
  refused(cli("lecture", f"--workdir={trained}"), "holds a neural run")
  assert snapshot(trained) == before
  (tmp_path / "notes.txt").write_text("not a run\n")
  refused(cli("ngram", f"--workdir={tmp_path}"), "not empty", "holds no lm_jax run")
  assert (tmp_path / "notes.txt").read_text() == "not a run\n"


def test_a_second_writer_is_refused_naming_the_holder_and_a_stale_lock_is_taken_over(tmp_path):
  workdir = tmp_path / "run"
  workdir.mkdir()
  (workdir / "run.json").write_text('{"kind": "neural"}')
  import socket

  holder = {"host": socket.gethostname(), "pid": os.getpid(), "since": "then"}
  (workdir / ".lock").write_text(json.dumps(holder))  # This test process: alive.
  before = snapshot(workdir)
  refused(
    train_tiny(workdir, check=None), f"in use by pid {os.getpid()} on {holder['host']}", "delete"
  )
  assert snapshot(workdir) == before
  dead = subprocess.Popen([sys.executable, "-c", "pass"])
  dead.wait()
  (workdir / ".lock").write_text(json.dumps({**holder, "pid": dead.pid}))
  proc = train_tiny(workdir)
  assert "stale lock" in proc.stderr
  assert not (workdir / ".lock").exists()  # Released at the end.


def flip_byte(path) -> None:
  data = bytearray(path.read_bytes())
  data[len(data) // 2] ^= 0xFF
  path.write_bytes(bytes(data))


def largest_file(folder):
  return max((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_damaged_latest_checkpoint_falls_back_to_the_intact_one(trained, tmp_path, damage):
  reference = trained  # The same config uninterrupted (dump_tokens changes no record).
  workdir = tmp_path / "run"
  train_tiny(workdir)  # Checkpoints at 10 and 20; 20 is the finished run's.
  victim = largest_file(workdir / "checkpoints" / "20")
  if damage == "flip":
    flip_byte(victim)
  else:
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 3])
  proc = train_tiny(workdir)  # Rerunning a finished run: it re-evaluates from its checkpoint.
  assert "checkpoint step 20 is damaged" in proc.stderr and "resuming from step 10" in proc.stderr
  assert len(list((workdir / "corrupt_checkpoints").iterdir())) == 1  # Kept, not deleted.
  assert records(workdir) == records(reference)  # Steps 10-20 trained again, record for record.


def test_no_intact_checkpoint_is_one_line_and_keeps_everything(tmp_path):
  train_tiny(tmp_path)
  for step in ("10", "20"):
    flip_byte(largest_file(tmp_path / "checkpoints" / step))
  before = snapshot(tmp_path)
  refused(train_tiny(tmp_path, check=None), "no intact checkpoint", "step 20:", "step 10:")
  assert snapshot(tmp_path) == before
  refused(cli("sample", f"--workdir={tmp_path}"), "no intact checkpoint")


def test_a_kill_before_the_first_checkpoint_duplicates_no_record(tmp_path):
  args = [
    "--config.train.num_steps=200",
    "--config.train.checkpoint_every_steps=100000",
    "--config.train.log_every_steps=2",
  ]
  reference = tmp_path / "reference"
  train_tiny(reference, *args)
  workdir = tmp_path / "run"
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(REPO)}
  proc = subprocess.Popen(
    [sys.executable, "-m", "experiments.train", TINY, f"--workdir={workdir}", *args],
    cwd=REPO,
    env=env,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
  )
  deadline = time.monotonic() + 120
  while not (workdir / "metrics.jsonl").exists() or (workdir / "metrics.jsonl").stat().st_size == 0:
    assert time.monotonic() < deadline and proc.poll() is None
    time.sleep(0.01)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert not (workdir / "checkpoints").exists() or not [
    n for n in os.listdir(workdir / "checkpoints") if n.isdigit()
  ]
  train_tiny(workdir, *args)
  assert records(workdir) == records(reference)


def test_divergence_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
  proc = train_tiny(
    tmp_path,
    "--config.optim.learning_rate=1e9",
    "--config.optim.clip_norm=0",
    "--config.train.log_every_steps=1",
    "--config.train.checkpoint_every_steps=1",
    check=None,
  )
  line = refused(proc, "training diverged at step", "last good checkpoint is step")
  bad = int(line.split("at step ")[1].split(":")[0])
  steps = sorted(int(n) for n in os.listdir(tmp_path / "checkpoints") if n.isdigit())
  assert steps[-1] == bad - 1
  assert all(r["kind"] == "train" for r in run_metrics(tmp_path))  # No final evaluation.


def test_a_full_disk_is_one_line_and_loses_nothing(trained, tmp_path):
  reference, workdir = trained, tmp_path / "run"
  full = 97  # KiB: a checkpoint's data file (~300 kB) cannot be written, config and vocab can.
  refused(
    train_tiny(workdir, check=None, file_limit_kib=full),
    "cannot write",
    "a file grew past the size limit",
    "rerun",
  )
  train_tiny(workdir)  # Space again: the same command finishes the run.
  assert records(workdir) == records(reference)
  checkpoints = snapshot(workdir / "checkpoints")
  # Re-evaluating with a token dump (~240 kB) that cannot be written: one line, checkpoints kept.
  refused(
    train_tiny(workdir, "--config.eval.dump_tokens=True", check=None, file_limit_kib=full),
    "cannot write",
  )
  assert snapshot(workdir / "checkpoints") == checkpoints
  assert not [n for n in os.listdir(workdir) if ".tmp" in n]  # No half-written file left.
  ngram = tmp_path / "kn"  # The ARPA file (~1.5 MB) does not fit: none is left half written.
  refused(
    cli("ngram", f"--workdir={ngram}", "--config.write_arpa=True", file_limit_kib=full),
    "cannot write",
  )
  assert not [n for n in os.listdir(ngram) if "arpa" in n]


def test_a_read_only_place_is_one_line():
  refused(cli("lecture", "--workdir=/sys/lm_jax_run"), "cannot write the run directory")
  refused(cli("ngram", "--workdir=/proc/lm_jax_run"), "cannot write the run directory")


def test_readers_of_finished_runs(trained, tmp_path):
  import shutil

  run = tmp_path / "copy"
  shutil.copytree(trained, run)
  with open(run / "metrics.jsonl", "a", encoding="utf-8") as f:
    f.write('{"kind": "train", "st')  # A line torn by a kill: tolerated, as resume does.
  proc = cli("compare", run, cwd=tmp_path, check=0)
  assert "| copy |" in proc.stdout and "skipped 1 unreadable line" in proc.stderr
  assert sorted(os.listdir(tmp_path)) == ["copy"]  # No plot unless asked for.
  refused(cli("compare", run, f"--plot={tmp_path}/missing/c.png"), "does not exist")
  (run / "config.json").write_text((trained / "config.json").read_text()[:40])
  refused(cli("compare", run), "config.json is truncated or corrupt")
  ngram = tmp_path / "kn"
  cli("ngram", f"--workdir={ngram}", "--config.dump_tokens=True", check=0)
  dump = trained / "test.tokens.tsv"
  other = tmp_path / "cut"
  shutil.copytree(trained, other)
  (other / "test.tokens.tsv").write_text("\n".join(dump.read_text().splitlines()[:50]) + "\n")
  refused(
    cli("interpolate", ngram, other, f"--workdir={tmp_path}/mix"), "test.tokens.tsv has 49 rows"
  )


def test_refusals_before_any_work(tmp_path, trained):
  workdir = tmp_path / "run"
  refused(cli("ngram", f"--workdir={workdir}", "--config.order=1000000"), "order=1000000", "1..20")
  refused(cli("ngram", f"--workdir={workdir}", "--config.temperature=0"), "temperature")
  refused(cli("ngram", f"--workdir={workdir}", "--config.num_samples=-1"), "num_samples")
  refused(train_tiny(workdir, "--config.train.seq_len=0", check=None), "train.seq_len must be >= 1")
  assert not workdir.exists()  # Nothing was written.
  ngram = tmp_path / "kn"
  cli("ngram", f"--workdir={ngram}", check=0)
  refused(cli("sample", f"--workdir={ngram}"), "holds an n-gram run", "samples.txt")
  refused(cli("sample", f"--workdir={trained}", "--num_samples=-2"), "num_samples must be >= 0")
  refused(cli("ngram", f"--workdir={ngram}", "--config.order=4"), "another config", "order: 3 -> 4")
  refused(cli("train", "--config=configs/rnn.py:nopreset", f"--workdir={workdir}"), "nopreset")
  refused(cli("train", "--config=configs/nope.py", f"--workdir={workdir}"), "nope.py")
  refused(train_tiny(workdir, "--config.optimizer.lr=1", check=None), "optimizer")
  refused(train_tiny(workdir, "--config.train.batch_size=abc", check=None), "batch_size")
  assert not workdir.exists()
