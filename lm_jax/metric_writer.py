"""Metrics as one JSON object per line (``metrics.jsonl``), appended and flushed."""

from __future__ import annotations

import json
import math
import os
from typing import Any, Iterable


def _clean(v: Any) -> Any:
  if hasattr(v, "item"):  # numpy / jax scalars
    v = v.item()
  if isinstance(v, float) and not math.isfinite(v):
    return str(v)  # JSON has no inf/nan; keep them readable and parseable.
  return v


class MetricWriter:
  """Appends records to ``DIR/metrics.jsonl``; each record is flushed at once."""

  def __init__(self, workdir: str, filename: str = "metrics.jsonl", fresh: bool = False):
    """``fresh``: start the file anew (a run that recomputes everything); else append (resume)."""
    os.makedirs(workdir, exist_ok=True)
    self.path = os.path.join(workdir, filename)
    if fresh and os.path.exists(self.path):
      os.remove(self.path)

  def write(self, record: dict) -> None:
    line = json.dumps({k: _clean(v) for k, v in record.items()}, sort_keys=False)
    with open(self.path, "a", encoding="utf-8") as f:
      f.write(line + "\n")
      f.flush()


def read_metrics(path: str) -> list[dict]:
  """Reads a ``metrics.jsonl`` file; string "inf"/"nan" values come back as floats."""
  out = []
  with open(path, encoding="utf-8") as f:
    for line in f:
      if line.strip():
        rec = json.loads(line)
        out.append({k: float(v) if v in ("inf", "-inf", "nan") else v for k, v in rec.items()})
  return out


def final_records(records: Iterable[dict]) -> dict[str, dict]:
  """The last evaluation record of each split."""
  out = {}
  for r in records:
    if "split" in r and "perplexity" in r:
      out[r["split"]] = r
  return out
