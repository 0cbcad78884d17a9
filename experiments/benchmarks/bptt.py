"""Manual BPTT against autodiff: gradient steps/s and memory of the PTB-size Elman LM.

Both programs compute ∂/∂params of the same mean loss, measured in one run on this
machine: `manual` is jax.value_and_grad of lm_jax.models.bptt.manual_elman_sum_nll
(its custom_vjp runs the hand-derived backward pass), `autodiff` that of its twin
elman_sum_nll. Also runnable alone: `python -m experiments.benchmarks.bptt [--quick]`.
"""

from __future__ import annotations

import resource
import statistics
import sys
import time

import jax
import jax.numpy as jnp

from lm_jax.models import bptt

PTB = {
  "V": 10000,
  "E": 200,
  "H": 200,
  "B": 20,
  "T": 35,
}  # the PyTorch word-language-model example's defaults
VARIANTS = {"manual": bptt.manual_elman_sum_nll, "autodiff": bptt.elman_sum_nll}
MiB = 2.0**20


def _problem(dtype=jnp.float32) -> tuple:
  """Random params and one PTB-shaped batch (the data do not change the speed)."""
  p = PTB
  k_p, k_x, k_y = jax.random.split(jax.random.PRNGKey(0), 3)
  params = bptt.random_params(k_p, p["V"], p["E"], p["H"], dtype)
  x_BxT = jax.random.randint(k_x, (p["B"], p["T"]), 0, p["V"])
  y_BxT = jax.random.randint(k_y, (p["B"], p["T"]), 0, p["V"])
  return params, jnp.zeros((p["B"], p["H"]), dtype), x_BxT, y_BxT, jnp.ones((p["B"], p["T"]), dtype)


def _compile(variant: str, activation: str = "tanh"):
  """The jitted, compiled value_and_grad of the mean loss; and its arguments."""
  fn, args = VARIANTS[variant], _problem()

  def mean_loss(params, h0_BxH, x_BxT, y_BxT, w_BxT):
    return fn(params, h0_BxH, x_BxT, y_BxT, w_BxT, activation)[0] / jnp.sum(w_BxT)

  return jax.jit(jax.value_and_grad(mean_loss)).lower(*args).compile(), args


def _peak_rss_mib() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def run(quick: bool = False) -> str:
  """Markdown section: steps/s and memory of manual BPTT vs autodiff, same run."""
  rounds, steps = (2, 5) if quick else (5, 20)
  compiled, times, grads = {}, {v: [] for v in VARIANTS}, {}
  for v in VARIANTS:
    compiled[v], args = _compile(v)
    grads[v] = jax.block_until_ready(compiled[v](*args))  # warm-up, and the gradients
  for _ in range(rounds):  # alternate, so both variants see the same machine load
    for v in VARIANTS:
      t = time.perf_counter()
      for _ in range(steps):
        jax.block_until_ready(compiled[v](*args))
      times[v].append((time.perf_counter() - t) / steps)
  rel = max(
    float(jnp.max(jnp.abs(m - a)) / jnp.max(jnp.abs(a)))
    for m, a in zip(jax.tree.leaves(grads["manual"][1]), jax.tree.leaves(grads["autodiff"][1]))
  )
  p = PTB
  lines = [
    "## bptt",
    "",
    f"Manual BPTT vs autodiff for the Elman LM (tanh, one layer) at PTB size: V={p['V']}, "
    f"E={p['E']}, H={p['H']}, B={p['B']}, T={p['T']}, float32, on {jax.devices()[0].device_kind} "
    f"(jax {jax.__version__}). One step = value and gradient of the mean loss (no optimizer); "
    f"median of {rounds} rounds of {steps} steps, variants alternating. XLA temp = scratch "
    "buffers of the compiled step (`memory_analysis().temp_size_in_bytes`), the part of peak "
    "memory that differs between the two.",
    "",
    "| gradient | steps/s | ms/step | XLA temp MiB | XLA args+outputs MiB |",
    "|---|---:|---:|---:|---:|",
  ]
  for v in VARIANTS:
    sec = statistics.median(times[v])
    mem = compiled[v].memory_analysis()
    io = (mem.argument_size_in_bytes + mem.output_size_in_bytes) / MiB
    lines.append(
      f"| {v} | {1 / sec:.1f} | {1000 * sec:.1f} | {mem.temp_size_in_bytes / MiB:.1f} | {io:.1f} |"
    )
  speedup = statistics.median(times["autodiff"]) / statistics.median(times["manual"])
  lines += [
    "",
    f"Manual / autodiff speed: {speedup:.2f}x. Max relative gradient difference "
    f"(float32, max|manual - autodiff| / max|autodiff| over parameters): {rel:.1e}. "
    f"Peak RSS of this process (jax and XLA included, both variants): {_peak_rss_mib():.0f} MiB.",
  ]
  return "\n".join(lines) + "\n"


if __name__ == "__main__":
  print(run(quick="--quick" in sys.argv[1:]))
