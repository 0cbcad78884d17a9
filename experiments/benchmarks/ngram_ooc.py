"""Out-of-core 5-gram estimation at scale against ``lmplz -S``: time, peak memory, disk, perplexity.

Corpora come from ``experiments/make_ngram_corpus.py`` (PTB's Kneser-Ney 5-gram
with an open Zipfian tail for ``<unk>``; seed 0), generated into
``$LM_JAX_BENCH_CORPORA/kn<M>m`` (default ``~/.cache/lm_jax/corpora``) if missing.
For each size, one run of each command, text in and ARPA file out:

- lm_jax: ``python -m experiments.ngram --config=configs/ngram.py:ptb
  --config.data.name= --config.data.dir=DIR --config.memory=4G --config.temp_dir=TMP
  --config.write_arpa=True --config.evaluate=False --config.num_samples=0`` (no scoring
  or samples: lmplz's work and no more);
- lmplz: ``lmplz -o 5 -S 4G -T TMP --text train.txt --arpa FILE``.

Each ARPA file's test perplexity comes from KenLM's ``query`` (not timed): one scorer
for both models.

Peak memory is the proportional set size (PSS) of the command's whole process tree
(lm_jax forks an ARPA writer; shared pages count once), sampled every 0.25 s; disk is
the peak size of the temporary directory (the ARPA file excluded).  Also runnable
alone: ``python -m experiments.benchmarks.ngram_ooc --sizes=10,100,250`` (millions).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from experiments.benchmarks.common import find_tool

SIZES = (10, 100, 250)  # Millions of training tokens.
QUICK_SIZES = (2,)
MEMORY = "4G"
MiB = 2.0**20


def _tree_pss(pid: int) -> int:
  total, todo = 0, [pid]
  while todo:
    p = todo.pop()
    try:
      with open(f"/proc/{p}/smaps_rollup") as f:
        total += sum(int(line.split()[1]) for line in f if line.startswith("Pss:"))
      with open(f"/proc/{p}/task/{p}/children") as f:
        todo += [int(c) for c in f.read().split()]
    except OSError:  # The process ended between two reads.
      pass
  return total * 1024


def _du(path: str) -> int:
  total = 0
  for d, _, files in os.walk(path):
    for name in files:
      try:
        total += os.path.getsize(os.path.join(d, name))
      except OSError:
        pass
  return total


def sampled(cmd: list[str], disk_dir: str, env=None, stdin=None) -> dict:
  """Runs ``cmd``; its wall seconds, peak process-tree PSS and peak size of ``disk_dir``."""
  t0 = time.perf_counter()
  with tempfile.TemporaryFile() as err:
    proc = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=err, env=env)
    peak, disk = 0, 0
    while proc.poll() is None:
      peak, disk = max(peak, _tree_pss(proc.pid)), max(disk, _du(disk_dir))
      time.sleep(0.25)
    out = proc.stdout.read().decode(errors="replace")
    err.seek(0)
    text = err.read().decode(errors="replace")
  if proc.returncode:
    raise RuntimeError(f"{cmd[0]} failed (exit {proc.returncode}): {text[-800:]}")
  return {"seconds": time.perf_counter() - t0, "pss": peak, "disk": disk, "out": out}


def corpus(millions: int, env) -> str:
  root = os.environ.get("LM_JAX_BENCH_CORPORA") or os.path.expanduser("~/.cache/lm_jax/corpora")
  path = os.path.join(root, f"kn{millions}m")
  if not os.path.isfile(os.path.join(path, "test.txt")):
    subprocess.run(
      [
        sys.executable,
        "-m",
        "experiments.make_ngram_corpus",
        f"--out_dir={path}",
        f"--tokens={millions * 1_000_000}",
      ],
      check=True,
      env=env,
    )
  return path


def one_size(millions: int, lmplz: str, query: str | None, env, tmp: str) -> dict:
  c = corpus(millions, env)
  row = {"tokens": millions * 1_000_000}
  # lm_jax first, then lmplz: each alone on the machine.
  work, spill = os.path.join(tmp, "run"), os.path.join(tmp, "spill_lm_jax")
  os.makedirs(spill)
  cmd = [
    sys.executable,
    "-m",
    "experiments.ngram",
    "--config=configs/ngram.py:ptb",
    "--config.data.name=",
    f"--config.data.dir={c}",
    f"--config.memory={MEMORY}",
    f"--config.temp_dir={spill}",
    "--config.write_arpa=True",
    "--config.evaluate=False",
    "--config.num_samples=0",
    f"--workdir={work}",
  ]
  row["lm_jax"] = sampled(cmd, spill, env)
  records = [json.loads(line) for line in open(os.path.join(work, "metrics.jsonl"))]
  row["ngrams"] = next(r["ngrams"] for r in records if r["kind"] == "estimate")
  row["stages"] = next(r["stages"] for r in records if r["kind"] == "stages")
  row["lm_jax_ppl"] = query_ppl(query, os.path.join(work, "model.arpa"), c)
  shutil.rmtree(work)
  spill = os.path.join(tmp, "spill_lmplz")
  os.makedirs(spill)
  arpa = os.path.join(tmp, "lmplz.arpa")
  cmd = [
    lmplz,
    "-o",
    "5",
    "-S",
    MEMORY,
    "-T",
    spill,
    "--text",
    os.path.join(c, "train.txt"),
    "--arpa",
    arpa,
  ]
  row["lmplz"] = sampled(cmd, spill, env)
  row["lmplz_ppl"] = query_ppl(query, arpa, c)
  os.remove(arpa)
  return row


def query_ppl(query: str | None, arpa: str, corpus_dir: str) -> float | None:
  """KenLM ``query``'s test perplexity (OOVs included) of an ARPA file; None without query."""
  if not query:
    return None
  with open(os.path.join(corpus_dir, "test.txt"), "rb") as test:
    out = subprocess.run(
      [query, "-v", "summary", arpa], stdin=test, capture_output=True, check=True
    ).stdout.decode()
  return float(re.search(r"Perplexity including OOVs:\s*([\d.]+)", out).group(1))


