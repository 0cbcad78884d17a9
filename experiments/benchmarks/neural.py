"""Neural benchmark: training tokens/s of lm_jax vs PyTorch at the PTB small configuration.

Both sides train the same model on the same synthetic 10k-word stream: hidden 200
(Elman: 1 layer, LSTM: 2 layers), batch 20, 35-step truncated BPTT with the state
carried across batches, SGD lr 1 with global-norm clipping at 5, loss summed over
time and averaged over the batch (Zaremba et al. 2014).  lm_jax runs its real
``train_step``; PyTorch runs ``torch.nn.RNN``/``torch.nn.LSTM`` on CPU.  The FLOP
count is the matmul work of one training step (3x the forward matmuls), divided
by the float32 matmul rate measured on this machine in the same run.
"""

from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from experiments.benchmarks.common import train_step_runner
from lm_jax.models import ModelConfig
from lm_jax.spec import OptimConfig, TrainConfig

VOCAB, HIDDEN, BATCH, UNROLL = 10_000, 200, 20, 35
MODELS = (("elman", 1), ("lstm", 2))


def matmul_flops_per_sec(n: int, reps: int) -> float:
  """Best float32 ``n x n @ n x n`` rate of jax on this machine."""
  a = jnp.ones((n, n), jnp.float32)
  f = jax.jit(lambda x: x @ x)
  f(a).block_until_ready()
  best = float("inf")
  for _ in range(reps):
    t = time.perf_counter()
    f(a).block_until_ready()
    best = min(best, time.perf_counter() - t)
  return 2 * n**3 / best


def train_flops_per_token(kind: str, layers: int) -> float:
  """3 x forward matmul FLOPs per token (forward, input gradient, weight gradient)."""
  gates = {"elman": 1, "lstm": 4}[kind]
  recurrent = sum(2 * (HIDDEN + HIDDEN) * gates * HIDDEN for _ in range(layers))
  return 3.0 * (recurrent + 2 * HIDDEN * VOCAB)


def _stream(steps: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  rng = np.random.default_rng(seed)
  ids = rng.integers(2, VOCAB, size=(BATCH, steps * UNROLL + 1), dtype=np.int32)
  return ids[:, :-1], ids[:, 1:]


def _timed(step, n: int) -> float:
  """Seconds per step over ``n`` calls of ``step()`` (which must block on its result)."""
  t = time.perf_counter()
  for _ in range(n):
    step()
  return (time.perf_counter() - t) / n


def lm_jax_seconds_per_step(kind: str, layers: int, steps: int) -> float:
  """lm_jax.train.train_step on the PTB small configuration."""
  model_cfg = ModelConfig(
    kind=kind,
    embed_dim=HIDDEN,
    hidden_dim=HIDDEN,
    num_layers=layers,
    in_vocab=VOCAB + 1,
    out_vocab=VOCAB,
    bos_id=VOCAB,
  )
  optim_cfg = OptimConfig(name="sgd", learning_rate=1.0, clip_norm=5.0)
  train_cfg = TrainConfig(batch_size=BATCH, seq_len=UNROLL)
  step = train_step_runner(model_cfg, optim_cfg, train_cfg, *_stream(steps + 2))
  step(), step()  # compile, warm up
  return _timed(step, steps)


def torch_seconds_per_step(kind: str, layers: int, steps: int) -> float:
  """The same model and update in PyTorch (CPU), with its state carried and detached."""
  import torch  # Deferred: an optional peer (pip install torch==2.13.0).

  torch.manual_seed(0)
  embed = torch.nn.Embedding(VOCAB + 1, HIDDEN)
  cls = torch.nn.LSTM if kind == "lstm" else torch.nn.RNN
  rnn = cls(HIDDEN, HIDDEN, num_layers=layers, batch_first=True)
  head = torch.nn.Linear(HIDDEN, VOCAB)
  params = [*embed.parameters(), *rnn.parameters(), *head.parameters()]
  for p in params:
    torch.nn.init.uniform_(p, -0.1, 0.1)
  opt = torch.optim.SGD(params, lr=1.0)
  inputs, targets = (torch.from_numpy(a.astype(np.int64)) for a in _stream(steps + 2))
  zeros = torch.zeros(layers, BATCH, HIDDEN)
  state = [(zeros, zeros.clone()) if kind == "lstm" else zeros]
  pos = [0]

  def step():
    cols = slice(pos[0] * UNROLL, (pos[0] + 1) * UNROLL)
    pos[0] = (pos[0] + 1) % (steps + 2)
    h = state[0]
    h = tuple(x.detach() for x in h) if kind == "lstm" else h.detach()
    out, h = rnn(embed(inputs[:, cols]), h)
    logits = head(out)
    loss = (
      torch.nn.functional.cross_entropy(
        logits.reshape(-1, VOCAB), targets[:, cols].reshape(-1), reduction="sum"
      )
      / BATCH
    )
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 5.0)
    opt.step()
    state[0] = h

  step(), step()
  return _timed(step, steps)


def _torch_version() -> str | None:
  try:
    import torch

    return f"{torch.__version__}, {torch.get_num_threads()} threads"
  except ImportError:
    return None


def run(quick: bool = False) -> str:
  """The markdown section: tokens/s of both, their ratio, and the fraction of matmul peak."""
  steps, rounds = (5, 1) if quick else (30, 3)
  peak = max(matmul_flops_per_sec(1024 if quick else 2048, 3) for _ in range(rounds))
  torch_info = _torch_version()
  rows = []
  for kind, layers in MODELS:
    # Rounds alternate the two programs; the best round of each is kept (other work shares the CPU).
    ours, theirs = float("inf"), float("inf") if torch_info else None
    for _ in range(rounds):
      ours = min(ours, lm_jax_seconds_per_step(kind, layers, steps))
      if torch_info:
        theirs = min(theirs, torch_seconds_per_step(kind, layers, steps))
    tok = BATCH * UNROLL
    flops = train_flops_per_token(kind, layers) * tok / ours
    ratio = f"{(tok / ours) / (tok / theirs):.2f}x" if theirs else "n/a (torch not installed)"
    rows.append(
      f"| {kind} {layers}x{HIDDEN} | {tok / ours:,.0f} | "
      f"{f'{tok / theirs:,.0f}' if theirs else 'n/a'} | {ratio} | "
      f"{flops / 1e9:.1f} | {flops / peak:.1%} |"
    )
  lines = [
    "## Neural models (training throughput)",
    "",
    f"PTB small configuration on synthetic data: vocabulary {VOCAB:,}, hidden {HIDDEN}, batch {BATCH}, "
    f"unroll {UNROLL}, SGD lr 1, clip 5; best of {rounds} round(s) of {steps} steps after 2 warm-up steps. "
    f"lm_jax {jax.__version__} ({jax.default_backend()}, {len(jax.devices())} device(s)); "
    f"PyTorch: {torch_info or 'not installed (pip install torch==2.13.0)'}; {os.cpu_count()} CPU(s).",
    "",
    "| model | lm_jax tokens/s | PyTorch tokens/s | lm_jax / PyTorch | lm_jax GFLOP/s | of matmul peak |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
    *rows,
    "",
    f"Matmul peak: {peak / 1e9:.1f} GFLOP/s (float32 {1024 if quick else 2048}^2 matmul in jax, best of "
    f"{3 * rounds}). GFLOP/s counts 3x the forward matmuls per token "
    f"({train_flops_per_token('lstm', 2) / 1e6:.1f} MFLOP for the LSTM, "
    f"{train_flops_per_token('elman', 1) / 1e6:.1f} MFLOP for Elman).",
  ]
  return "\n".join(lines) + "\n"
