"""Test helpers: read a run directory's records the way lm_jax's own readers do."""

from lm_jax.rundir import RunDir


def run_metrics(workdir) -> list[dict]:
  """Every record of ``workdir``'s ``metrics.jsonl`` (through its run directory)."""
  return RunDir.open(str(workdir)).read_metrics()


def finals_of(records: list[dict]) -> dict[str, dict]:
  """The last evaluation record of each split."""
  return {r["split"]: r for r in records if r.get("kind") == "eval"}
