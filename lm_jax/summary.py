"""A finished training run as the JSON summary kept in ``experiments/results/``."""

from __future__ import annotations

import shlex
import statistics
import subprocess

from lm_jax.errors import WorkdirError
from lm_jax.rundir import RunDir


def head_commit() -> str:
  out = subprocess.run(
    ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
  )
  return out.stdout.strip() or "unknown"


def summarize(workdir: str, name: str, commit: str) -> dict:
  """The summary of a finished run; a run without final records is an error."""
  run = RunDir.open(workdir, "neural", what="experiments.summarize")
  records = run.read_metrics()
  final = run.final_records()
  if set(final) != {"valid", "test"}:
    raise WorkdirError(
      f"{workdir} has no final valid and test records; let the run finish (rerun its command)."
    )
  train = [r for r in records if r["kind"] == "train"]
  argv = run.read_json("run.json").get("argv", [])
  command = "python -m experiments.train " + " ".join(shlex.quote(a) for a in argv[1:])
  return {
    "name": name,
    "command": command,
    "lm_jax_commit": commit,
    "wall_time_s": round(max(r.get("elapsed_s", 0.0) for r in records), 1),
    "steps": final["test"]["step"],
    "median_tokens_per_sec": statistics.median(r["tokens_per_sec"] for r in train),
    "valid_per_epoch": [
      {"epoch": round(r["epoch"]), "valid_perplexity": r["perplexity"]}
      for r in records
      if r["kind"] == "eval"
      and r.get("split") == "valid"
      and not r.get("final")
      and abs(r["epoch"] - round(r["epoch"])) < 1e-9
    ],
    "final": final,
  }
