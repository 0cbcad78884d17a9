"""Side-by-side comparison of run directories: config differences, perplexities, curves."""

from __future__ import annotations

import dataclasses
import json
import math
import os

from lm_jax.errors import LMJaxError
from lm_jax.metric_writer import final_records
from lm_jax.rundir import RunDir


@dataclasses.dataclass(frozen=True)
class Run:
  path: str
  kind: str
  config: dict
  info: dict
  records: list[dict]

  @property
  def name(self) -> str:
    return os.path.basename(os.path.normpath(self.path))

  def finals(self) -> dict[str, dict]:
    """The last evaluation record of each split."""
    return final_records(self.records)


def _flatten(d: dict, prefix: str = "") -> dict:
  out = {}
  for k, v in d.items():
    key = f"{prefix}{k}"
    if isinstance(v, dict):
      out.update(_flatten(v, key + "."))
    else:
      out[key] = v
  return out


def load_run(path: str) -> Run:
  """Reads one finished run through its run directory (config, run info, metrics)."""
  rd = RunDir.open(path, ("neural", "ngram", "interpolation"), what="experiments.compare")
  return Run(rd.path, rd.kind, rd.read_config(), rd.read_info(), rd.read_metrics())


def check_comparable(runs: list[Run]) -> list[str]:
  """Problems that make perplexities incomparable: vocabulary or corpus differences."""
  problems = []
  base = runs[0]
  for r in runs[1:]:
    if r.info.get("vocab_hash") != base.info.get("vocab_hash"):
      problems.append(
        f"{r.name} uses vocabulary {r.info.get('vocab_hash')} "
        f"({r.info.get('vocab_size')} types), {base.name} uses "
        f"{base.info.get('vocab_hash')} ({base.info.get('vocab_size')} types)"
      )
    rc, bc = r.info.get("corpus", {}).get("checksums"), base.info.get("corpus", {}).get("checksums")
    if rc != bc:
      problems.append(
        f"{r.name} and {base.name} read different corpus files (checksums {rc} vs {bc})"
      )
  return problems


def _best(records: list[dict], split: str) -> float | None:
  vals = [r["perplexity"] for r in records if r.get("kind") == "eval" and r.get("split") == split]
  return min(vals) if vals else None


def _fmt(v) -> str:
  if v is None:
    return "–"
  if isinstance(v, float):
    return "inf" if math.isinf(v) else f"{v:.2f}" if abs(v) >= 10 else f"{v:.4g}"
  return str(v)


def table(runs: list[Run]) -> str:
  """Markdown: one row per run with final and best perplexities, then config differences."""
  lines = [
    "| run | model | corpus | vocab | valid ppl (final) | valid ppl (best) | test ppl | test nll/token |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
  ]
  for r in runs:
    fin = r.finals()
    m = r.config.get("model") if isinstance(r.config.get("model"), dict) else {}
    if r.kind == "ngram":
      model = f"{r.config.get('order')}-gram {r.config.get('smoothing')}"
    elif r.kind == "interpolation":
      model = "interpolation"
    else:
      model = f"{m.get('kind', '?')} {m.get('num_layers', '')}x{m.get('hidden_dim', '')}"
    test = fin.get("test", {})
    lines.append(
      f"| {r.name} | {model} | {r.info.get('corpus', {}).get('name')} | "
      f"{r.info.get('vocab_size')} | {_fmt(fin.get('valid', {}).get('perplexity'))} | "
      f"{_fmt(_best(r.records, 'valid'))} | {_fmt(test.get('perplexity'))} | "
      f"{_fmt(test.get('nll_per_token'))} |"
    )
  flat = [_flatten(r.config) for r in runs]
  keys = sorted({k for f in flat for k in f if len({json.dumps(g.get(k)) for g in flat}) > 1})
  if keys:
    lines += [
      "",
      "| config field | " + " | ".join(r.name for r in runs) + " |",
      "| --- |" + " --- |" * len(runs),
    ]
    lines += [f"| {k} | " + " | ".join(_fmt(f.get(k)) for f in flat) + " |" for k in keys]
  return "\n".join(lines)


PLOT_FORMATS = (".png", ".pdf", ".svg")


def plot(runs: list[Run], path: str) -> str:
  """Learning curves (training loss, validation perplexity) against steps; returns the file."""
  if os.path.isdir(path):
    raise LMJaxError(f"--plot {path} is a directory; give a file name such as {path}/curves.png.")
  if os.path.splitext(path)[1].lower() not in PLOT_FORMATS:
    raise LMJaxError(f"--plot {path}: use a file name ending in {', '.join(PLOT_FORMATS)}.")
  folder = os.path.dirname(os.path.abspath(path))
  if not os.path.isdir(folder):
    raise LMJaxError(
      f"cannot write the plot {path}: the folder {folder} does not exist; create it "
      "or pass another --plot path."
    )
  import matplotlib  # Deferred: only plotting needs it.

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, (ax_loss, ax_ppl) = plt.subplots(1, 2, figsize=(11, 4))
  for r in runs:
    train = [(x["step"], x["loss"]) for x in r.records if x.get("kind") == "train"]
    valid = [
      (x["step"], x["perplexity"])
      for x in r.records
      if x.get("kind") == "eval"
      and x.get("split") == "valid"
      and "step" in x
      and math.isfinite(x["perplexity"])
    ]
    if train:
      ax_loss.plot(*zip(*train), label=r.name)
    if valid:
      ax_ppl.plot(*zip(*valid), marker="o", label=r.name)
    elif r.finals().get("valid"):  # Count models: one point, drawn as a level.
      ax_ppl.axhline(
        r.finals()["valid"]["perplexity"], ls="--", label=r.name, color=f"C{runs.index(r)}"
      )
  ax_loss.set(xlabel="step", ylabel="training loss (nats/token)", title="Training loss")
  ax_ppl.set(
    xlabel="step", ylabel="validation perplexity", title="Validation perplexity", yscale="log"
  )
  for ax in (ax_loss, ax_ppl):
    if ax.get_legend_handles_labels()[0]:
      ax.legend(fontsize=8)
  fig.tight_layout()
  try:
    fig.savefig(path, dpi=110)
  except OSError as e:
    raise LMJaxError(
      f"cannot write the plot {path} ({e.strerror or e}); pass another --plot."
    ) from None
  finally:
    plt.close(fig)
  return path


def compare(paths: list[str], allow_mismatch: bool = False, plot_path: str | None = None) -> str:
  """Loads runs, refuses incomparable ones unless allowed, returns the markdown report."""
  runs = [load_run(p) for p in paths]
  problems = check_comparable(runs)
  if problems and not allow_mismatch:
    raise LMJaxError(
      "these runs are not comparable: "
      + "; ".join(problems)
      + ". Perplexities over different vocabularies or texts mean different things; "
      "pass --allow_mismatch to compare anyway."
    )
  report = table(runs)
  if problems:
    report = "**Warning: not comparable** — " + "; ".join(problems) + "\n\n" + report
  if plot_path:
    report += f"\n\nLearning curves: {plot(runs, plot_path)}"
  return report


def write_report(path: str, report: str) -> None:
  """The markdown report into ``path`` (its folder must exist)."""
  folder = os.path.dirname(os.path.abspath(path))
  if not os.path.isdir(folder):
    raise LMJaxError(f"cannot write {path}: the folder {folder} does not exist.")
  with open(path, "w", encoding="utf-8") as f:
    f.write(report + "\n")
