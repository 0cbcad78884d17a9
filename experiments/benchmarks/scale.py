"""Bounded-memory n-gram counting: a synthetic Zipf corpus counted shard by shard.

The corpus (i.i.d. Zipf words, geometric sentence lengths, fixed seed) is generated
one shard at a time and never held whole; ``count_ngrams_sharded`` keeps one shard
and the merged per-order tables.  Each measurement runs in a fresh child process
so its peak RSS is its own.  Also runnable alone:
``python -m experiments.benchmarks.scale [--quick]``.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from collections.abc import Iterator

import numpy as np

from lm_jax.data.tokens import TokenArray

FULL = {"tokens": 100_000_000, "shard_tokens": 2_000_000}
QUICK = {"tokens": 4_000_000, "shard_tokens": 500_000}
VOCAB, ZIPF_A, MEAN_LEN, ORDER, SEED = 10_000, 1.1, 20, 3, 0
UNK, EOS = 0, 1  # lm_jax's fixed ids; words are 2 .. VOCAB + 1, <s> is VOCAB + 2
BOS, VOCAB_SIZE = VOCAB + 2, VOCAB + 3
MiB = 2.0**20


def zipf_shards(tokens: int, shard_tokens: int, seed: int = SEED) -> Iterator[TokenArray]:
  """Shards of whole sentences, about ``shard_tokens`` scored tokens each, ``tokens`` in all."""
  rng = np.random.default_rng(seed)
  cdf = np.cumsum(1.0 / np.arange(1, VOCAB + 1) ** ZIPF_A)
  cdf /= cdf[-1]
  done = 0
  while done < tokens:
    want = min(shard_tokens, tokens - done)
    # Sentence lengths (words + </s>) until the shard is full; the last one is cut to fit.
    lengths = rng.geometric(1.0 / MEAN_LEN, size=want // MEAN_LEN + 1) + 1
    while lengths.sum() < want:
      lengths = np.concatenate(
        [lengths, rng.geometric(1.0 / MEAN_LEN, size=want // MEAN_LEN + 1) + 1]
      )
    ends = np.cumsum(lengths)
    n = int(np.searchsorted(ends, want)) + 1  # ends[n - 2] < want <= ends[n - 1]
    lengths = lengths[:n]
    lengths[-1] -= ends[n - 1] - want  # still >= 1: at least its </s>
    starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ids = (np.searchsorted(cdf, rng.random(int(starts[-1]))) + 2).astype(np.int32)
    ids[starts[1:] - 1] = EOS
    done += int(starts[-1])
    yield TokenArray(ids=ids, starts=starts, oov=np.zeros(len(ids), bool))


def measure(method: str, tokens: int, shard_tokens: int) -> dict:
  """Counts the corpus (``sharded`` or ``one_shot``) in this process; time, peak RSS, sizes."""
  from lm_jax.ngram import counts  # Deferred: the parent process never counts.

  base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  t = time.perf_counter()
  if method == "sharded":
    c = counts.count_ngrams_sharded(zipf_shards(tokens, shard_tokens), ORDER, VOCAB_SIZE, BOS)
  else:
    parts = list(zipf_shards(tokens, shard_tokens))
    offsets = np.cumsum([0] + [p.num_tokens for p in parts])
    starts = [p.starts[:-1] + o for p, o in zip(parts, offsets)] + [offsets[-1:]]
    whole = TokenArray(
      ids=np.concatenate([p.ids for p in parts]),
      starts=np.concatenate(starts),
      oov=np.concatenate([p.oov for p in parts]),
    )
    del parts, starts
    c = counts.count_ngrams(whole, ORDER, VOCAB_SIZE, BOS)
  seconds = time.perf_counter() - t
  return {
    "method": method,
    "tokens": int(c.unigram.sum() - c.unigram[BOS]),
    "seconds": seconds,
    "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "baseline_rss_mib": base,
    "ngrams": c.sizes()[1:],
    "sentences": int(c.unigram[BOS]),
  }


def _child(method: str, size: dict) -> dict:
  args = [
    sys.executable,
    "-m",
    "experiments.benchmarks.scale",
    "--child",
    method,
    str(size["tokens"]),
    str(size["shard_tokens"]),
  ]
  out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
  return json.loads(out.strip().splitlines()[-1])


def run(quick: bool = False) -> str:
  """Markdown section: sharded counting of the synthetic corpus; with ``quick``, also one-shot."""
  size = QUICK if quick else FULL
  rows = [_child("sharded", size)]
  if quick:  # The one-shot count holds the whole corpus: only at the quick size.
    rows.append(_child("one_shot", size))
  lines = [
    "## scale",
    "",
    f"Order-{ORDER} counts of a synthetic corpus: {size['tokens']:,} scored tokens "
    f"({'quick size; the full size is 100,000,000' if quick else 'full size'}), i.i.d. Zipf "
    f"(a = {ZIPF_A}) over {VOCAB:,} words, geometric sentence lengths (mean {MEAN_LEN}), seed "
    f"{SEED}, generated in shards of {size['shard_tokens']:,} tokens. Peak RSS is the child "
    "process's maximum resident set (Python, numpy and lm_jax imports included; "
    "baseline = before counting).",
    "",
    "| method | tokens | sentences | n-grams (orders 2..3) | seconds | peak RSS MiB | baseline RSS MiB |",
    "| --- | ---: | ---: | --- | ---: | ---: | ---: |",
  ]
  for r in rows:
    lines.append(
      f"| {r['method']} | {r['tokens']:,} | {r['sentences']:,} | "
      f"{', '.join(f'{n:,}' for n in r['ngrams'])} | {r['seconds']:.1f} | "
      f"{r['peak_rss_mib']:.0f} | {r['baseline_rss_mib']:.0f} |"
    )
  if len(rows) == 2 and rows[0]["ngrams"] != rows[1]["ngrams"]:
    lines += ["", "**The sharded and one-shot counts differ: a bug.**"]
  return "\n".join(lines) + "\n"


if __name__ == "__main__":
  if len(sys.argv) == 5 and sys.argv[1] == "--child":
    print(json.dumps(measure(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
  else:
    print(run(quick="--quick" in sys.argv[1:]))
