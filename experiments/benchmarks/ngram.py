"""N-gram benchmark: lm_jax's modified Kneser-Ney against KenLM and NLTK, every ratio from one run."""

from __future__ import annotations

import os
import re
import statistics
import sys
import tempfile

from experiments.benchmarks.common import (
  find_tool,
  machine_info,
  median_time,
  now,
  quiet_stderr,
  run_process,
)
from experiments.benchmarks.ngram_nltk import SMOOTHING, _nltk_md, _ratio, _s, _x, bench_nltk
from lm_jax.data.corpus import EMBEDDED
from lm_jax.data.pipeline import data_config, load_data
from lm_jax.data.vocab import UNK
from lm_jax.ngram.arpa import write_arpa
from lm_jax.ngram.model import NGramLM

KENLM_UNK = "UNK"  # lmplz refuses the literal <unk>: PTB's <unk> is renamed for KenLM only.
SCORING_REPS = 10  # A scoring pass over PTB test takes milliseconds: more runs steady the median.
GOAL_MEMORY_BYTES = 2 * 2**30


def corpus_config(data_dir: str | None, corpus: str | None):
  cfg = data_config(corpus)
  # The embedded corpus lives in no directory; a registered one is looked up in data_dir.
  cfg.dir, cfg.download = (None if corpus == EMBEDDED else data_dir), False
  return cfg


def write_text(sentences, path: str, unk: str = KENLM_UNK) -> str:
  with open(path, "w", encoding="utf-8") as f:
    f.writelines(" ".join(unk if w == UNK else w for w in s) + "\n" for s in sentences)
  return path


def bench_estimation(cfg, orders, reps, lmplz, tmp):
  """lm_jax in process (estimate; + read/vocab/encode; + write ARPA) vs lmplz processes, runs interleaved."""
  rows, kenlm_arpas, lmplz_rss = [], {}, {}
  train = None
  for order in orders:
    est, e2e, arpa, runs = [], [], [], []
    for _ in range(
      reps
    ):  # Alternating the two programs spreads the shared machine's load over both.
      t0 = now()
      raw, vocab, arrays = load_data(cfg)
      t1 = now()
      lm = NGramLM.estimate(arrays["train"], vocab, order, SMOOTHING)
      t2 = now()
      write_arpa(lm, os.path.join(tmp, f"lm_jax.o{order}.arpa"))
      t3 = now()
      est.append(t2 - t1), e2e.append(t2 - t0), arpa.append(t3 - t0)
      if lmplz:
        train = train or write_text(raw.splits["train"], os.path.join(tmp, "train.txt"))
        kenlm_arpas[order] = os.path.join(tmp, f"lmplz.o{order}.arpa")
        runs.append(
          run_process(
            [lmplz, "-o", str(order), "-S", "20%", "--text", train, "--arpa", kenlm_arpas[order]]
          )
        )
    rows.append(
      {
        "order": order,
        "est": statistics.median(est),
        "e2e": statistics.median(e2e),
        "arpa": statistics.median(arpa),
        "lm": lm,
        "lmplz": statistics.median(r[0] for r in runs) if runs else None,
      }
    )
    if runs:
      lmplz_rss[order] = max(r[1] for r in runs)
  return raw, arrays, rows, kenlm_arpas, lmplz_rss


def kenlm_ppl(arpa: str, lines: list[str], tokens: int, reps: int):
  """KenLM's Python module: (load s, median scoring s, perplexity), or None without the module."""
  try:
    import kenlm
  except ImportError:
    return None
  t = now()
  with quiet_stderr():  # KenLM draws a progress bar on fd 2 while it reads an ARPA file.
    model = kenlm.Model(arpa)
  load = now() - t
  score, total = median_time(lambda: sum(model.score(l, bos=True, eos=True) for l in lines), reps)
  return load, score, 10 ** (-total / tokens)


