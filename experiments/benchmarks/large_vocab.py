"""Large-vocabulary benchmark: training tokens/s of the output layers at the One Billion Word size.

Both sides train the same model on the same synthetic stream: V = 793,471 word types
(the benchmark's vocabulary), ids drawn from a Zipf law (p(k) ~ 1 / (k + 1), the
frequency-sorted shape of real text, so the adaptive softmax's head sees most tokens),
a 1-layer LSTM with 512 units and a 512-dimensional embedding, batch 32 x 20-step
truncated BPTT with the state carried, plain SGD (lr 0.1, no clipping).  Adaptive:
cutoffs 20,000 / 200,000, div 4 (Grave et al. 2017's 1BW layout).  lm_jax runs its real
``train_step`` (``model.output=full`` and ``adaptive``); PyTorch runs ``nn.LSTM`` with
``nn.AdaptiveLogSoftmaxWithLoss`` or a ``nn.Linear`` softmax and a sparse embedding
gradient (``nn.Embedding(sparse=True)``), its usual large-vocabulary setup.  Each side
runs in a fresh interpreter (``main``), so its allocator is the one a user's job has:
lm_jax's adaptive training sets glibc's to reuse freed blocks (``lm_jax.host_memory``),
PyTorch keeps the default unless a row gives it the same setting through the environment.

A step's time on a shared 2-core machine varies by a third from one process to the next
(measured: the lm_jax adaptive step took 0.66 to 0.96 s in five runs of the same code,
PyTorch's 1.17 to 1.35 s), so one run of each is not a ratio to trust.  The adaptive
rows of lm_jax and of PyTorch (with and without lm_jax's allocator setting) are measured
``PAIRS`` times each, in turn; each row's rate is the median step over all its
processes, and the table also gives the lowest and highest per-round ratio.  Every
process runs ``WARMUP`` untimed steps after compiling: the first steps also grow the
heap to its working size (one for the full softmax, whose step takes tens of seconds).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

import numpy as np

from experiments.benchmarks.common import train_step_runner
from experiments.benchmarks.neural import _timed
from lm_jax import host_memory
from lm_jax.models import ModelConfig
from lm_jax.spec import OptimConfig, TrainConfig

VOCAB, HIDDEN, BATCH, UNROLL, LR = 793_471, 512, 32, 20, 0.1
CUTOFFS, DIV = (20_000, 200_000), 4.0
# Untimed steps after compiling (a full-softmax step takes tens of seconds: one).
WARMUP, PAIRS = {"adaptive": 3, "full": 1}, 3


def _step_times(step, steps: int, warmup: int) -> list[float]:
  """Seconds of each of ``steps`` calls of ``step()`` after ``warmup`` untimed ones."""
  for _ in range(warmup):
    step()
  times = []
  for _ in range(steps):
    t = time.perf_counter()
    step()
    times.append(time.perf_counter() - t)
  return times


def zipf_stream(steps: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """[B, steps * T] inputs and targets with p(id = k) proportional to 1 / (k + 1)."""
  rng = np.random.default_rng(seed)
  cdf = np.cumsum(1.0 / np.arange(1, VOCAB + 1))
  ids = np.searchsorted(cdf / cdf[-1], rng.random((BATCH, steps * UNROLL + 1))).astype(np.int32)
  return ids[:, :-1], ids[:, 1:]


def _model_config(output: str) -> ModelConfig:
  return ModelConfig(
    kind="lstm",
    embed_dim=HIDDEN,
    hidden_dim=HIDDEN,
    num_layers=1,
    in_vocab=VOCAB + 1,
    out_vocab=VOCAB,
    bos_id=VOCAB,
    output=output,
    adaptive_cutoffs=",".join(map(str, CUTOFFS)),
    adaptive_div=DIV,
  )


def lm_jax_step_times(output: str, steps: int) -> list[float]:
  cfg = _model_config(output)
  optim_cfg = OptimConfig(name="sgd", learning_rate=LR, clip_norm=0.0, sparse_embedding=True)
  train_cfg = TrainConfig(batch_size=BATCH, seq_len=UNROLL, loss_normalizer="tokens")
  step = train_step_runner(cfg, optim_cfg, train_cfg, *zipf_stream(steps + WARMUP[output] + 2))
  step(), step()  # compile; the second call compiles again (the state comes back re-placed)
  return _step_times(step, steps, WARMUP[output])


def _torch_model(output: str):
  import torch  # Deferred: an optional peer (pip install torch==2.13.0).

  torch.manual_seed(0)
  embed = torch.nn.Embedding(VOCAB + 1, HIDDEN, sparse=True)
  rnn = torch.nn.LSTM(HIDDEN, HIDDEN, batch_first=True)
  if output == "adaptive":
    head = torch.nn.AdaptiveLogSoftmaxWithLoss(HIDDEN, VOCAB, list(CUTOFFS), div_value=DIV)
  else:
    head = torch.nn.Linear(HIDDEN, VOCAB)
  return torch, embed, rnn, head


def torch_step_times(output: str, steps: int) -> list[float]:
  torch, embed, rnn, head = _torch_model(output)
  params = [*embed.parameters(), *rnn.parameters(), *head.parameters()]
  opt = torch.optim.SGD(params, lr=LR)
  segments = steps + WARMUP[output] + 2
  inputs, targets = (torch.from_numpy(a.astype(np.int64)) for a in zipf_stream(segments))
  state = [(torch.zeros(1, BATCH, HIDDEN), torch.zeros(1, BATCH, HIDDEN))]
  pos = [0]

  def step():
    cols = slice(pos[0] * UNROLL, (pos[0] + 1) * UNROLL)
    pos[0] = (pos[0] + 1) % segments
    h = tuple(x.detach() for x in state[0])
    out, h = rnn(embed(inputs[:, cols]), h)
    flat, tgt = out.reshape(-1, HIDDEN), targets[:, cols].reshape(-1)
    if output == "adaptive":
      loss = head(flat, tgt).loss
    else:
      loss = torch.nn.functional.cross_entropy(head(flat), tgt)
    opt.zero_grad()
    loss.backward()
    opt.step()
    state[0] = h

  step(), step()
  return _step_times(step, steps, WARMUP[output])


def ptb_seconds_per_step(output: str, steps: int, data_dir: str) -> float:
  """``configs/rnn.py:lstm_small_ptb`` (``model.output`` set) training on PTB's first segments."""

  from configs.rnn import get_config
  from lm_jax.data.pipeline import load_data
  from lm_jax.spec import parse_neural

  config = get_config("lstm_small_ptb_adaptive" if output == "adaptive" else "lstm_small_ptb")
  config.data.dir = os.path.join(data_dir, "ptb")
  spec = parse_neural(config)
  _, vocab, arrays = load_data(spec.data)
  cfg = ModelConfig.build(spec.model, vocab)
  b, t = spec.train.batch_size, spec.train.seq_len
  ids = arrays["train"].ids[: b * (steps + 1) * t + 1]
  step = train_step_runner(
    cfg, spec.optim, spec.train, ids[:-1].reshape(b, -1), ids[1:].reshape(b, -1), spec.seed
  )
  step(), step()  # compile twice, as above
  return _timed(step, steps)


