"""The whole n-gram command against ``lmplz``: text in, ARPA file out, as a user runs them.

lm_jax: ``python -m experiments.ngram --config=configs/ngram.py:ptb --config.order=N
--config.write_arpa=True --workdir=DIR`` (start Python, read and encode the corpus,
estimate, write ``model.arpa``, and also score valid and test and draw the preset's
samples, which lmplz does not do).  lmplz: ``lmplz -o N --text train.txt --arpa FILE``
with its default memory.  Runs alternate (lm_jax, lmplz, lm_jax, ...) so drifting
machine load hits both sides; each figure is the median wall time and the highest
peak RSS of a fresh process.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile

from experiments.benchmarks.common import find_tool, run_process
from experiments.benchmarks.ngram import corpus_config, write_text


def run(data_dir: str | None = None, quick: bool = False) -> str:
  from lm_jax.data import corpus as corpus_lib

  data_dir = data_dir or os.environ.get("LM_JAX_DATA_DIR")
  lmplz = find_tool("lmplz")
  reps, orders = (1, (5,)) if quick else (3, (5, 3))
  env = {**os.environ, "LM_JAX_DATA_DIR": data_dir or "", "JAX_PLATFORMS": "cpu"}
  md = [
    "## N-gram command end to end: PTB text to ARPA",
    "",
    "`python -m experiments.benchmark --suite=ngram_cli`: the command a user runs, "
    "`python -m experiments.ngram --config=configs/ngram.py:ptb --config.order=N "
    "--config.write_arpa=True` (which also scores valid and test and draws 3 samples), "
    "against `lmplz -o N --text ptb.train.txt --arpa FILE` (default memory), "
    f"alternating, median of {reps}; lmplz: {lmplz or 'not available'}.",
    "",
    "| order | lm_jax (s) | lm_jax peak RSS (MiB) | lmplz (s) | lmplz peak RSS (MiB) "
    "| lm_jax time / lmplz time |",
    "|---|---:|---:|---:|---:|---:|",
  ]
  cfg = corpus_config(data_dir, "ptb")
  raw = corpus_lib.load(name="ptb", data_dir=cfg.dir, download=False)
  with tempfile.TemporaryDirectory(prefix="lm_jax_cli_") as tmp:
    train = write_text(raw.splits["train"], os.path.join(tmp, "train.txt"))
    for order in orders:
      ours, theirs = [], []
      for i in range(reps):
        cmd = [
          sys.executable,
          "-m",
          "experiments.ngram",
          "--config=configs/ngram.py:ptb",
          f"--config.order={order}",
          "--config.write_arpa=True",
          f"--workdir={os.path.join(tmp, f'run{order}_{i}')}",
        ]
        ours.append(run_process(cmd, env=env)[:2])
        if lmplz:
          out = os.path.join(tmp, f"lmplz{order}.arpa")
          theirs.append(run_process([lmplz, "-o", str(order), "--text", train, "--arpa", out])[:2])
      t_ours = statistics.median(t for t, _ in ours)
      rss_ours = max(r for _, r in ours) / 2**20
      if theirs:
        t_theirs = statistics.median(t for t, _ in theirs)
        rss_theirs = max(r for _, r in theirs) / 2**20
        tail = f"{t_theirs:.2f} | {rss_theirs:,.0f} | {t_ours / t_theirs:.2f}x |"
      else:
        tail = "not available | | |"
      md.append(f"| {order} | {t_ours:.2f} | {rss_ours:,.0f} | {tail}")
  return "\n".join(md) + "\n"
