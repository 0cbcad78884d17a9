"""Plan a training job before submitting it: memory per device, FLOPs, projected time.

``plan(config, devices)`` builds the run spec, the abstract train state (shapes
only: nothing is allocated), lowers and compiles the real jitted train step for a
mesh of ``devices`` devices with the shardings the training loop declares, and
reads the compiled executable's memory analysis (arguments, outputs,
temporaries per device).  The state's initialiser is compiled the same way, as the
training loop jits it: its random draws take temporaries (4.5 GiB beside a 1.5 GiB
embedding at V = 793,471, width 512), so with replicated parameters it can peak
above the step.  So is one segment of the evaluation (``eval.batch_size`` rows):
with a full softmax it makes [rows x V] scores, which a step of the sampled softmax
never does.  The plan's peak is the largest of the three.  The projected step time
divides an analytic count of the step's FLOPs (3 x the forward matmuls per token:
XLA's cost analysis counts the body of a ``lax.scan`` once, not once per step) by a
named accelerator's published peak rate times a stated utilisation.  A config whose
state does not fit a device's memory is refused, naming the largest parameters.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lm_jax import parallel
from lm_jax.errors import ConfigError
from lm_jax.models import ModelConfig, output_layers
from lm_jax.spec import NeuralSpec
from lm_jax.train import step as step_lib
from lm_jax.train.evaluate import compile_segment

# Published dense peak rates (FLOP/s) for the dtype lm_jax trains in (float32; TF32 on
# NVIDIA tensor cores) and device memory (bytes).  Recurrent nets reach a small
# fraction of peak: the utilisation below is stated, not measured on that hardware.
ACCELERATORS = {
  "nvidia-a100-80gb": (156e12, 80e9),  # TF32 tensor core
  "nvidia-h100-sxm": (494.5e12, 80e9),  # TF32 tensor core, dense
  "nvidia-h200": (494.5e12, 141e9),
  "tpu-v4": (275e12, 32e9),  # bf16 MXU (float32 matmuls run as bf16 passes)
  "tpu-v5e": (197e12, 16e9),
}
UTILISATION = 0.3


@dataclasses.dataclass(frozen=True)
class Plan:
  """What a job will need, per device, and how long it should take."""

  devices: int
  model_axis: int  # devices that split each vocabulary-sized parameter (config mesh.model)
  parameters: int
  parameter_bytes: int
  parameter_bytes_per_device: int  # the parameters' shards on one device (their shardings)
  largest: tuple[tuple[str, int], ...]  # (name, bytes) of the biggest parameter arrays
  argument_bytes: int  # per device: state + data as the compiled step receives them
  output_bytes: int
  temp_bytes: int
  init_bytes: int  # per device: the initialiser's state + temporaries
  eval_bytes: int  # per device: one evaluation segment's parameters, ids + temporaries
  eval_rows: int  # eval.batch_size
  flops_per_step: float  # analytic, all devices together
  xla_flops_per_step: float  # the compiled per-device program's cost analysis
  tokens_per_step: int
  steps: int

  @property
  def step_bytes(self) -> int:
    """The step's arguments + temporaries (donated state counted once: outputs alias it)."""
    return self.argument_bytes + self.temp_bytes

  @property
  def peak_bytes(self) -> int:
    """The largest of the step's, the initialiser's and the evaluation's memory per device."""
    return max(self.step_bytes, self.init_bytes, self.eval_bytes)

  def step_seconds(self, accelerator: str, utilisation: float = UTILISATION) -> float:
    peak, _ = ACCELERATORS[accelerator]
    return self.flops_per_step / (self.devices * peak * utilisation)


def flops_per_token(cfg: ModelConfig, counts=None) -> float:
  """3 x the forward matmul FLOPs of one token (forward, input gradient, weight gradient).

  The output layer's share depends on ``model.output`` (and, for the adaptive softmax,
  on how often each cluster is the target: the vocabulary's training ``counts``).
  """
  gates = {"elman": 1, "lstm": 4, "gru": 3, "window": 1}[cfg.kind]
  if cfg.kind == "window":
    hidden = 2 * cfg.context * cfg.embed_dim * cfg.hidden_dim
  else:
    hidden = sum(
      2 * ((cfg.embed_dim if i == 0 else cfg.output_dim) + cfg.output_dim) * gates * cfg.hidden_dim
      + (2 * cfg.hidden_dim * cfg.projection if cfg.projection else 0)
      for i in range(cfg.num_layers)
    )
  return 3.0 * (hidden + output_layers.forward_flops_per_token(cfg, counts))