# (label, side, output layer, extra environment); each measured in a fresh process.
_ROWS = (
  ("lm_jax", "lm_jax", "adaptive", {}),
  ("lm_jax", "lm_jax", "full", {}),
  ("lm_jax, `LM_JAX_HOST_MALLOC=system`", "lm_jax", "adaptive", {host_memory.OPT_OUT: "system"}),
  ("PyTorch", "torch", "adaptive", {}),
  ("PyTorch", "torch", "full", {}),
  ("PyTorch, glibc malloc set as lm_jax sets it", "torch", "adaptive", host_memory.ENV_SETTINGS),
)
# lm_jax and PyTorch adaptive, by default and with the same allocator setting: measured
# PAIRS times each, alternating.
_PAIRED = (0, 3, 5)
_NOT_INSTALLED = 3  # exit status of a side whose library is missing


def measure(side: str, output: str, steps: int, env: dict) -> list[float] | None:
  """Seconds of each timed step of one side, in a fresh interpreter (its allocator as a
  user's job has it); None where the side's library is not installed.  ``output="eval"``:
  the evaluation's token count, then the seconds of each of ``steps`` timed calls."""
  out = subprocess.run(
    [sys.executable, "-m", "experiments.benchmarks.large_vocab", side, output, str(steps)],
    env={**host_memory.environ_without_settings(), **env},
    capture_output=True,
    text=True,
    cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
  )
  if out.returncode == _NOT_INSTALLED:
    return None
  if out.returncode:
    raise RuntimeError(f"{side} {output} failed:\n{out.stderr[-3000:]}")
  return [float(x) for x in out.stdout.split()[-steps - (output == "eval") :]]


def _measure_rows(steps: dict, pairs: int) -> list[list[list[float]] | None]:
  """Per row, the step times of each of its processes (the paired rows alternate)."""
  runs: list[list[list[float]] | None] = [[] for _ in _ROWS]
  order = [i for _ in range(pairs) for i in _PAIRED]
  order += [i for i in range(len(_ROWS)) if i not in _PAIRED]
  for i in order:
    _, side, output, env = _ROWS[i]
    if runs[i] is None:
      continue
    times = measure(side, output, steps[output], env)
    if times is None:
      runs[i] = None
    else:
      runs[i].append(times)
  return runs


