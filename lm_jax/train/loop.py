"""The training loop: spec -> run directory -> data -> jitted steps -> checkpoints -> final results.

``train_and_evaluate(config, workdir)`` parses the whole config before anything
else, takes the workdir's lock, resumes from its newest intact checkpoint and
rewinds ``metrics.jsonl`` to it (from step 0 when there is none), so a killed
run ends with the records of an uninterrupted one.  The state's shardings are
declared once, on the jitted init and step functions; XLA inserts the
collectives.  Wall-clock bookkeeping lives in ``Clock``, outside the step logic.
"""

from __future__ import annotations

import functools
import math
import time

import jax
import numpy as np
from absl import logging

from lm_jax import host_memory, parallel
from lm_jax.checkpoint import Checkpointer, Preemption, run_meta
from lm_jax.data import batching
from lm_jax.data.pipeline import load_data
from lm_jax.errors import NonFiniteLossError
from lm_jax.evaluation import EvalResult, token_dump
from lm_jax.models import ModelConfig
from lm_jax.rundir import RunDir
from lm_jax.spec import NeuralSpec, parse_neural
from lm_jax.train import step as step_lib
from lm_jax.train.evaluate import evaluate

# Wall-clock fields of training records; every other field is a function of config + seed.
TIMING_KEYS = ("steps_per_sec", "tokens_per_sec", "elapsed_s", "eta_s", "compile_s")


class Clock:
  """Wall-clock fields for the records: elapsed time, compile time, steps/s since the last record."""

  def __init__(self, total_steps: int, tokens_per_step: int, start: float):
    self.start, self.last = start, time.perf_counter()
    self.total, self.tokens_per_step = total_steps, tokens_per_step
    self.last_step, self.pending = None, {}

  def elapsed(self) -> float:
    return time.perf_counter() - self.start

  def compiled(self, step: int) -> None:
    """After the first step of this process (compilation included) has finished."""
    now = time.perf_counter()
    self.pending = {"compile_s": now - self.last}
    self.last, self.last_step = now, step
    logging.info("first step (compilation included) took %.1fs", self.pending["compile_s"])

  def fields(self, step: int) -> dict:
    """Timing fields of a training record at ``step``; steps/s counts training time only."""
    now = time.perf_counter()
    out = {"elapsed_s": now - self.start, **self.pending}
    if self.last_step is not None and step > self.last_step:
      sps = (step - self.last_step) / (now - self.last)
      out.update(
        steps_per_sec=sps,
        tokens_per_sec=sps * self.tokens_per_step,
        eta_s=(self.total - step) / sps,
      )
    self.last, self.last_step, self.pending = now, step, {}
    return out

  def exclude(self, seconds: float) -> None:
    """Time spent outside training (evaluation) does not count in steps/s."""
    self.last += seconds


def _check_finite(acc: dict, ckpt: Checkpointer, vocab_size: int) -> None:
  bad = int(acc["bad_step"])
  if bad >= 0:
    ckpt.close()  # The saves so far hold good states; let them land on disk.
    loss, last = float(acc["bad_nll"]), ckpt.latest_step()
    kept = (
      f"the last good checkpoint is step {last} in {ckpt.directory}"
      if last is not None
      else ("no checkpoint had been written yet")
    )
    raise NonFiniteLossError(
      f"training diverged at step {bad}: loss {loss:.4g} nats/token (the uniform model scores "
      f"ln V = {math.log(vocab_size):.2f}; the run stops above {step_lib.DIVERGENCE_FACTOR:g}x "
      f"that, or at NaN/inf); that state was not saved, {kept}. Lower optim.learning_rate, set "
      "optim.clip_norm, or check the data."
    )


def _train_record(acc: dict, step: int, spe: int, tokens_per_step: int) -> dict:
  """The loss since the last record (pulled ``acc``)."""
  loss = float(acc["nll"]) / (int(acc["steps"]) * tokens_per_step)
  return {
    "kind": "train",
    "step": step,
    "epoch": step / spe,
    "loss": loss,
    "perplexity": math.exp(min(loss, 700.0)),
    "lr": float(acc["lr"]),
  }


def train_and_evaluate(
  config, workdir: str, *, stop_after: int | None = None
) -> dict[str, EvalResult]:
  """Trains in ``workdir`` (resuming from its newest intact checkpoint); returns valid/test results.

  ``stop_after`` checkpoints and returns ``{}`` once that step is done, as a preempted job would.
  """
  clock_start = time.perf_counter()  # elapsed_s counts data loading and compilation too.
  spec = parse_neural(config)  # Everything is checked before any file is read or written.
  host_memory.for_training(spec.model.output)  # Before the backend starts its threads.
  parallel.initialize_distributed()  # Before any computation: every process joins one mesh.
  mesh = parallel.make_mesh(spec.mesh.model)
  parallel.check_divisible(spec.train.batch_size, mesh, "train.batch_size")
  with RunDir.create(workdir, "neural", primary=jax.process_index() == 0) as run:
    return _run(spec, run, mesh, clock_start, stop_after)