def markdown(rows: list[dict], lmplz: str) -> str:
  md = [
    "## Out-of-core 5-gram at scale: lm_jax `memory=4G` against `lmplz -S 4G`",
    "",
    "`python -m experiments.benchmark --suite=ngram_ooc` (one run of each command per size; "
    "see `experiments/benchmarks/ngram_ooc.py` for the commands): text in, ARPA file out; "
    "lm_jax with `--config.evaluate=False --config.num_samples=0` (no scoring, no samples, "
    "as lmplz). Test perplexities: KenLM's `query` on each ARPA file (not timed). Corpora "
    "sampled by "
    "`experiments/make_ngram_corpus.py` (PTB's KN 5-gram, open Zipfian tail for `<unk>`). "
    "Peak memory: PSS of the process tree, sampled every 0.25 s. lm_jax's temporary disk: "
    "peak size of its `temp_dir`; lmplz unlinks its temporary files as it creates them, so a "
    f"directory listing cannot see them (n/a). lmplz: {lmplz}.",
    "",
    "| tokens | n-grams per order | lm_jax (s) | lmplz (s) | time ratio | lm_jax peak (MiB) "
    "| lmplz peak (MiB) | lm_jax temp disk (MiB) | test ppl lm_jax | test ppl lmplz | rel. diff |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ]
  for r in rows:
    a, b = r["lm_jax"], r["lmplz"]
    ppl_a, ppl_b = r["lm_jax_ppl"], r["lmplz_ppl"]
    diff = f"{abs(ppl_a - ppl_b) / ppl_b:.1e}" if ppl_a and ppl_b else "n/a"
    md.append(
      f"| {r['tokens'] / 1e6:.0f}M | {', '.join(map(str, r['ngrams']))} | {a['seconds']:.1f} "
      f"| {b['seconds']:.1f} | {a['seconds'] / b['seconds']:.2f}x | {a['pss'] / MiB:.0f} "
      f"| {b['pss'] / MiB:.0f} | {a['disk'] / MiB:.0f} "
      f"| {f'{ppl_a:.4f}' if ppl_a else 'n/a'} | {f'{ppl_b:.4f}' if ppl_b else 'n/a'} | {diff} |"
    )
  md += [
    "",
    "lm_jax's stages (seconds; peak RSS of the main process so far; size of the temporary "
    "directory at the end of the stage; the last row is the wall time no stage covers: "
    "start-up and the one pass over the text, which builds the vocabulary and spills "
    "provisional ids that `read` maps):",
    "",
  ]
  md.append("| stage | " + " | ".join(f"{r['tokens'] / 1e6:.0f}M" for r in rows) + " |")
  md.append("|---|" + "---:|" * len(rows))
  for i, s in enumerate(rows[0]["stages"]):
    cells = [
      f"{r['stages'][i]['seconds']:.1f} s, {r['stages'][i]['peak_rss'] / MiB:.0f} MiB, "
      f"{r['stages'][i]['disk'] / MiB:.0f} MiB"
      for r in rows
    ]
    md.append(f"| {s['stage']} | " + " | ".join(cells) + " |")
  rest = [r["lm_jax"]["seconds"] - sum(x["seconds"] for x in r["stages"]) for r in rows]
  md.append("| start-up, text pass | " + " | ".join(f"{x:.1f} s" for x in rest) + " |")
  return "\n".join(md) + "\n"


def run(data_dir: str | None = None, quick: bool = False, sizes=None) -> str:
  lmplz = find_tool("lmplz")
  if lmplz is None:
    return "## Out-of-core 5-gram at scale\n\nNot run: lmplz not found (set LMPLZ).\n"
  data_dir = data_dir or os.environ.get("LM_JAX_DATA_DIR")
  env = {**os.environ, "LM_JAX_DATA_DIR": data_dir or "", "JAX_PLATFORMS": "cpu"}
  rows = []
  for millions in sizes or (QUICK_SIZES if quick else SIZES):
    with tempfile.TemporaryDirectory(prefix="ngram_ooc-") as tmp:
      rows.append(one_size(millions, lmplz, find_tool("query"), env, tmp))
    print(json.dumps({k: v for k, v in rows[-1].items() if k != "stages"}, default=str), flush=True)
  return markdown(rows, lmplz)


if __name__ == "__main__":
  sizes = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--sizes=")), None)
  print(run(sizes=[int(s) for s in sizes.split(",")] if sizes else None))