def run(quick: bool = False, data_dir: str | None = None) -> str:
  data_dir = data_dir or os.environ.get("LM_JAX_DATA_DIR")
  ptb = []
  if data_dir and os.path.isfile(os.path.join(data_dir, "ptb", "ptb.train.txt")):
    n = 10 if quick else 50
    ptb = [(o, ptb_seconds_per_step(o, n, data_dir)) for o in ("full", "adaptive")]
  tokens = BATCH * UNROLL
  # A full-softmax step at this size is ~1.6 TFLOP (tens of seconds on a CPU): few of them.
  steps = {"adaptive": 3 if quick else 10, "full": 1 if quick else 2}
  runs = _measure_rows(steps, 1 if quick else PAIRS)
  rate = [None if r is None else tokens / statistics.median(sum(r, [])) for r in runs]
  rows = [(label, output, r) for (label, _, output, _), r in zip(_ROWS, rate)]
  lines = [
    "## Large vocabulary: output layers at V = 793,471",
    "",
    f"1-layer LSTM {HIDDEN}, batch {BATCH} x {UNROLL}, SGD, Zipf-distributed ids; adaptive "
    f"cutoffs {CUTOFFS[0]:,} / {CUTOFFS[1]:,}, div {DIV:g}. Training tokens/s (higher is "
    f"better) from the median step, each row in its own process after compiling and "
    f"{WARMUP['adaptive']} untimed steps ({WARMUP['full']} for full); the first, fourth and "
    f"last rows ran {len(runs[0])} processes each, in turn, of {steps['adaptive']} timed "
    "steps. lm_jax's training sets glibc's allocator to reuse freed large blocks for the "
    "adaptive softmax, not for the full one (`lm_jax/host_memory.py`); the third row turns "
    "that off, the last gives PyTorch the same setting through the environment "
    f"(`{' '.join(f'{k}={v}' for k, v in host_memory.ENV_SETTINGS.items())}`).",
    "",
    "| program | output layer | tokens/s |",
    "|---|---|---:|",
    *[f"| {s} | {o} | {'not installed' if r is None else f'{r:,.0f}'} |" for s, o, r in rows],
    "",
    f"- lm_jax adaptive / lm_jax full: **{rate[0] / rate[1]:.1f}x** (goal >= 10x).",
  ]
  for i, what in ((3, "PyTorch adaptive"), (5, "PyTorch adaptive with the same allocator setting")):
    if rate[i]:
      r = [statistics.median(b) / statistics.median(a) for a, b in zip(runs[0], runs[i])]
      goal = " (goal >= 2x)" if i == 3 else ""
      lines.append(
        f"- lm_jax adaptive / {what}: **{rate[0] / rate[i]:.2f}x**{goal}; per round "
        f"{min(r):.2f}x to {max(r):.2f}x."
      )
  from experiments.benchmarks import large_vocab_eval  # Its sides import this module.

  lines += large_vocab_eval.table(quick)
  if ptb:
    (_, full_s), (_, adaptive_s) = ptb
    lines += [
      "",
      "PTB, `configs/rnn.py:lstm_small_ptb` (full softmax) against "
      "`lstm_small_ptb_adaptive` (cutoffs 1000 / 4000, div 2), seconds per training step "
      f"on PTB's first segments: full {full_s * 1e3:.1f} ms, adaptive {adaptive_s * 1e3:.1f} ms: "
      f"**{full_s / adaptive_s:.2f}x** (goal >= 1.5x).",
    ]
  return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
  """``python -m experiments.benchmarks.large_vocab lm_jax|torch adaptive|full STEPS``:
  prints the seconds of each timed step; ``lm_jax|torch eval REPEATS``: the evaluation's
  token count and the seconds of each timed pass."""
  side, output, steps = argv[0], argv[1], int(argv[2])
  if output == "eval":
    from experiments.benchmarks import large_vocab_eval as ev

    fn = ev.lm_jax_eval_times if side == "lm_jax" else ev.torch_eval_times
    try:
      tokens, times = fn(ev.EVAL_SEGMENTS, steps)
    except ImportError:
      sys.exit(_NOT_INSTALLED)
    print(tokens, " ".join(repr(t) for t in times))
    return
  if side == "lm_jax":
    host_memory.for_training(output)  # As lm_jax's training does, before jax starts.
    fn = lm_jax_step_times
  else:
    fn = torch_step_times
  try:
    print(" ".join(repr(t) for t in fn(output, steps)))
  except ImportError:
    sys.exit(_NOT_INSTALLED)


if __name__ == "__main__":
  main(sys.argv[1:])
