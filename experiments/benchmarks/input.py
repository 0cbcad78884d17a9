"""Input pipeline: tokens/s the training loop's segment cutting delivers against the train step's.

The training loop places each step's ``[B, T]`` segment on the devices just before the
step (``parallel.put_segment`` over ``TrainStream.segment``): the stream stays on the
host, in memory or memory-mapped from disk (as the lm1b training split is).  This suite
times that cut-and-place alone, over every segment of an epoch of PTB, from the split
in memory and from the same ids memory-mapped from a file, and the real train step of
``configs/rnn.py:lstm_small_ptb`` (batch 20 x 35) in the same run.
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np

from experiments.benchmarks.common import train_step_runner


def _placement_tokens_per_sec(stream, reps: int) -> float:
  import jax

  from lm_jax import parallel

  sharding = parallel.batch_sharded(parallel.make_mesh())
  spe = stream.steps_per_epoch
  jax.block_until_ready(parallel.put_segment(stream, 0, sharding))  # warm up
  best = float("inf")
  for _ in range(reps):
    t = time.perf_counter()
    for pos in range(spe):
      out = parallel.put_segment(stream, pos, sharding)
    jax.block_until_ready(out)
    best = min(best, time.perf_counter() - t)
  return spe * stream.tokens_per_step / best


def _step_tokens_per_sec(spec, vocab, stream, steps: int) -> float:
  from lm_jax.models import ModelConfig

  cfg, t = ModelConfig.build(spec.model, vocab), spec.train
  segs = [stream.segment(pos) for pos in range(steps + 2)]
  inputs, targets = (np.concatenate([s[i] for s in segs], axis=1) for i in (0, 1))
  step = train_step_runner(cfg, spec.optim, t, inputs, targets)
  step(), step()  # compile, warm up
  tic = time.perf_counter()
  for _ in range(steps):
    step()
  return steps * stream.tokens_per_step / (time.perf_counter() - tic)


def run(quick: bool = False, data_dir: str | None = None) -> str:
  from configs import rnn
  from lm_jax.data import batching
  from lm_jax.data.pipeline import load_data
  from lm_jax.spec import parse_neural

  c = rnn.get_config("lstm_small_ptb")
  c.data.update(dir=data_dir or os.environ.get("LM_JAX_DATA_DIR"), download=False)
  spec = parse_neural(c)
  _, vocab, splits = load_data(spec.data)
  t = spec.train
  stream = batching.train_stream(splits["train"], vocab.bos_id, t.batch_size, t.seq_len)
  reps = 1 if quick else 3
  step_rate = _step_tokens_per_sec(spec, vocab, stream, 5 if quick else 20)
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    mapped = np.memmap(os.path.join(tmp, "ids"), np.int32, "w+", shape=stream.ids.shape)
    mapped[:] = stream.ids
    mapped.flush()
    mapped = np.memmap(os.path.join(tmp, "ids"), np.int32, "r", shape=stream.ids.shape)
    on_disk = batching.train_stream(mapped, vocab.bos_id, t.batch_size, t.seq_len)
    for name, s in (("in memory", stream), ("memory-mapped file", on_disk)):
      rows.append((name, _placement_tokens_per_sec(s, reps)))
  lines = [
    "## Input pipeline",
    "",
    "`python -m experiments.benchmark --suite=input`: the training loop's per-step segment "
    f"cut and placement (`parallel.put_segment`) over all {stream.steps_per_epoch:,} segments "
    f"of a PTB epoch ({t.batch_size} x {t.seq_len} tokens each, best of {reps}), against the "
    "train step of `configs/rnn.py:lstm_small_ptb` in the same run.",
    "",
    "| input | tokens/s | train step tokens/s | input / step |",
    "|---|---:|---:|---:|",
  ]
  for name, rate in rows:
    lines.append(f"| {name} | {rate:,.0f} | {step_rate:,.0f} | {rate / step_rate:,.0f}x |")
  return "\n".join(lines) + "\n"
