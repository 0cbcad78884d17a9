"""The training engine: one jitted train step, scan-based evaluation, resumable loop.

``train_and_evaluate(config, workdir)`` is the whole run: data → model → steps →
``metrics.jsonl`` + orbax checkpoints → final valid/test ``EvalResult``s.  The
step counter is the only data position: step ``s`` trains on segment
``s % steps_per_epoch`` of the stream and uses dropout key ``fold_in(rng, s)``,
so a restored state continues exactly where it stopped.  Training metrics are
summed on the device and pulled to the host only at log and checkpoint steps.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import time
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging

from lm_jax import checkpoint as ckpt_lib
from lm_jax import losses, optim, parallel
from lm_jax.data import batching
from lm_jax.data.pipeline import load_data
from lm_jax.data.tokens import TokenArray
from lm_jax.config_fields import check_types, freeze
from lm_jax.errors import ConfigError, NonFiniteLossError
from lm_jax.evaluation import EvalResult, from_token_logprobs, write_token_dump
from lm_jax.metric_writer import MetricWriter
from lm_jax.models import Model, ModelConfig, get_model, model_config, output_weights
from lm_jax.rundir import ensure_writable, write_run_info

# Wall-clock fields of training records; every other field is a function of config + seed.
TIMING_KEYS = ("steps_per_sec", "tokens_per_sec", "elapsed_s", "eta_s", "compile_s")
NORMALIZERS = ("sequences", "tokens")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """``config.train``, frozen."""

  batch_size: int = 20
  seq_len: int = 35                   # truncated-BPTT segment length
  num_epochs: int = 1
  num_steps: int | None = None        # overrides num_epochs when set
  carry_state: bool = True            # carry the RNN state across segments (stop_gradient between)
  loss_normalizer: str = "sequences"  # Σnll / B (Zaremba's "sum over time, mean over batch") or / (B·T)
  log_every_steps: int = 100
  checkpoint_every_steps: int = 1000  # and at every epoch end
  keep_checkpoints: int = 2
  eval_every_epochs: int = 1
  eval_every_steps: int | None = None  # also evaluate valid every this many steps (learning curves)


@dataclasses.dataclass(frozen=True)
class RunSpec:
  """A validated config: frozen pieces that may cross into jitted code."""

  model: ModelConfig
  optim: optim.OptimConfig
  train: TrainConfig
  eval_batch_size: int
  seed: int
  dump_tokens: bool = False  # write {valid,test}.tokens.tsv after the final evaluation


def parse_config(config: ml_collections.ConfigDict) -> RunSpec:
  """Validates the whole config before any data is read; raises ConfigError naming the fix."""
  train = freeze("train", {k: config.train[k] for k in config.train.keys()}, TrainConfig)
  if train.loss_normalizer not in NORMALIZERS:
    raise ConfigError(f"train.loss_normalizer={train.loss_normalizer!r}; use one of {NORMALIZERS}.")
  for name in ("batch_size", "seq_len", "num_epochs", "log_every_steps",
               "checkpoint_every_steps", "keep_checkpoints", "eval_every_epochs"):
    if getattr(train, name) < 1:
      raise ConfigError(f"train.{name} must be >= 1, got {getattr(train, name)}.")
  for name in ("num_steps", "eval_every_steps"):
    if getattr(train, name) is not None and getattr(train, name) < 1:
      raise ConfigError(f"train.{name} must be >= 1 (or None), got {getattr(train, name)}.")
  check_types("eval", {"batch_size": config.eval.batch_size, "dump_tokens": config.eval.dump_tokens},
              {"batch_size": int, "dump_tokens": bool})
  check_types("", {"seed": config.seed}, {"seed": int})
  if config.eval.batch_size < 1:
    raise ConfigError(f"eval.batch_size must be >= 1, got {config.eval.batch_size}.")
  unknown = set(config.eval.keys()) - {"batch_size", "dump_tokens"}
  if unknown:
    raise ConfigError(f"unknown config.eval keys {sorted(unknown)}; valid keys: batch_size, dump_tokens.")
  model = model_config(config.model)
  if model.kind == "window" and not train.carry_state:
    # A reset fills the window with <s> mid-sentence during training only, not in evaluation.
    raise ConfigError("the window model needs train.carry_state=True (its state is the last "
                      "words; resetting it would make every segment look like a sentence start).")
  return RunSpec(model, optim.optim_config(config.optim), train,
                 config.eval.batch_size, int(config.seed), bool(config.eval.dump_tokens))


@flax.struct.dataclass
class TrainState:
  """Everything a resumed run needs; ``acc`` sums the metrics since the last log record."""

  step: jax.Array
  params: Any
  opt_state: Any
  carry: Any
  plateau: Any
  rng: jax.Array
  acc: dict


def _fresh_acc() -> dict:
  return {"nll": jnp.zeros((), jnp.float32), "steps": jnp.zeros((), jnp.int32),
          "lr": jnp.zeros((), jnp.float32), "bad_step": jnp.full((), -1, jnp.int32)}


def state_shardings(state: TrainState, mesh, batch_size: int) -> TrainState:
  """Where each leaf lives: RNN state rows split over the data axis, everything else replicated."""
  rep = parallel.replicated(mesh)
  return jax.tree.map(lambda _: rep, state).replace(
      carry=jax.tree.map(lambda x: parallel.rows_sharding(mesh, x, batch_size), state.carry))


def init_state(spec: RunSpec, model: Model, tx: optax.GradientTransformation,
               mesh=None) -> TrainState:
  """Params from ``fold_in(seed, 0)``; dropout keys later come from ``fold_in(rng, step)``."""
  root = jax.random.PRNGKey(spec.seed)
  params = jax.jit(model.init, static_argnums=1)(jax.random.fold_in(root, 0), spec.model)
  state = TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                     carry=model.init_carry(spec.model, spec.train.batch_size),
                     plateau=optim.make_plateau(spec.optim).init(params),
                     rng=jax.random.fold_in(root, 1), acc=_fresh_acc())
  # Placed like a restored state, so fresh and resumed runs share compiled steps.
  mesh = parallel.make_mesh() if mesh is None else mesh
  return parallel.put_tree(state, state_shardings(state, mesh, spec.train.batch_size))


def _manual_sum_nll(params, carry, inputs_BxT, targets_BxT, cfg: ModelConfig):
  from lm_jax.models.bptt import manual_elman_sum_nll  # Deferred: only grad="manual" needs it.
  weights_BxT = jnp.ones(targets_BxT.shape, jnp.float32)
  sum_nll, h_BxH = manual_elman_sum_nll(params, carry[0]["h"], inputs_BxT, targets_BxT,
                                        weights_BxT, cfg.activation)
  return sum_nll, [{"h": h_BxH}]


@functools.partial(jax.jit, donate_argnums=0, static_argnames=(
    "model_cfg", "optim_cfg", "train_cfg", "steps_per_epoch", "total_steps"))
def train_step(state: TrainState, data: dict, *, model_cfg: ModelConfig,
               optim_cfg: optim.OptimConfig, train_cfg: TrainConfig, steps_per_epoch: int,
               total_steps: int) -> TrainState:
  """One SGD step on segment ``step % steps_per_epoch`` of ``data`` (the whole stream, [B, R])."""
  cfg, t, model = model_cfg, train_cfg, get_model(model_cfg)
  pos = state.step % steps_per_epoch
  inputs_BxT = jax.lax.dynamic_slice_in_dim(data["inputs"], pos * t.seq_len, t.seq_len, axis=1)
  targets_BxT = jax.lax.dynamic_slice_in_dim(data["targets"], pos * t.seq_len, t.seq_len, axis=1)
  fresh = (pos == 0) | (not t.carry_state)  # A new epoch restarts the text: restart the state.
  carry = jax.tree.map(lambda z, c: jnp.where(fresh, z, c),
                       model.init_carry(cfg, t.batch_size), state.carry)
  rng = jax.random.fold_in(state.rng, state.step)
  normalizer = float(t.batch_size if t.loss_normalizer == "sequences" else t.batch_size * t.seq_len)

  def loss_fn(params):
    if cfg.grad == "manual":
      sum_nll, new_carry = _manual_sum_nll(params, carry, inputs_BxT, targets_BxT, cfg)
    else:
      h_BxTxH, new_carry = model.apply(params, carry, inputs_BxT, cfg, rng=rng, train=True,
                                       hidden=True)
      sum_nll = losses.output_sum_nll(h_BxTxH, *output_weights(params, cfg), targets_BxT)
    return sum_nll / normalizer, (sum_nll, new_carry)

  (_, (sum_nll, new_carry)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  updates, opt_state = optim.make_optimizer(optim_cfg).update(grads, state.opt_state, state.params)
  lr = optim.learning_rate(optim_cfg, state.step, steps_per_epoch, total_steps) * state.plateau.scale
  params = optax.apply_updates(state.params, jax.tree.map(lambda u: -lr * u, updates))
  acc = state.acc
  first_bad = (acc["bad_step"] < 0) & ~jnp.isfinite(sum_nll)
  acc = {"nll": acc["nll"] + sum_nll, "steps": acc["steps"] + 1, "lr": lr.astype(jnp.float32),
         "bad_step": jnp.where(first_bad, state.step + 1, acc["bad_step"])}
  # Truncated BPTT: the next segment starts from this state but sends no gradient back.
  return state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                       carry=jax.lax.stop_gradient(new_carry), acc=acc)


def eval_step(params, carry, batch: dict, cfg: ModelConfig):
  """``(nll_BxT, carry)``: per-position negative log-likelihood of one [B, T] eval segment."""
  logits_BxTxV, carry = get_model(cfg).apply(params, carry, batch["inputs"], cfg, train=False)
  return losses.token_nll(logits_BxTxV, batch["targets"]), carry


@functools.partial(jax.jit, static_argnames=("cfg", "batch_size"))
def _eval_token_nll(params, grid_SxBxT: dict, *, cfg: ModelConfig, batch_size: int):
  """eval_step scanned over the segments of a grid, carrying the state along each row: [S, B, T]."""
  def body(carry, batch):
    nll_BxT, carry = eval_step(params, carry, batch, cfg)
    return carry, nll_BxT
  return jax.lax.scan(body, get_model(cfg).init_carry(cfg, batch_size), grid_SxBxT)[1]


def _put_grid(grid_SxBxT: dict, batch_size: int, mesh) -> dict:
  """Eval segments on the mesh, rows split over the data axis when they divide evenly."""
  mesh = parallel.make_mesh() if mesh is None else mesh
  return {k: parallel.put(v, parallel.rows_sharding(mesh, v, batch_size, axis=1))
          for k, v in grid_SxBxT.items()}


def token_logprobs(params, tokens: TokenArray, cfg: ModelConfig, batch_size: int,
                   seq_len: int, mesh=None) -> np.ndarray:
  """ln p of every scored token in corpus order; each token is scored once (``batching.eval_grid``)."""
  grid = batching.eval_grid(tokens, cfg.bos_id, batch_size, seq_len)
  segs = grid.num_segments
  arrays = {"inputs": grid.inputs_BxL, "targets": grid.targets_BxL}
  # [B, S*T] -> [S, B, T]: the scan steps through segments.
  grid_SxBxT = {k: np.moveaxis(v.reshape(batch_size, segs, seq_len), 1, 0) for k, v in arrays.items()}
  grid_SxBxT = _put_grid(grid_SxBxT, batch_size, mesh)
  nll_SxBxT = parallel.fetch(_eval_token_nll(params, grid_SxBxT, cfg=cfg, batch_size=batch_size))
  nll_BxL = np.moveaxis(nll_SxBxT, 0, 1).reshape(batch_size, segs * seq_len)
  out = np.empty(tokens.num_tokens, np.float64)
  valid = grid.index_BxL >= 0
  out[grid.index_BxL[valid]] = -nll_BxL[valid]
  return out


def evaluate(params, tokens: TokenArray, split: str, cfg: ModelConfig, batch_size: int,
             seq_len: int, mesh=None) -> EvalResult:
  """Sums of a split under lm_jax's convention, accumulated in float64 from the per-token scores."""
  logp = token_logprobs(params, tokens, cfg, batch_size, seq_len, mesh)
  return from_token_logprobs(split, logp, tokens.oov, tokens.num_sentences)


