"""Metrics as one JSON object per line (``metrics.jsonl``), and as TensorBoard scalars.

Every record carries an explicit ``kind``: ``train`` (loss since the last
record), ``eval`` (one split's sums, see ``evaluation.EvalResult.record``),
``estimate`` (an n-gram model's statistics), ``sample``, ``interpolation``.
Neural runs also write TensorBoard event files into the workdir (tensorboardX's
writer), so ``tensorboard --logdir=DIR`` draws the curves of any set of runs.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

RECORD_KINDS = ("train", "eval", "estimate", "sample", "interpolation", "stages")


def _clean(v: Any) -> Any:
  if hasattr(v, "item"):  # numpy / jax scalars
    v = v.item()
  if isinstance(v, float) and not math.isfinite(v):
    return str(v)  # JSON has no inf/nan; keep them readable and parseable.
  return v


def _scalars(record: dict) -> dict[str, float]:
  """The TensorBoard tags of one record."""
  if record["kind"] == "train":
    keys = ("loss", "perplexity", "lr", "tokens_per_sec")
    return {f"train/{k}": record[k] for k in keys if k in record}
  if record["kind"] == "eval":
    return {f"{record['split']}/{k}": record[k] for k in ("perplexity", "nll_per_token")}
  return {}


class MetricWriter:
  """Appends records to ``DIR/metrics.jsonl``; each record is flushed at once."""

  def __init__(
    self,
    workdir: str,
    fresh: bool = False,
    enabled: bool = True,
    tensorboard: bool = False,
    purge_step: int | None = None,
  ):
    """``fresh``: start the file anew; ``purge_step``: TensorBoard hides older events from it on."""
    self.path, self.enabled, self._tb = os.path.join(workdir, "metrics.jsonl"), enabled, None
    if enabled and fresh and os.path.exists(self.path):
      os.remove(self.path)
    if enabled and tensorboard:
      from tensorboardX import SummaryWriter  # Deferred: only neural runs write event files.

      self._tb = SummaryWriter(logdir=workdir, purge_step=purge_step, flush_secs=30)

  def write(self, record: dict) -> None:
    if record.get("kind") not in RECORD_KINDS:
      raise ValueError(f"a metrics record needs a kind in {RECORD_KINDS}: {record}")
    if not self.enabled:
      return
    line = json.dumps({k: _clean(v) for k, v in record.items()}, sort_keys=False)
    with open(self.path, "a", encoding="utf-8") as f:
      f.write(line + "\n")
      f.flush()
    if self._tb is not None and "step" in record:
      for tag, value in _scalars(record).items():
        value = float(_clean(value)) if not isinstance(value, str) else float(value)
        self._tb.add_scalar(tag, value, global_step=int(record["step"]))

  def rewind(self, step: int) -> None:
    """Drops what a resumed run writes again: records after ``step`` and final evaluations.

    Kept lines stay byte-identical, so a resumed run's ``metrics.jsonl`` equals an
    uninterrupted one's (wall-clock fields aside); with ``step=0`` the file restarts.
    """
    if not self.enabled or not os.path.exists(self.path):
      return
    with open(self.path, encoding="utf-8") as f:
      lines = [line for line in f if line.strip()]
    keep = []
    for line in lines:
      try:
        rec = json.loads(line)
      except json.JSONDecodeError:
        continue  # A line torn by a kill mid-write: the resumed run writes it again.
      if rec.get("step", 0) <= step and not rec.get("final") and step > 0:
        keep.append(line if line.endswith("\n") else line + "\n")
    tmp = self.path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
      f.writelines(keep)
    os.replace(tmp, self.path)

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()
      self._tb = None


def final_records(records: list[dict]) -> dict[str, dict]:
  """The last evaluation record of each split."""
  return {r["split"]: r for r in records if r.get("kind") == "eval"}


def parse_records(text: str) -> tuple[list[dict], list[int]]:
  """Records of a ``metrics.jsonl`` text (``"inf"``/``"nan"`` back to floats) and torn line numbers."""
  out, torn = [], []
  for i, line in enumerate(text.splitlines(), start=1):
    if not line.strip():
      continue
    try:
      rec = json.loads(line)
    except json.JSONDecodeError:
      torn.append(i)
      continue
    if isinstance(rec, dict):
      out.append({k: float(v) if v in ("inf", "-inf", "nan") else v for k, v in rec.items()})
    else:
      torn.append(i)
  return out, torn
