"""The main job: every model of the lecture on one corpus, one table, one plot, samples.

Counting models (every order x smoothing), then the fixed-window, Elman and
LSTM networks, all evaluated with the same perplexity convention; samples from
each; the interpolation of two of them; ``results.md`` and ``curves.png`` in
the workdir.  Each model has its own run directory under the workdir, so a
rerun resumes neural training and ``experiments.compare`` can read any of them.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import time

import ml_collections

from lm_jax import compare, interpolate
from lm_jax.errors import ConfigError, DiscountError
from lm_jax.ngram.spec import NGramSpec, parse_ngram
from lm_jax.rundir import RunDir
from lm_jax.spec import NeuralSpec, as_config, check_sampling, parse_data, parse_neural

_KEYS = ("seed", "data", "num_samples", "temperature", "ngram", "neural", "models", "interpolate")


@dataclasses.dataclass(frozen=True)
class LectureSpec:
  """Every run of the lecture, each validated before the first one starts."""

  ngrams: tuple[tuple[str, NGramSpec], ...]
  neural: tuple[tuple[str, NeuralSpec], ...]
  interpolate: tuple[str, ...]
  num_samples: int
  temperature: float
  seed: int
  corpus: str
  config: dict = dataclasses.field(compare=False, repr=False)


def load_config_file(spec: str) -> ml_collections.ConfigDict:
  """``path/to/file.py[:arg]`` -> the file's ``get_config(arg)``."""
  path, _, arg = spec.partition(":")
  if not os.path.isfile(path):
    raise ConfigError(
      f"config file {path} does not exist (from {spec!r}); run from the "
      "repository root or give the file's path."
    )
  module_spec = importlib.util.spec_from_file_location("_lm_jax_config", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg) if arg else module.get_config()


def parse_lecture(config: ml_collections.ConfigDict) -> LectureSpec:
  """The lecture config and every model config it names, validated before any work."""
  unknown = set(config.keys()) - set(_KEYS)
  if unknown:
    raise ConfigError(f"unknown config keys {sorted(unknown)}; the lecture config has {_KEYS}.")
  data = {k: config.data[k] for k in config.data.keys()}
  parse_data(data)
  check_sampling(config.temperature, config.num_samples, 1)
  ngrams = []
  for smoothing in config.ngram.smoothings:
    for order in config.ngram.orders:
      cfg = as_config(NGramSpec())
      cfg.update(
        order=order,
        smoothing=smoothing,
        seed=config.seed,
        dump_tokens=True,
        num_samples=config.num_samples if order == max(config.ngram.orders) else 0,
        temperature=config.temperature,
      )
      cfg.data = ml_collections.ConfigDict(data)
      ngrams.append((f"{smoothing}_{order}", parse_ngram(cfg)))
  neural = []
  for name in config.models:
    if name not in config.neural:
      raise ConfigError(f"models names {name!r}, which is not in neural ({sorted(config.neural)}).")
    entry = config.neural[name]
    cfg = load_config_file(entry.config)
    for section, values in entry.overrides.items():
      unknown = set(values) - set(cfg[section])
      if unknown:
        raise ConfigError(
          f"neural.{name}.overrides.{section}: unknown keys {sorted(unknown)}; "
          f"{entry.config} has {sorted(cfg[section])}."
        )
      cfg[section].update(values)
    cfg.data = ml_collections.ConfigDict(data)
    cfg.seed = config.seed
    cfg.eval.dump_tokens = True
    neural.append((name, parse_neural(cfg)))
  names = {n for n, _ in ngrams} | {n for n, _ in neural}
  return LectureSpec(
    tuple(ngrams),
    tuple(neural),
    tuple(n for n in config.interpolate if n in names),
    config.num_samples,
    config.temperature,
    config.seed,
    data["name"] or data["dir"] or data["file"],
    config.to_dict(),
  )


def _say(msg: str) -> None:
  print(msg, flush=True)


def _ppl(rec: dict | None) -> str:
  return "–" if rec is None else f"{rec['perplexity']:.2f}"


def _run_ngrams(spec: LectureSpec, workdir: str) -> tuple[list[dict], list[str]]:
  from lm_jax.ngram import run as ngram_run  # Deferred: jax start-up only when needed.

  rows, samples = [], []
  for i, (name, ngram) in enumerate(spec.ngrams, start=1):
    kind, run_dir = f"{ngram.order}-gram {ngram.smoothing}", os.path.join(workdir, "ngram", name)
    t0 = time.perf_counter()
    try:
      finals = ngram_run.run(ngram, run_dir, verbose=False)
    except DiscountError as e:
      _say(
        f"[ngram {i}/{len(spec.ngrams)}] {name}: discounts undefined, skipped ({str(e)[:90]}...)"
      )
      rows.append({"name": name, "kind": kind, "note": "discounts undefined"})
      continue
    secs = time.perf_counter() - t0
    rows.append(
      {
        "name": name,
        "kind": kind,
        "valid": finals.get("valid"),
        "test": finals.get("test"),
        "seconds": secs,
        "dir": run_dir,
      }
    )
    _say(
      f"[ngram {i}/{len(spec.ngrams)}] {name}: valid ppl {_ppl(finals.get('valid'))}, "
      f"test ppl {_ppl(finals.get('test'))} ({secs:.1f}s)"
    )
    samples += [
      f"{name}: {r['logprob']:.2f}  {r['text']}"
      for r in RunDir.open(run_dir).read_metrics()
      if r.get("kind") == "sample"
    ]
  return rows, samples