def bench_scoring(row, raw, test, tmp, reps):
  """Test-set scoring: lm_jax (first call = transfer + compile) vs KenLM's module and query binary."""
  reps = max(reps, SCORING_REPS)
  lm, order, out = row["lm"], row["order"], []
  t = now()
  lm.evaluate(test, "test")
  cold = now() - t
  warm, res = median_time(lambda: lm.evaluate(test, "test"), reps)
  out.append(("lm_jax `evaluate`", cold - warm, warm, res.perplexity))
  # Round trip: KenLM scoring the ARPA file that lm_jax wrote (original <unk> text).
  rt = kenlm_ppl(
    os.path.join(tmp, f"lm_jax.o{order}.arpa"),
    [" ".join(s) for s in raw.splits["test"]],
    test.num_tokens,
    1,
  )
  rt, arpa = rt and rt[2], row.get("kenlm_arpa")
  if arpa is None:
    return out, res, rt
  lines = [" ".join(KENLM_UNK if w == UNK else w for w in s) for s in raw.splits["test"]]
  k = kenlm_ppl(arpa, lines, test.num_tokens, reps)
  out.append(
    ("KenLM Python module `Model.score`", *k) if k else ("KenLM Python module", None, None, None)
  )
  query, build = find_tool("query"), find_tool("build_binary")
  if query:
    binary = os.path.join(tmp, f"kenlm.o{order}.binary")
    load = run_process([build, arpa, binary])[0] if build else None
    test_txt = write_text(raw.splits["test"], os.path.join(tmp, "test.txt"))
    runs = []
    for _ in range(reps):
      with open(test_txt) as fin, tempfile.TemporaryFile("w+") as fout:
        wall = run_process(
          [query, "-v", "summary", binary if build else arpa], stdin=fin, stdout=fout
        )[0]
        fout.seek(0)
        ppl = float(re.search(r"Perplexity including OOVs:\s*(\S+)", fout.read()).group(1))
      runs.append(wall)
    out.append(
      (
        f"KenLM `query` process{' (probing binary; load = build_binary)' if build else ' (ARPA)'}",
        load,
        statistics.median(runs),
        ppl,
      )
    )
  return out, res, rt


def _child_main(data_dir: str, corpus: str, order: str) -> None:
  """Body of the memory-measuring child: read, estimate, evaluate (order 0: import JAX only)."""
  import jax.numpy as jnp

  jnp.zeros(8).block_until_ready()
  if int(order):
    _, vocab, arrays = load_data(corpus_config(data_dir or None, corpus or None))
    NGramLM.estimate(arrays["train"], vocab, int(order), SMOOTHING).evaluate(arrays["test"], "test")


def bench_memory(data_dir, corpus, order):
  """Peak RSS and wall of a fresh lm_jax process (and of the bare Python + JAX runtime)."""
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  env = dict(
    os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
  )
  code = (
    "import sys; from experiments.benchmarks.ngram import _child_main; _child_main(*sys.argv[1:])"
  )
  cmd = lambda o: [sys.executable, "-c", code, data_dir or "", corpus or "", str(o)]
  return run_process(cmd(order), env=env)[:2], run_process(cmd(0), env=env)[:2]


def _estimation_md(rows, lmplz) -> list[str]:
  md = [
    "### Estimation wall time (seconds; ratio = lmplz ÷ lm_jax, above 1 means lm_jax is faster)",
    "",
    "lmplz reads the text and writes an ARPA file, so the like-for-like lm_jax column is the last one.",
    "",
    "| order | lm_jax estimate | lm_jax read + vocab + encode + estimate | same + write ARPA "
    "| lmplz `-S 20%` | ratio: estimate | ratio: end to end | ratio: + ARPA |",
    "|---|---|---|---|---|---|---|---|",
  ]
  for r in rows:
    md.append(
      f"| {r['order']} | {r['est']:.3f} | {r['e2e']:.3f} | {r['arpa']:.3f} | "
      f"{_s(r['lmplz']) if lmplz else 'not available'} | {_ratio(r['lmplz'], r['est'])} | "
      f"{_ratio(r['lmplz'], r['e2e'])} | {_ratio(r['lmplz'], r['arpa'])} |"
    )
  return md


def _scoring_md(rows, raw, test, tmp, reps, lmplz) -> list[str]:
  """Runs the scoring comparison per order; returns its table and the perplexity sanity table."""
  md = [
    "",
    f"### Test-set scoring ({test.num_tokens:,} tokens; load/compile reported apart from scoring)",
    "",
    "| order | scorer | load or compile (s) | scoring (s) | tokens/s | test perplexity | "
    "lm_jax tokens/s ÷ this |",
    "|---|---|---|---|---|---|---|",
  ]
  sanity = []
  for r in rows:
    scorers, res, roundtrip = bench_scoring(r, raw, test, tmp, reps)
    r["score"] = scorers[0][2]
    for name, load, secs, ppl in scorers:
      tps = test.num_tokens / secs if secs else None
      md.append(
        f"| {r['order']} | {name} | {_s(load)} | {_s(secs, '{:.4f}')} | {_s(tps, '{:,.0f}')} | "
        f"{_s(ppl, '{:.4f}')} | {_ratio(secs, r['score'])} |"
      )
    kenlm = next((s[3] for s in scorers[1:] if s[3] is not None), None)
    sanity.append(
      f"| {r['order']} | {res.perplexity:.4f} | {_s(kenlm, '{:.4f}')} | {_s(roundtrip, '{:.4f}')} |"
    )
  if not lmplz:
    md += ["", "KenLM scoring not available: it needs the ARPA file that lmplz writes in this run."]
  return md + [
    "",
    "Sanity check, test perplexity (must agree): lm_jax in memory, KenLM on lmplz's ARPA, and "
    "KenLM's module on the ARPA file lm_jax wrote (round trip).",
    "",
    "| order | lm_jax | KenLM (lmplz ARPA) | KenLM on lm_jax's ARPA |",
    "|---|---|---|---|",
    *sanity,
  ]


