"""The plan command's memory per device against the measured peak of the same step on this CPU.

For each job, ``lm_jax.plan.compile_step`` compiles the train step from shapes (what
``experiments.plan`` reports: arguments + temporaries of the compiled executable).  The
same executable then runs on real arrays: the state is allocated (zeros of its shapes:
the step's memory does not depend on the values, and an initialiser's random bits
would linger in the allocator), the training stream placed, and three steps run while a
thread samples the process's resident memory every millisecond.  Measured = the
highest resident size during those steps minus the resident size just before the
state was allocated (after compiling both programs: compilation is not counted).  On the CPU the device memory is the process's memory, so
the two figures describe the same thing.
"""

from __future__ import annotations

import gc
import threading

import numpy as np

from configs import base_config

MiB = 2**20
JOBS = {  # name: (model, optim, train, vocabulary size)
  "LSTM 2x1024, V = 100k, full softmax, Adam, batch 32 x 20": (
    dict(kind="lstm", embed_dim=1024, hidden_dim=1024, num_layers=2),
    dict(name="adam", learning_rate=1e-3),
    dict(batch_size=32, seq_len=20, loss_normalizer="tokens"),
    100_000,
  ),
  "LSTM 512, V = 793,471, adaptive 20k/200k div 4, sparse SGD, batch 32 x 20": (
    dict(
      kind="lstm",
      embed_dim=512,
      hidden_dim=512,
      num_layers=1,
      output="adaptive",
      adaptive_cutoffs="20000,200000",
      adaptive_div=4.0,
    ),
    dict(name="sgd", learning_rate=0.1, clip_norm=0.0, sparse_embedding=True),
    dict(batch_size=32, seq_len=20, loss_normalizer="tokens"),
    793_471,
  ),
  "Elman 512 + MaxEnt order 4 (2^26 weights), V = 50k, Adam, batch 64 x 20": (
    dict(kind="elman", embed_dim=512, hidden_dim=512, num_layers=1, maxent_order=4),
    dict(name="adam", learning_rate=1e-3),
    dict(batch_size=64, seq_len=20, loss_normalizer="tokens"),
    50_000,
  ),
}


def _rss() -> int:
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith("VmRSS:"):
        return int(line.split()[1]) * 1024
  raise RuntimeError("no VmRSS in /proc/self/status")


def measure(model: dict, optim: dict, train: dict, vocab_size: int, steps: int = 3):
  """(planned peak bytes, measured peak bytes) for one job on this machine's one device."""
  import functools

  import jax
  import jax.numpy as jnp

  from lm_jax import plan as plan_lib
  from lm_jax.spec import parse_neural

  c = base_config()
  c.model.update(**model)
  if "maxent_order" in model:
    c.model.maxent_hash_size = 1 << 26
  c.optim.update(**optim)
  c.train.update(**train)
  spec = parse_neural(c)
  vocab = plan_lib.zipf_vocab(vocab_size)
  stream = 100 * spec.train.batch_size * spec.train.seq_len
  compiled = plan_lib.compile_step(spec, vocab, stream)
  mem = compiled.executable.memory_analysis()
  planned = int(mem.argument_size_in_bytes + mem.temp_size_in_bytes)
  # The state as zeros of its shapes: the step's memory does not depend on the values, and
  # the initialiser's random bits (2 x the embedding) would stay in the allocator's cache.
  zeros = functools.partial(jax.tree.map, lambda x: jnp.zeros(x.shape, x.dtype), compiled.abstract)
  init = jax.jit(zeros, out_shardings=compiled.shardings).lower().compile()
  rng = np.random.default_rng(0)
  shape = compiled.data["inputs"].shape
  host = {k: rng.integers(0, vocab_size, shape).astype(np.int32) for k in ("inputs", "targets")}
  gc.collect()
  base = _rss()
  peak, done = [base], threading.Event()

  def sample():
    while not done.is_set():
      peak[0] = max(peak[0], _rss())
      done.wait(0.001)

  state = init()
  data = {k: jax.device_put(v, compiled.data[k].sharding) for k, v in host.items()}
  del host
  gc.collect()
  sampler = threading.Thread(target=sample, daemon=True)
  sampler.start()
  for _ in range(steps):
    state = compiled.executable(state, data)
    jax.block_until_ready(state)
  done.set()
  sampler.join()
  peak[0] = max(peak[0], _rss())
  return planned, peak[0] - base


def run(quick: bool = False) -> str:
  lines = [
    "## Plan vs measured memory",
    "",
    "`python -m experiments.benchmark --suite=plan_memory`: the plan command's per-device "
    "peak (compiled memory analysis: arguments + temporaries) against the resident memory the "
    "same compiled step adds when it runs here (state, training stream, three steps; sampled "
    "every millisecond, compilation excluded). One CPU device.",
    "",
  ]
  lines += ["| job | planned | measured | planned / measured |", "|---|---:|---:|---:|"]
  jobs = list(JOBS.items())[:1] if quick else list(JOBS.items())
  for name, job in jobs:
    planned, measured = measure(*job)
    lines.append(
      f"| {name} | {planned / MiB:,.0f} MiB | {measured / MiB:,.0f} MiB "
      f"| {planned / measured:.2f} |"
    )
  return "\n".join(lines) + "\n"
