"""Helpers shared by the benchmark suites: peer tools, child processes with their own peak RSS, timing."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import pathlib
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

# Where a local KenLM build is looked for last: ../peers/kenlm beside the checkout.
KENLM_BUILD = str(pathlib.Path(__file__).resolve().parents[3] / "peers" / "kenlm" / "build" / "bin")
now = time.perf_counter


def find_tool(name: str) -> str | None:
  """A KenLM binary: next to $LMPLZ when that is set (and only there), else PATH, else KENLM_BUILD."""
  lmplz = os.environ.get("LMPLZ")
  if lmplz:
    cands = [lmplz if name == "lmplz" else os.path.join(os.path.dirname(lmplz), name)]
  else:
    cands = [shutil.which(name), os.path.join(KENLM_BUILD, name)]
  return next((c for c in cands if c and os.path.isfile(c) and os.access(c, os.X_OK)), None)


# Linux carries a process's RSS high-water mark across exec, and a child forked from this
# (large) process would report ours as its peak; a small launcher process gives the measured
# command a fresh floor of a few MiB, and reports its wall time and RUSAGE_CHILDREN peak.
_LAUNCHER = (
  "import resource, subprocess, sys, time; t = time.perf_counter(); "
  "rc = subprocess.call(sys.argv[2:]); t = time.perf_counter() - t; "
  "open(sys.argv[1], 'w').write(f'{rc} {t} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}')"
)


def run_process(cmd: list[str], stdin=None, stdout=None, env=None) -> tuple[float, int, str]:
  """Wall seconds, peak RSS in bytes and stderr of one command, run through ``_LAUNCHER``."""
  with tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile("r") as report:
    subprocess.run(
      [sys.executable, "-S", "-c", _LAUNCHER, report.name, *cmd],
      stdin=stdin,
      stdout=stdout or subprocess.DEVNULL,
      stderr=err,
      env=env,
      check=False,
    )
    err.seek(0)
    text = err.read().decode(errors="replace")
    fields = report.read().split()
  if len(fields) != 3 or fields[0] != "0":
    raise RuntimeError(f"{cmd[0]} failed (exit {fields[0] if fields else '?'}): {text[-800:]}")
  return float(fields[1]), int(fields[2]) * 1024, text


def median_time(fn, reps: int):
  """Median wall seconds of ``reps`` calls, and the last call's result."""
  times, out = [], None
  for _ in range(reps):
    t = now()
    out = fn()
    times.append(now() - t)
  return statistics.median(times), out


def _version(dist: str) -> str:
  try:
    return importlib.metadata.version(dist)
  except importlib.metadata.PackageNotFoundError:
    return "not installed"


def machine_info() -> list[tuple[str, str]]:
  """CPU, cores, RAM and the versions of everything measured (the header of BENCHMARKS.md)."""
  with open("/proc/cpuinfo") as f:
    cpu = next(
      (l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), platform.processor()
    )
  with open("/proc/meminfo") as f:
    ram_kb = int(next(l.split()[1] for l in f if l.startswith("MemTotal")))
  lmplz, commit = find_tool("lmplz"), "not available"
  if lmplz:
    src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(lmplz))))
    git = subprocess.run(
      ["git", "-C", src, "log", "-1", "--format=%h %cs"], capture_output=True, text=True
    )
    commit = f"KenLM {git.stdout.strip()}" if git.returncode == 0 else f"{lmplz} (commit unknown)"
  return [
    ("CPU", f"{cpu}; {os.cpu_count()} logical cores, {len(os.sched_getaffinity(0))} usable"),
    ("RAM", f"{ram_kb / 2**20:.1f} GiB"),
    ("OS", platform.platform()),
    ("Python", platform.python_version()),
    (
      "packages",
      ", ".join(f"{d} {_version(d)}" for d in ("jax", "jaxlib", "numpy", "nltk", "kenlm-ex")),
    ),
    ("lmplz", commit),
  ]


@contextlib.contextmanager
def quiet_stderr():
  """Silences file descriptor 2 (C++ libraries write there directly)."""
  saved = os.dup(2)
  with open(os.devnull, "w") as null:
    os.dup2(null.fileno(), 2)
    try:
      yield
    finally:
      os.dup2(saved, 2)
      os.close(saved)


def train_step_runner(model_cfg, optim_cfg, train_cfg, inputs, targets, seed: int = 0):
  """``step()``: one jitted, donated lm_jax ``train_step`` on the next ``[B, T]`` segment of
  ``[B, L]`` inputs/targets, blocking on its result; the state lives inside (the segments
  wrap around, placed on the device beforehand: this times the step, not the input)."""
  import functools

  import jax

  from lm_jax.train.step import init_state, train_step

  segments = inputs.shape[1] // train_cfg.seq_len
  fn = jax.jit(
    functools.partial(
      train_step,
      model_cfg=model_cfg,
      optim_cfg=optim_cfg,
      train_cfg=train_cfg,
      steps_per_epoch=segments,
      total_steps=segments,
    ),
    donate_argnums=0,
  )
  init = jax.jit(init_state, static_argnums=(0, 1, 2, 3))
  holder = [init(seed, model_cfg, optim_cfg, train_cfg.batch_size)]
  t = train_cfg.seq_len
  data = [
    jax.device_put(
      {"inputs": inputs[:, i * t : (i + 1) * t], "targets": targets[:, i * t : (i + 1) * t]},
      jax.devices()[0],
    )
    for i in range(segments)
  ]
  count = [0]

  def step():
    holder[0] = fn(holder[0], data[count[0] % segments])
    count[0] += 1
    holder[0].step.block_until_ready()

  return step