def _goals_md(full, mem, nl, extrapolated) -> list[str]:
  goals = [
    (
      f"estimation no slower than lmplz (order {full['order']}, {what})",
      _ratio(full["lmplz"], full[key]),
      None if full["lmplz"] is None else full["lmplz"] >= full[key],
    )
    for what, key in (
      ("estimate", "est"),
      ("read + estimate", "e2e"),
      ("read + estimate + write ARPA", "arpa"),
    )
  ]
  goals.append(
    (
      "peak memory under 2 GB (lm_jax process)",
      f"{mem[1] / 2**20:,.0f} MiB",
      mem[1] < GOAL_MEMORY_BYTES,
    )
  )
  if nl:
    big = nl[-1]
    tot = (big["nl_fit"] + big["nl_score"]) / (big["jx_fit"] + big["jx_cold"])
    fit = big["nl_fit"] / big["jx_fit"]
    goals += [
      (
        f"≥100× faster than NLTK: fit + scoring, largest prefix ({big['frac']:.0%})",
        _x(tot),
        tot >= 100,
      ),
      (
        f"≥100× faster than NLTK: fit alone, largest prefix ({big['frac']:.0%})",
        _x(fit),
        fit >= 100,
      ),
      (
        "≥100× faster than NLTK: fit + scoring on all of train",
        f"≈ {_x(extrapolated)}",
        "extrapolated only",
      ),
    ]
  verdict = lambda ok: (
    ok
    if isinstance(ok, str)
    else "n/a (peer not available)"
    if ok is None
    else "yes"
    if ok
    else "no"
  )
  return [
    "",
    "### Goals",
    "",
    "| goal | measured | met |",
    "|---|---|---|",
    *[f"| {g} | {m} | {verdict(ok)} |" for g, m, ok in goals],
  ]


def run(data_dir: str | None, quick: bool = False, corpus: str | None = "ptb") -> str:
  """Runs every n-gram comparison and returns the markdown section."""
  data_dir = data_dir or os.environ.get("LM_JAX_DATA_DIR")
  reps, orders = (1, (5,)) if quick else (3, (5, 3))
  fractions, n_test = ((0.005, 0.01), 50) if quick else ((0.01, 0.02, 0.05), 200)
  lmplz, load_start = find_tool("lmplz"), os.getloadavg()[0]
  with tempfile.TemporaryDirectory(prefix="lm_jax_bench_") as tmp:
    raw, arrays, rows, arpas, lmplz_rss = bench_estimation(
      corpus_config(data_dir, corpus), orders, reps, lmplz, tmp
    )
    train, test = arrays["train"], arrays["test"]
    for r in rows:
      r["kenlm_arpa"] = arpas.get(r["order"])
    md = [
      f"## N-gram models: interpolated modified Kneser-Ney on {raw.name}",
      "",
      f"Corpus `{raw.name}`: train {train.num_sentences:,} sentences, {train.num_tokens:,} tokens "
      f"(words + one `</s>` per sentence); test {test.num_tokens:,} tokens. Each time is the median of {reps} runs "
      f"(test-set scoring: {max(reps, SCORING_REPS)} runs). lmplz: {lmplz or 'not available (set LMPLZ or put lmplz on PATH)'}.",
      "",
      *_estimation_md(rows, lmplz),
      *_scoring_md(rows, raw, test, tmp, reps, lmplz),
    ]
    full = rows[0]
    mem, base = bench_memory(data_dir, corpus, full["order"])
  nl = bench_nltk(raw, fractions, n_test)
  nl_md, extrapolated = _nltk_md(nl, n_test, full, train, test)
  rss = lmplz_rss.get(full["order"])
  md += [
    *nl_md,
    "",
    f"### Peak memory (max RSS of a fresh process; order {full['order']})",
    "",
    "| process | peak RSS (MiB) | wall (s) |",
    "|---|---|---|",
    f"| lm_jax: start Python, import JAX, read + vocab + encode, estimate, evaluate test | "
    f"{mem[1] / 2**20:,.0f} | {mem[0]:.2f} |",
    f"| of which the bare Python + JAX runtime (import, one tiny op) | {base[1] / 2**20:,.0f} | {base[0]:.2f} |",
    f"| lmplz `-o {full['order']} -S 20%` (its sort buffers are sized by `-S`, a share of RAM) | "
    f"{_s(rss and rss / 2**20, '{:,.0f}')} | {_s(full['lmplz'], '{:.2f}')} |",
    *_goals_md(full, mem, nl, extrapolated),
    "",
    "### Machine",
    "",
    *[f"- {k}: {v}" for k, v in machine_info()],
    f"- load (1-minute average; other work on a shared machine slows both sides): {load_start:.2f} at the "
    f"start of this suite, {os.getloadavg()[0]:.2f} at its end",
  ]
  return "\n".join(md) + "\n"