def _run(spec: NeuralSpec, run: RunDir, mesh, clock_start: float, stop_after: int | None):
  raw, vocab, splits = load_data(spec.data)
  cfg, t = ModelConfig.build(spec.model, vocab), spec.train
  stream = batching.train_stream(splits["train"], vocab.bos_id, t.batch_size, t.seq_len)
  spe, tokens_per_step = stream.steps_per_epoch, stream.tokens_per_step
  total = t.num_steps or t.num_epochs * spe
  init = functools.partial(step_lib.init_state, spec.seed, cfg, spec.optim, t.batch_size)
  abstract = jax.eval_shape(init)
  shardings = step_lib.state_shardings(abstract, mesh, t.batch_size, cfg)
  meta = run_meta(spec.config, vocab, abstract.params, raw.checksums)
  ckpt = run.checkpointer(t.keep_checkpoints)
  start = ckpt.latest_step()
  if start is None:
    state = jax.jit(init, out_shardings=shardings)()
  else:  # Restored straight onto its shardings.
    state = ckpt.restore(step_lib.placed(abstract, shardings), meta, start)
    logging.info("resuming from the checkpoint at step %d of %d", start, total)
  writer = run.metrics(tensorboard=True, purge_step=start or 0)
  writer.rewind(start or 0)  # Records after the restored step (or all, from 0) come again.
  run.write_start(spec.config, vocab, raw)
  logging.info(
    "%s: %d parameters, %d steps/epoch, %d steps, %d tokens/step",
    cfg.kind,
    sum(math.prod(x.shape) for x in jax.tree.leaves(abstract.params)),
    spe,
    total,
    tokens_per_step,
  )
  data_sharding = parallel.batch_sharded(mesh)
  step_fn = step_lib.jit_train_step(cfg, spec.optim, t, spe, total, shardings, data_sharding)
  reset_acc = jax.jit(step_lib.reset_acc, out_shardings=shardings, donate_argnums=0)
  plateau_step = jax.jit(
    functools.partial(step_lib.plateau_step, optim_cfg=spec.optim),
    out_shardings=shardings,
    donate_argnums=0,
  )
  run_eval = functools.partial(
    evaluate, cfg=cfg, batch_size=spec.eval.batch_size, seq_len=t.seq_len, mesh=mesh
  )
  clock = Clock(total, tokens_per_step, start=clock_start)
  step = int(parallel.fetch(state.step))
  first = step
  try:
    with Preemption() as preempt:
      while step < total:
        # Cut while the previous step runs (dispatch is asynchronous): never the whole stream.
        state = step_fn(state, parallel.put_segment(stream, step % spe, data_sharding))
        step += 1
        if step == first + 1:  # It compiles (unless this process already compiled this config).
          jax.block_until_ready(state.step)
          clock.compiled(step)
        epoch_end = step % spe == 0
        stop = preempt.requested or (stop_after is not None and step >= stop_after)
        if step % t.log_every_steps == 0 or step == total or epoch_end:
          acc = jax.tree.map(parallel.fetch, state.acc)
          _check_finite(acc, ckpt, cfg.out_vocab)
          rec = {**_train_record(acc, step, spe, tokens_per_step), **clock.fields(step)}
          writer.write(rec)
          logging.info(
            "step %d/%d epoch %.2f loss %.4f ppl %.2f lr %.4g | %.0f tok/s ETA %.0fs",
            step,
            total,
            rec["epoch"],
            rec["loss"],
            rec["perplexity"],
            rec["lr"],
            rec.get("tokens_per_sec", 0.0),
            rec.get("eta_s", 0.0),
          )
          state = reset_acc(state)
        epoch_eval = epoch_end and (step // spe) % t.eval_every_epochs == 0
        if epoch_eval or (t.eval_every_steps and step % t.eval_every_steps == 0):
          jax.block_until_ready(state.step)  # Queued train steps count as training time.
          tic = time.perf_counter()
          res, _ = run_eval(state.params, splits["valid"], "valid")
          writer.write(
            {**res.record(), "step": step, "epoch": step / spe, "elapsed_s": clock.elapsed()}
          )
          logging.info(
            "step %d (epoch %.2f): valid perplexity %.2f", step, step / spe, res.perplexity
          )
          if epoch_eval:  # Plateau schedules look at epoch ends only.
            state = plateau_step(state, np.float32(res.nll / res.tokens))
          clock.exclude(time.perf_counter() - tic)
        if epoch_end or step % t.checkpoint_every_steps == 0 or step == total or stop:
          _check_finite(jax.tree.map(parallel.fetch, state.acc), ckpt, cfg.out_vocab)
          ckpt.save(step, state, meta)
        if stop:
          logging.info("stopping after step %d; rerun with the same --workdir to resume.", step)
          return {}
    results = {}
    for split in ("valid", "test"):
      res, logp = run_eval(state.params, splits[split], split)
      results[split] = res
      writer.write(
        {
          **res.record(),
          "step": step,
          "epoch": step / spe,
          "final": True,
          "elapsed_s": clock.elapsed(),
          "vocab_hash": vocab.hash,
          "carry_state": t.carry_state,
          "reset_at_eos": cfg.reset_at_eos,
        }
      )
      logging.info(
        "final %s perplexity %.2f (%d tokens, %d OOVs)", split, res.perplexity, res.tokens, res.oovs
      )
      if spec.eval.dump_tokens:  # The same scores the record was summed from.
        run.write_text(f"{split}.tokens.tsv", token_dump(splits[split], logp, vocab))
    return results
  finally:
    ckpt.close()
    writer.close()
