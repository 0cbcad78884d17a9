"""Checks manual BPTT against jax.grad and centred finite differences in float64.

  python -m experiments.check_bptt --config=configs/check_bptt.py

Prints per parameter the max absolute and relative errors; exits 1, naming the
parameter, when one is above tolerance.
"""

import sys

from absl import app
from ml_collections import config_flags

from lm_jax import cli
from lm_jax.models import bptt_check

_CONFIG = config_flags.DEFINE_config_file(
  "config", "configs/check_bptt.py", "Sizes, seed and tolerances of the check."
)


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  report = bptt_check.check_gradients(_CONFIG.value)  # Config errors exit via cli.run.
  print(report.format(), flush=True)
  if not report.ok:
    sys.exit(
      f"manual BPTT gradient check failed for {', '.join(report.failed_names())}: "
      "see the FAIL lines above."
    )


if __name__ == "__main__":
  cli.run(main)
