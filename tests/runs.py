"""Test helpers: read a run directory's records the way lm_jax's own readers do."""

from lm_jax.metric_writer import final_records
from lm_jax.rundir import RunDir


def run_metrics(workdir) -> list[dict]:
  """Every record of ``workdir``'s ``metrics.jsonl`` (through its run directory)."""
  return RunDir.open(str(workdir)).read_metrics()


finals_of = final_records  # The last evaluation record of each split.