def _raise_if_nonfinite(acc: dict, ckpt: ckpt_lib.Checkpointer) -> None:
  bad = int(acc["bad_step"])
  if bad >= 0:
    ckpt.close()  # The saves so far hold finite states; let them land on disk.
    raise NonFiniteLossError(
        f"the training loss became non-finite at step {bad} (it is {float(acc['nll'])} summed since "
        f"the last log); stopped without saving that state. The last good checkpoint is step "
        f"{ckpt.latest_step()} in {ckpt.directory}. Lower optim.learning_rate, set optim.clip_norm, "
        "or check the data.")


def _train_record(acc: dict, step: int, spe: int, tokens_per_step: int) -> dict:
  """The loss since the last record (pulled ``acc``); wall-clock fields are added by the caller."""
  loss = float(acc["nll"]) / (int(acc["steps"]) * tokens_per_step)
  return {"step": step, "epoch": step / spe, "loss": loss,
          "perplexity": math.exp(min(loss, 700.0)), "lr": float(acc["lr"])}


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       stop_after: int | None = None) -> dict[str, EvalResult]:
  """Trains in ``workdir`` (resuming from its latest checkpoint); returns final valid/test results.

  ``stop_after`` checkpoints and returns ``{}`` once that step is done, as a preempted job would.
  """
  t_start = time.perf_counter()  # elapsed_s counts from here: data loading and compilation included.
  parallel.initialize_distributed()  # Before any computation: every process joins one mesh.
  spec = parse_config(config)
  mesh = parallel.make_mesh()
  parallel.check_divisible(spec.train.batch_size, mesh, "train.batch_size")
  ensure_writable(workdir)  # Fail fast, naming the path, not from deep inside orbax.
  raw, vocab, splits = load_data(config.data)
  spec = dataclasses.replace(spec, model=spec.model.with_vocab(vocab))
  model, t = get_model(spec.model), spec.train
  stream = batching.train_stream(splits["train"], vocab.bos_id, t.batch_size, t.seq_len)
  spe, tokens_per_step = stream.steps_per_epoch, stream.tokens_per_step
  total = t.num_steps or t.num_epochs * spe
  state = init_state(spec, model, optim.make_optimizer(spec.optim), mesh)
  meta = ckpt_lib.run_meta(config, vocab, state.params, raw.checksums)
  ckpt = ckpt_lib.Checkpointer(workdir, t.keep_checkpoints)
  writer = MetricWriter(workdir)
  if (start := ckpt.latest_step()) is not None:
    state = ckpt.restore(state, meta, start)  # Concrete target: restores onto its shardings.
    ckpt_lib.rewind_metrics(writer.path, start)
    logging.info("resuming from the checkpoint at step %d of %d", start, total)
  write_run_info(workdir, config, vocab, raw)
  logging.info("%s: %d parameters, %d steps/epoch, %d steps, %d tokens/step", spec.model.kind,
               sum(x.size for x in jax.tree.leaves(state.params)), spe, total, tokens_per_step)
  # Rows of the stream (and of the RNN state) split over the devices; XLA sums the gradients.
  data = parallel.put_tree({"inputs": stream.inputs_BxR, "targets": stream.targets_BxR},
                           parallel.batch_sharded(mesh))
  step_fn = functools.partial(train_step, model_cfg=spec.model, optim_cfg=spec.optim,
                              train_cfg=t, steps_per_epoch=spe, total_steps=total)
  run_eval = lambda params, split: evaluate(params, splits[split], split, spec.model,
                                            spec.eval_batch_size, t.seq_len, mesh)
  step, timing, first_call = int(parallel.fetch(state.step)), {}, True
  t_last = time.perf_counter()
  step_last = step
  try:
    with ckpt_lib.Preemption() as preempt:
      while step < total:
        state = step_fn(state, data)
        step += 1
        if first_call:  # It compiles (unless this process already compiled this config).
          jax.block_until_ready(state.step)
          now = time.perf_counter()
          timing, first_call, t_last, step_last = {"compile_s": now - t_last}, False, now, step
          logging.info("first step (compilation included) took %.1fs", timing["compile_s"])
        epoch_end = step % spe == 0
        stop = preempt.requested or (stop_after is not None and step >= stop_after)
        if step % t.log_every_steps == 0 or step == total or epoch_end:
          acc = jax.tree.map(parallel.fetch, state.acc)
          _raise_if_nonfinite(acc, ckpt)
          now = time.perf_counter()
          rec = {**_train_record(acc, step, spe, tokens_per_step), "elapsed_s": now - t_start, **timing}
          if step > step_last:  # Steps timed since the last record (the compiling one is not).
            sps = (step - step_last) / (now - t_last)
            rec.update(steps_per_sec=sps, tokens_per_sec=sps * tokens_per_step, eta_s=(total - step) / sps)
          writer.write(rec)
          logging.info("step %d/%d epoch %.2f loss %.4f ppl %.2f lr %.4g | %.2f steps/s %.0f tok/s "
                       "ETA %.0fs", step, total, rec["epoch"], rec["loss"], rec["perplexity"],
                       rec["lr"], rec.get("steps_per_sec", 0.0), rec.get("tokens_per_sec", 0.0),
                       rec.get("eta_s", 0.0))
          state = state.replace(acc=parallel.put_tree(
              {**_fresh_acc(), "bad_step": state.acc["bad_step"]}, parallel.replicated(mesh)))
          timing, t_last, step_last = {}, now, step
        epoch_eval = epoch_end and (step // spe) % t.eval_every_epochs == 0
        if epoch_eval or (t.eval_every_steps and step % t.eval_every_steps == 0):
          jax.block_until_ready(state.step)  # Queued train steps count as training time.
          tic = time.perf_counter()
          res = run_eval(state.params, "valid")
          writer.write({**res.record(), "step": step, "epoch": step / spe,
                        "elapsed_s": time.perf_counter() - t_start})
          logging.info("step %d (epoch %.2f): valid perplexity %.2f, %.4f nats/token", step,
                       step / spe, res.perplexity, res.nll / res.tokens)
          if epoch_eval:  # Plateau schedules look at epoch ends only.
            plateau = optim.plateau_update(spec.optim, state.plateau, res.nll / res.tokens)
            state = state.replace(plateau=parallel.put_tree(plateau, parallel.replicated(mesh)))
          t_last += time.perf_counter() - tic  # Steps/s measures training only.
        if epoch_end or step % t.checkpoint_every_steps == 0 or step == total or stop:
          _raise_if_nonfinite(jax.tree.map(parallel.fetch, state.acc), ckpt)
          ckpt.save(step, state, meta)
        if stop:
          logging.info("stopping after step %d; rerun with the same --workdir to resume.", step)
          return {}
    ckpt.wait()
    results = {}
    for split in ("valid", "test"):
      tokens = splits[split]
      logp = token_logprobs(state.params, tokens, spec.model, spec.eval_batch_size, t.seq_len, mesh)
      res = results[split] = from_token_logprobs(split, logp, tokens.oov, tokens.num_sentences)
      writer.write({**res.record(), "step": step, "epoch": step / spe, "final": True,
                    "elapsed_s": time.perf_counter() - t_start,
                    "vocab_hash": vocab.hash, "carry_state": t.carry_state,
                    "reset_at_eos": spec.model.reset_at_eos})
      logging.info("final %s perplexity %.2f (%d tokens, %d OOVs)", split, res.perplexity,
                   res.tokens, res.oovs)
      if spec.dump_tokens:  # The same scores the record was summed from.
        write_token_dump(os.path.join(workdir, f"{split}.tokens.tsv"), tokens, logp, vocab)
    return results
  finally:
    ckpt.close()
