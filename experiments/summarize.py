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

from absl import flags

from lm_jax import cli
from lm_jax.summary import head_commit, summarize

_WORKDIR = flags.DEFINE_string("workdir", None, "A finished neural run.", required=True)
_NAME = flags.DEFINE_string("name", None, "Name recorded in the summary.", required=True)
_OUTPUT = flags.DEFINE_string("output", None, "JSON file to write (default: stdout).")
_COMMIT = flags.DEFINE_string("commit", None, "lm_jax commit of the run (default: HEAD).")


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