def _run_neural(spec: LectureSpec, workdir: str) -> tuple[list[dict], list[str]]:
  from lm_jax import sampling, train  # Deferred, as above.

  rows, samples = [], []
  for i, (name, neural) in enumerate(spec.neural, start=1):
    run_dir = os.path.join(workdir, "neural", name)
    _say(
      f"[neural {i}/{len(spec.neural)}] training {name} ({neural.model.kind}, "
      f"{neural.model.hidden_dim} units, {neural.train.num_epochs} epochs) in {run_dir}"
    )
    t0 = time.perf_counter()
    results = train.train_and_evaluate(ml_collections.ConfigDict(neural.config), run_dir)
    secs = time.perf_counter() - t0
    rec = {s: r.record() for s, r in results.items()}
    rows.append(
      {
        "name": name,
        "kind": neural.model.kind,
        "valid": rec.get("valid"),
        "test": rec.get("test"),
        "seconds": secs,
        "dir": run_dir,
      }
    )
    _say(
      f"[neural {i}/{len(spec.neural)}] {name}: valid ppl {_ppl(rec.get('valid'))}, "
      f"test ppl {_ppl(rec.get('test'))} ({secs:.0f}s)"
    )
    for s in sampling.sample_from_workdir(
      run_dir,
      num_samples=spec.num_samples,
      temperature=spec.temperature,
      seed=spec.seed,
      max_len=40,
    ):
      samples.append(f"{name}: {s.logprob:.2f}  {s.text}")
  return rows, samples


def _table(rows: list[dict]) -> str:
  lines = [
    "| model | kind | valid ppl | test ppl | test tokens | seconds |",
    "| --- | --- | ---: | ---: | ---: | ---: |",
  ]
  for r in rows:
    if "note" in r:
      lines.append(f"| {r['name']} | {r['kind']} | {r['note']} | | | |")
      continue
    test = r.get("test") or {}
    lines.append(
      f"| {r['name']} | {r['kind']} | {_ppl(r.get('valid'))} | {_ppl(r.get('test'))} | "
      f"{test.get('tokens', '–')} | {r.get('seconds', 0):.1f} |"
    )
  return "\n".join(lines)


def run(config: ml_collections.ConfigDict, workdir: str) -> str:
  """Runs the whole lecture into ``workdir``; returns the path of ``results.md``."""
  spec = parse_lecture(config)
  with RunDir.create(workdir, "lecture") as rd:
    rd.write_json("config.json", spec.config)
    return _run(spec, rd)


def _run(spec: LectureSpec, rd: RunDir) -> str:
  t0 = time.perf_counter()
  ngram_rows, ngram_samples = _run_ngrams(spec, rd.path)
  neural_rows, neural_samples = _run_neural(spec, rd.path)
  rows = ngram_rows + neural_rows
  by_name = {r["name"]: r for r in rows if "dir" in r}
  report = [
    f"# The lecture's models on `{spec.corpus}`",
    "",
    "Perplexity = exp(nll / tokens); every word and one `</s>` per sentence is scored, "
    "`<s>` never; OOVs are scored as `<unk>`.",
    "",
    _table(rows),
  ]
  mix = [n for n in spec.interpolate if n in by_name]
  if len(mix) >= 2:
    res = interpolate.interpolate([by_name[n]["dir"] for n in mix])
    weights = ", ".join(f"{n} {w:.2f}" for n, w in zip(mix, res["weights"]))
    report += [
      "",
      f"Linear interpolation ({weights}; weights tuned on valid): valid ppl "
      f"{res['valid']['perplexity']:.2f}, test ppl {res['test']['perplexity']:.2f}.",
    ]
    _say(f"[interpolation] {' + '.join(mix)}: test ppl {res['test']['perplexity']:.2f}")
  report += ["", "## Samples", ""] + [f"- {s}" for s in ngram_samples + neural_samples]
  curve_runs = [compare.load_run(r["dir"]) for r in neural_rows]
  best_kn = min(
    (r for r in ngram_rows if "dir" in r and r.get("valid")),
    key=lambda r: r["valid"]["perplexity"],
    default=None,
  )
  if best_kn:
    curve_runs.append(compare.load_run(best_kn["dir"]))
  if curve_runs:
    compare.plot(curve_runs, rd.file("curves.png"))
    report += [
      "",
      "Learning curves: `curves.png` (dashed: the best count model's validation perplexity).",
    ]
  report += ["", f"Total wall time {time.perf_counter() - t0:.0f} s."]
  path = rd.write_text("results.md", "\n".join(report) + "\n")
  _say("\n".join(report))
  return path
