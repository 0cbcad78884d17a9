"""The main job: every model of the lecture on one corpus, one table, one plot, samples.

Counting models (every order x smoothing), then the fixed-window, Elman and
LSTM networks, all evaluated with the same perplexity convention; samples from
each; the interpolation of two of them; ``results.md`` and ``curves.png`` in
the workdir.  Each model has its own run directory under the workdir, so a
rerun resumes neural training and ``experiments.compare`` can read any of them.
"""

from __future__ import annotations

import os
import time

import ml_collections

from lm_jax import compare, interpolate
from lm_jax.errors import DiscountError


def _say(msg: str) -> None:
  print(msg, flush=True)


def _ppl(rec: dict | None) -> str:
  return "–" if rec is None else f"{rec['perplexity']:.2f}"


def _run_ngrams(config, base, workdir) -> tuple[list[dict], list[str]]:
  from lm_jax.ngram import run as ngram_run  # Deferred: jax start-up only when needed.
  rows, samples = [], []
  grid = [(s, n) for s in config.ngram.smoothings for n in config.ngram.orders]
  for i, (smoothing, order) in enumerate(grid, start=1):
    name = f"{smoothing}_{order}"
    cfg = ml_collections.ConfigDict(base.to_dict())
    cfg.update(order=order, smoothing=smoothing, seed=config.seed, dump_tokens=True,
               num_samples=config.num_samples if order == max(config.ngram.orders) else 0,
               temperature=config.temperature)
    cfg.data = ml_collections.ConfigDict(config.data.to_dict())
    t0 = time.perf_counter()
    try:
      finals = ngram_run.run(cfg, os.path.join(workdir, "ngram", name), verbose=False)
    except DiscountError as e:
      _say(f"[ngram {i}/{len(grid)}] {name}: discounts undefined, skipped ({str(e)[:90]}...)")
      rows.append({"name": name, "kind": f"{order}-gram {smoothing}", "note": "discounts undefined"})
      continue
    secs = time.perf_counter() - t0
    rows.append({"name": name, "kind": f"{order}-gram {smoothing}", "valid": finals.get("valid"),
                 "test": finals.get("test"), "seconds": secs,
                 "dir": os.path.join(workdir, "ngram", name)})
    _say(f"[ngram {i}/{len(grid)}] {name}: valid ppl {_ppl(finals.get('valid'))}, "
         f"test ppl {_ppl(finals.get('test'))} ({secs:.1f}s)")
    path = os.path.join(workdir, "ngram", name, "samples.txt")
    if os.path.exists(path):
      with open(path, encoding="utf-8") as f:
        samples += [f"{name}: {line.split('  ', 1)[-1].strip()}" for line in f if line.strip()]
  return rows, samples


def _run_neural(config, neural, workdir) -> tuple[list[dict], list[str]]:
  from lm_jax import sampling, train  # Deferred, as above.
  rows, samples = [], []
  for i, (name, cfg) in enumerate(neural.items(), start=1):
    cfg = ml_collections.ConfigDict(cfg.to_dict())
    cfg.data = ml_collections.ConfigDict(config.data.to_dict())
    cfg.seed = config.seed
    cfg.eval.dump_tokens = True
    run_dir = os.path.join(workdir, "neural", name)
    _say(f"[neural {i}/{len(neural)}] training {name} ({cfg.model.kind}, "
         f"{cfg.model.hidden_dim} units, {cfg.train.num_epochs} epochs) in {run_dir}")
    t0 = time.perf_counter()
    results = train.train_and_evaluate(cfg, run_dir)
    secs = time.perf_counter() - t0
    rec = {s: r.record() for s, r in results.items()}
    rows.append({"name": name, "kind": cfg.model.kind, "valid": rec.get("valid"),
                 "test": rec.get("test"), "seconds": secs, "dir": run_dir})
    _say(f"[neural {i}/{len(neural)}] {name}: valid ppl {_ppl(rec.get('valid'))}, "
         f"test ppl {_ppl(rec.get('test'))} ({secs:.0f}s)")
    for s in sampling.sample_from_workdir(run_dir, num_samples=config.num_samples,
                                          temperature=config.temperature, seed=config.seed,
                                          max_len=40):
      samples.append(f"{name}: {s.logprob:.2f}  {s.text}")
  return rows, samples


def _table(rows: list[dict]) -> str:
  lines = ["| model | kind | valid ppl | test ppl | test tokens | seconds |",
           "| --- | --- | ---: | ---: | ---: | ---: |"]
  for r in rows:
    if "note" in r:
      lines.append(f"| {r['name']} | {r['kind']} | {r['note']} | | | |")
      continue
    test = r.get("test") or {}
    lines.append(f"| {r['name']} | {r['kind']} | {_ppl(r.get('valid'))} | {_ppl(r.get('test'))} | "
                 f"{test.get('tokens', '–')} | {r.get('seconds', 0):.1f} |")
  return "\n".join(lines)


def run(config: ml_collections.ConfigDict, workdir: str, ngram_base: ml_collections.ConfigDict,
        neural: dict[str, ml_collections.ConfigDict]) -> str:
  """Runs the whole lecture into ``workdir``; returns the path of ``results.md``."""
  os.makedirs(workdir, exist_ok=True)
  t0 = time.perf_counter()
  ngram_rows, ngram_samples = _run_ngrams(config, ngram_base, workdir)
  neural_rows, neural_samples = _run_neural(config, neural, workdir)
  rows = ngram_rows + neural_rows
  by_name = {r["name"]: r for r in rows if "dir" in r}
  report = [f"# The lecture's models on `{config.data.name or config.data.dir}`", "",
            "Perplexity = exp(nll / tokens); every word and one `</s>` per sentence is scored, "
            "`<s>` never; OOVs are scored as `<unk>`.", "", _table(rows)]
  mix = [n for n in config.interpolate if n in by_name]
  if len(mix) >= 2:
    res = interpolate.interpolate([by_name[n]["dir"] for n in mix])
    weights = ", ".join(f"{n} {w:.2f}" for n, w in zip(mix, res["weights"]))
    report += ["", f"Linear interpolation ({weights}; weights tuned on valid): valid ppl "
               f"{res['valid']['perplexity']:.2f}, test ppl {res['test']['perplexity']:.2f}."]
    _say(f"[interpolation] {' + '.join(mix)}: test ppl {res['test']['perplexity']:.2f}")
  report += ["", "## Samples", ""] + [f"- {s}" for s in ngram_samples + neural_samples]
  curve_runs = [compare.load_run(r["dir"]) for r in neural_rows]
  best_kn = min((r for r in ngram_rows if "dir" in r and r.get("valid")),
                key=lambda r: r["valid"]["perplexity"], default=None)
  if best_kn:
    curve_runs.append(compare.load_run(best_kn["dir"]))
  if curve_runs:
    compare.plot(curve_runs, os.path.join(workdir, "curves.png"))
    report += ["", "Learning curves: `curves.png` (dashed: the best count model's validation perplexity)."]
  report += ["", f"Total wall time {time.perf_counter() - t0:.0f} s."]
  path = os.path.join(workdir, "results.md")
  with open(path, "w", encoding="utf-8") as f:
    f.write("\n".join(report) + "\n")
  _say("\n".join(report))
  return path
