"""Gradient check of the manual BPTT: against ``jax.grad`` and centred finite differences, in float64.

``check_gradients(cfg)`` is what ``python -m experiments.check_bptt`` runs; the
manual backward pass itself lives in ``lm_jax.models.bptt``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np

from lm_jax.errors import ConfigError
from lm_jax.models.bptt import elman_sum_nll, manual_elman_sum_nll, random_params, validate

TINY = 1e-300  # Floor of the relative-error denominator, so all-zero gradients compare as 0.


@dataclasses.dataclass(frozen=True)
class CheckConfig:
  """Sizes, seed and tolerances of check_gradients (see configs/check_bptt.py)."""

  vocab_size: int
  embed_size: int
  hidden_size: int
  batch_size: int
  seq_len: int
  activation: str
  truncation: int
  seed: int
  grad_rtol: float
  fd_rtol: float
  fd_eps: float
  fd_coords: int
  inject_error: str  # "" | a parameter name ("W_h", "layers/0/W_h", "h0") | "carry"

  @classmethod
  def from_config(cls, cfg: Any) -> CheckConfig:
    """From a ConfigDict or mapping; names missing or unknown keys."""
    d = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
    names = {f.name for f in dataclasses.fields(cls)}
    if set(d) != names:
      raise ConfigError(
        f"check config: missing {sorted(names - set(d))}, unknown "
        f"{sorted(set(d) - names)}; start from configs/check_bptt.py."
      )
    return cls(**d)

  def __post_init__(self):
    # A check over empty arrays would print 0 errors and "OK": refuse sizes that allow it.
    for name in ("vocab_size", "embed_size", "hidden_size", "batch_size", "seq_len", "fd_coords"):
      if getattr(self, name) < 1:
        raise ConfigError(f"check config: {name} must be >= 1, got {getattr(self, name)}.")
    for name in ("grad_rtol", "fd_rtol", "fd_eps"):
      if not getattr(self, name) > 0:
        raise ConfigError(f"check config: {name} must be > 0, got {getattr(self, name)}.")


class ParamCheck(NamedTuple):
  """Errors of one gradient tensor; fd_* are None when finite differences do not apply."""

  name: str
  shape: tuple[int, ...]
  grad_abs: float
  grad_rel: float
  fd_abs: float | None
  fd_rel: float | None


@dataclasses.dataclass(frozen=True)
class CheckReport:
  """The outcome of check_gradients, printable with format()."""

  config: CheckConfig
  loss: float
  rows: tuple[ParamCheck, ...]

  def failures(self) -> list[str]:
    """One message per tolerance exceeded, naming the parameter."""
    c, out = self.config, []
    for r in self.rows:
      if not r.grad_rel <= c.grad_rtol:
        out.append(
          f"{r.name}: manual vs jax.grad relative error {r.grad_rel:.2e} > {c.grad_rtol:.0e}"
        )
      if r.fd_rel is not None and not r.fd_rel <= c.fd_rtol:
        out.append(
          f"{r.name}: manual vs finite differences relative error {r.fd_rel:.2e} > {c.fd_rtol:.0e}"
        )
    return out

  def failed_names(self) -> list[str]:
    """Parameters with at least one error above tolerance."""
    return list(dict.fromkeys(m.split(":")[0] for m in self.failures()))

  @property
  def ok(self) -> bool:
    return not self.failures()

  def format(self) -> str:
    c = self.config
    trunc = f"{c.truncation}" if c.truncation else "0 (full BPTT)"
    fmt = lambda v: f"{'n/a':>10}" if v is None else f"{v:10.2e}"
    lines = [
      f"Manual BPTT gradient check, float64: V={c.vocab_size} E={c.embed_size} "
      f"H={c.hidden_size} B={c.batch_size} T={c.seq_len} activation={c.activation} "
      f"truncation={trunc} seed={c.seed}",
      f"loss L = (1/(B*T)) sum_b sum_t L(t) = {self.loss:.6f}",
      "relative error = max|manual - ref| / max(max|ref|, 1e-300) over the whole tensor "
      "(jax.grad) or the sampled coordinates (finite differences)",
      f"{'':26}{'manual vs jax.grad':<24}manual vs centred FD ({c.fd_coords} coords, eps {c.fd_eps:.0e})",
      f"{'parameter':<14}{'shape':<12}{'max abs':>10}{'max rel':>10}    {'max abs':>10}{'max rel':>10}",
    ]
    for r in self.rows:
      lines.append(
        f"{r.name:<14}{str(r.shape):<12}{fmt(r.grad_abs)}{fmt(r.grad_rel)}    "
        f"{fmt(r.fd_abs)}{fmt(r.fd_rel)}"
      )
    if c.truncation:
      lines.append("finite differences: n/a, truncated BPTT is not the gradient of L")
    failures = self.failures()
    lines += [f"FAIL {m}" for m in failures] or [
      f"OK: every parameter within tolerance (jax.grad rtol {c.grad_rtol:.0e}, "
      f"finite differences rtol {c.fd_rtol:.0e})"
    ]
    return "\n".join(lines)


def _path_name(path: tuple) -> str:
  return "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)


def _errors(a: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
  err = float(np.max(np.abs(a - ref), initial=0.0))
  return err, err / max(float(np.max(np.abs(ref), initial=0.0)), TINY)


def check_gradients(cfg: Any) -> CheckReport:
  """Compares manual BPTT with jax.grad and centred finite differences in float64."""
  c = CheckConfig.from_config(cfg)
  B, T, V = c.batch_size, c.seq_len, c.vocab_size
  with jax.enable_x64(True):
    k_p, k_h, k_x, k_y = jax.random.split(jax.random.PRNGKey(c.seed), 4)
    theta = random_params(k_p, V, c.embed_size, c.hidden_size, jnp.float64)
    theta["h0"] = jax.random.uniform(k_h, (B, c.hidden_size), jnp.float64, -0.5, 0.5)
    validate(theta, c.activation, c.truncation)
    names = [_path_name(p) for p, _ in jax.tree_util.tree_flatten_with_path(theta)[0]]
    hits = [i for i, n in enumerate(names) if c.inject_error in (n, n.split("/")[-1])]
    if c.inject_error not in ("", "carry") and not hits:
      raise ConfigError(f"inject_error={c.inject_error!r}: use '', 'carry' or one of {names}.")
    x_BxT = jax.random.randint(k_x, (B, T), 0, V)
    y_BxT = jax.random.randint(k_y, (B, T), 0, V)
    w_BxT = jnp.ones((B, T), jnp.float64)

    def loss(theta, fn, truncation):
      params = {k: v for k, v in theta.items() if k != "h0"}
      sum_nll, _ = fn(params, theta["h0"], x_BxT, y_BxT, w_BxT, c.activation, truncation)
      return sum_nll / (B * T)  # the lecture's mean over t, averaged over the batch too

    # inject_error="carry" is a classic bug: the carried ∂L/∂h(t-1) is dropped (k = 1).
    manual_k = 1 if c.inject_error == "carry" else c.truncation
    both = jax.jit(
      lambda th: (
        jax.grad(loss)(th, manual_elman_sum_nll, manual_k),
        jax.grad(loss)(th, elman_sum_nll, c.truncation),
      )
    )
    g_man, g_ref = both(theta)
    g_man_l = [np.asarray(a) for a in jax.tree.leaves(g_man)]
    g_ref_l = [np.asarray(a) for a in jax.tree.leaves(g_ref)]
    if hits and c.inject_error != "carry":
      g_man_l[hits[0]] = g_man_l[hits[0]] * (1 + 1e-3)  # a 0.1% error in one gradient
    full_loss = lambda th: loss(th, elman_sum_nll, 0)
    fd_l = (
      [None] * len(names) if c.truncation else _finite_differences(full_loss, theta, g_ref_l, c)
    )
    rows = []
    for name, man, ref, fd in zip(names, g_man_l, g_ref_l, fd_l):
      fd_err = (None, None) if fd is None else _errors(man.ravel()[fd[0]], fd[1])
      rows.append(ParamCheck(name, ref.shape, *_errors(man, ref), *fd_err))
    return CheckReport(c, float(jax.jit(full_loss)(theta)), tuple(rows))


def _finite_differences(loss_fn, theta, g_ref_l, c: CheckConfig) -> list:
  """Per leaf: (coords, centred differences) at its largest gradient and random coordinates."""
  flat, unravel = jax.flatten_util.ravel_pytree(theta)
  rng, offsets, coords_l = (
    np.random.default_rng(c.seed),
    np.cumsum([0] + [g.size for g in g_ref_l]),
    [],
  )
  for g in g_ref_l:
    top = int(np.argmax(np.abs(g)))  # so the relative error's denominator is max|grad|
    coords_l.append(
      np.array([top] + [i for i in rng.permutation(g.size) if i != top])[: c.fd_coords]
    )
  idx = np.concatenate([cs + o for cs, o in zip(coords_l, offsets)])
  step_NxP = c.fd_eps * jax.nn.one_hot(idx, flat.size, dtype=flat.dtype)
  batched = jax.jit(jax.vmap(lambda v: loss_fn(unravel(v))))
  d_N = np.asarray(batched(flat + step_NxP) - batched(flat - step_NxP)) / (2 * c.fd_eps)
  return list(zip(coords_l, np.split(d_N, np.cumsum([cs.size for cs in coords_l])[:-1])))
