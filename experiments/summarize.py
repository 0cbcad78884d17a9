"""A finished training run as the JSON summary kept in ``experiments/results/``.

  python -m experiments.summarize --workdir=DIR --name=elman_maxent_ptb \\
      --output=experiments/results/elman_maxent_ptb.json

The summary holds the command that made the run (from its ``run.json``), the code
commit it was made with (``--commit``, default the checkout's HEAD), wall time, steps,
the median training throughput, the validation perplexity after each epoch and the
final valid/test records.
"""

from __future__ import annotations

import json
import shlex
import statistics
import subprocess

from absl import flags

from lm_jax import cli
from lm_jax.errors import WorkdirError
from lm_jax.rundir import RunDir

_WORKDIR = flags.DEFINE_string("workdir", None, "A finished neural run.", required=True)
_NAME = flags.DEFINE_string("name", None, "Name recorded in the summary.", required=True)
_OUTPUT = flags.DEFINE_string("output", None, "JSON file to write (default: stdout).")
_COMMIT = flags.DEFINE_string("commit", None, "lm_jax commit of the run (default: HEAD).")


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


def main(argv):
  del argv
  summary = summarize(_WORKDIR.value, _NAME.value, _COMMIT.value or head_commit())
  text = json.dumps(summary, indent=2) + "\n"
  if _OUTPUT.value:
    with open(_OUTPUT.value, "w", encoding="utf-8") as f:
      f.write(text)
  else:
    print(text, end="")


if __name__ == "__main__":
  cli.run(main)