@dataclasses.dataclass(frozen=True)
class CompiledStep:
  """The job's train step compiled for the visible devices, with what it is called on."""

  cfg: ModelConfig
  executable: Any  # jax.stages.Compiled: (state, data) -> state
  abstract: Any  # the TrainState's shapes
  shardings: Any
  data: dict  # ShapeDtypeStructs of the training stream [B, cols]
  total_steps: int
  mesh: Any
  init: Any  # () -> TrainState: the initialiser the training loop jits


def compile_step(spec: NeuralSpec, vocab, stream_len: int) -> CompiledStep:
  """Lowers and compiles the real train step of ``spec`` from shapes only (nothing allocated)."""
  mesh = parallel.make_mesh(spec.mesh.model)
  parallel.check_divisible(spec.train.batch_size, mesh, "train.batch_size")
  cfg, t = ModelConfig.build(spec.model, vocab), spec.train
  init = functools.partial(step_lib.init_state, spec.seed, cfg, spec.optim, t.batch_size)
  abstract = jax.eval_shape(init)
  shardings = step_lib.state_shardings(abstract, mesh, t.batch_size, cfg)
  data_sharding = parallel.batch_sharded(mesh)
  data = {  # One segment: the stream stays on the host (TrainStream.segment).
    k: jax.ShapeDtypeStruct((t.batch_size, t.seq_len), jnp.int32, sharding=data_sharding)
    for k in ("inputs", "targets")
  }
  steps_per_epoch = max(stream_len // t.batch_size // t.seq_len, 1)
  total = t.num_steps or t.num_epochs * steps_per_epoch
  step_fn = step_lib.jit_train_step(
    cfg, spec.optim, t, steps_per_epoch, total, shardings, data_sharding
  )
  state = step_lib.placed(abstract, shardings)
  executable = step_fn.lower(state, data).compile()
  return CompiledStep(cfg, executable, abstract, shardings, data, total, mesh, init)


def plan(spec: NeuralSpec, vocab, stream_len: int, tokens: int) -> Plan:
  """Compiles the train step of ``spec`` over every visible device, the state's initialiser
  as the training loop jits it and one segment of its evaluation; ``vocab`` gives the sizes."""
  c = compile_step(spec, vocab, stream_len)
  memory = c.executable.memory_analysis()
  init_memory = jax.jit(c.init, out_shardings=c.shardings).lower().compile().memory_analysis()
  params = step_lib.placed(c.abstract, c.shardings).params
  segment = compile_segment(params, c.cfg, spec.eval.batch_size, spec.train.seq_len, c.mesh)
  eval_memory = segment.memory_analysis()
  cost = c.executable.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  leaves = jax.tree_util.tree_flatten_with_path(c.abstract.params)[0]
  sizes = sorted(
    (
      (jax.tree_util.keystr(path), math.prod(x.shape) * np.dtype(x.dtype).itemsize)
      for path, x in leaves
    ),
    key=lambda kv: -kv[1],
  )
  t = spec.train
  tokens_per_step = t.batch_size * t.seq_len
  shards = jax.tree.leaves(
    jax.tree.map(
      lambda x, s: math.prod(s.shard_shape(x.shape)) * np.dtype(x.dtype).itemsize,
      c.abstract.params,
      c.shardings.params,
    )
  )
  return Plan(
    devices=jax.device_count(),
    model_axis=spec.mesh.model,
    parameters=sum(math.prod(x.shape) for _, x in leaves),
    parameter_bytes=sum(b for _, b in sizes),
    parameter_bytes_per_device=int(sum(shards)),
    largest=tuple(sizes[:3]),
    argument_bytes=int(memory.argument_size_in_bytes),
    output_bytes=int(memory.output_size_in_bytes),
    temp_bytes=int(memory.temp_size_in_bytes),
    init_bytes=int(init_memory.output_size_in_bytes + init_memory.temp_size_in_bytes),
    eval_bytes=int(eval_memory.argument_size_in_bytes + eval_memory.temp_size_in_bytes),
    eval_rows=spec.eval.batch_size,
    flops_per_step=flops_per_token(c.cfg, vocab.counts) * tokens_per_step,
    xla_flops_per_step=float((cost or {}).get("flops", float("nan"))),
    tokens_per_step=tokens_per_step,
    steps=max(c.total_steps, math.ceil(tokens / tokens_per_step)) if tokens else c.total_steps,
  )


def zipf_vocab(vocab_size: int):
  """A stand-in vocabulary of ``vocab_size`` predictable words with Zipf counts (p(k) ~ 1/(k+1))."""
  import types

  counts = tuple(int(1e9 / (k + 1)) + 1 for k in range(vocab_size))
  return types.SimpleNamespace(
    size=vocab_size + 1, num_predictable=vocab_size, bos_id=vocab_size, counts=counts
  )


def _duration(secs: float) -> str:
  for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
    if secs >= size:
      return f"{secs / size:.1f} {unit}"
  return f"{secs:.1f} s"


def _gib(b: float) -> str:
  return f"{b / 2**30:.2f} GiB"


def report(p: Plan, accelerators: list[str], utilisation: float = UTILISATION) -> str:
  """The plan as text, one line per fact and per named accelerator."""
  if p.model_axis == 1:
    layout = "data parallel: parameters and optimizer state replicated"
  else:
    layout = (
      f"data {p.devices // p.model_axis} x model {p.model_axis}: vocabulary-sized parameters "
      "and their optimizer state split over the model axis"
    )
  lines = [
    f"devices: {p.devices} ({layout})",
    f"parameters: {p.parameters:,} ({_gib(p.parameter_bytes)} in float32, "
    f"{_gib(p.parameter_bytes_per_device)} per device); largest: "
    + ", ".join(f"{name} {_gib(b)}" for name, b in p.largest),
    f"per device: arguments {_gib(p.argument_bytes)}, outputs {_gib(p.output_bytes)} "
    f"(aliasing the donated state), temporaries {_gib(p.temp_bytes)}: step {_gib(p.step_bytes)}; "
    f"initialising the state {_gib(p.init_bytes)}; evaluating {p.eval_rows} rows "
    f"{_gib(p.eval_bytes)}; peak about {_gib(p.peak_bytes)} (compiled memory analysis)",
    f"per step: {p.tokens_per_step:,} tokens, {p.flops_per_step / 1e12:.4f} TFLOP analytic "
    f"(XLA's per-device count, scan bodies once: {p.xla_flops_per_step / 1e9:.3f} GFLOP)",
    f"steps to the target: {p.steps:,}",
  ]
  for name in accelerators:
    _, memory = _accelerator(name)
    secs = p.step_seconds(name, utilisation)
    lines.append(
      f"{name}: {_gib(memory)} per device, {'fits' if p.peak_bytes <= memory else 'DOES NOT FIT'}; "
      f"at {utilisation:.0%} of peak a step takes {secs * 1e3:.3f} ms, the job "
      f"{_duration(secs * p.steps)}"
    )
  return "\n".join(lines)


def _accelerator(name: str) -> tuple[float, float]:
  if name not in ACCELERATORS:
    raise ConfigError(f"unknown accelerator {name!r}; known: {', '.join(ACCELERATORS)}.")
  return ACCELERATORS[name]


def check_fits(p: Plan, accelerators: list[str]) -> None:
  """ConfigError (one line) if the job does not fit a named accelerator, naming what to shard."""
  for name in accelerators:
    memory = _accelerator(name)[1]
    if p.peak_bytes > memory:
      phase = ""  # evaluation or initialisation, where it needs more than the step
      if p.eval_bytes > p.step_bytes and p.eval_bytes >= p.init_bytes:
        phase = (
          f"evaluation needs {_gib(p.eval_bytes)}, above the step (its {p.eval_rows} rows of "
          "scores; lower eval.batch_size); the step: "
        )
      elif p.init_bytes > p.step_bytes:
        phase = (
          f"initialising the state peaks at {_gib(p.init_bytes)} (its random draws), above "
          "the step; the step: "
        )
      raise ConfigError(
        f"the job needs about {_gib(p.peak_bytes)} per device but a {name} has {_gib(memory)}: "
        f"{phase}state and data {_gib(p.argument_bytes)} (largest {p.largest[0][0]}, "
        f"{_gib(p.largest[0][1])}: a larger mesh.model, now {p.model_axis}, splits the "
        f"vocabulary matrices over more devices), temporaries {_gib(p.temp_bytes)} (lower "
        "train.batch_size or train.seq_len, or put more devices on the data axis)."
      )


def run(config, vocab_size: int | None, tokens: int | None, accelerators: list[str]) -> str:
  """The ``experiments.plan`` job: the report, or a ConfigError if the job does not fit."""
  from lm_jax.spec import parse_neural

  spec = parse_neural(config)
  for name in accelerators:
    _accelerator(name)
  if vocab_size is not None:  # Word frequencies as Zipf's law: p(k) ~ 1 / (k + 1).
    vocab = zipf_vocab(vocab_size)
    stream = tokens or 1_000_000
  else:
    from lm_jax.data.pipeline import load_data

    _, vocab, splits = load_data(spec.data)
    stream = splits["train"].num_tokens
  p = plan(spec, vocab, stream, tokens or 0)
  text = report(p, accelerators)
  print(text, flush=True)
  check_fits(p, accelerators)
  return "ok: the job fits " + ", ".join(accelerators)
