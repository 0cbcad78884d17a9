"""Training engine: golden eval, batch-size invariance, schedules, determinism, resume, NaN stop."""

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from runs import finals_of, run_metrics

from configs import rnn as rnn_configs
from configs import window as window_configs
from lm_jax import optim, train
from lm_jax.data.pipeline import load_data
from lm_jax.data.vocab import Vocab
from lm_jax.errors import ConfigError, NonFiniteLossError
from lm_jax.models import ModelConfig
from lm_jax.spec import parse_neural


def tiny(preset="elman_ptb", **overrides):
  c = (window_configs if preset == "ptb" else rnn_configs).get_config(preset + ",tiny")
  c.train.update(num_steps=12, log_every_steps=4, checkpoint_every_steps=5)
  c.model.tie_weights = False  # Tests that need tying say so.
  for key, value in overrides.items():
    section, name = key.split("__")
    c[section][name] = value
  return c


@pytest.fixture(scope="module")
def pydoc():
  return load_data(tiny().data)[1:]  # (vocab, splits)


def built(config, vocab):
  spec = parse_neural(config)
  cfg = ModelConfig.build(spec.model, vocab)
  return spec, cfg, train.init_state(spec.seed, cfg, spec.optim, spec.train.batch_size)


def test_uniform_model_has_perplexity_equal_to_the_predictable_vocab(pydoc):
  vocab, splits = pydoc
  spec, cfg, state = built(tiny(), vocab)
  # Zero output layer -> every logit 0 -> p = 1 / num_predictable for every scored token,
  # so perplexity = num_predictable exactly (<s> is never in the softmax).
  params = {**state.params, "W_o": jnp.zeros_like(state.params["W_o"])}
  res = train.evaluate(params, splits["valid"], "valid", cfg, 5, 8)[0]
  assert (
    res.tokens
    == splits["valid"].num_tokens
    == splits["valid"].num_words + splits["valid"].num_sentences
  )
  assert res.oovs == int(splits["valid"].oov.sum()) > 0
  assert res.perplexity == pytest.approx(vocab.num_predictable, rel=1e-5)
  assert res.oov_nll == pytest.approx(res.oovs * math.log(vocab.num_predictable), rel=1e-5)


@pytest.mark.parametrize(
  "preset,overrides", [("ptb", {}), ("lstm_small_ptb", {"model__reset_at_eos": True})]
)
def test_eval_batch_size_changes_nothing_for_sentence_independent_models(pydoc, preset, overrides):
  vocab, splits = pydoc
  spec, cfg, state = built(tiny(preset, **overrides), vocab)
  results = [train.evaluate(state.params, splits["test"], "test", cfg, b, 8)[0] for b in (1, 3, 16)]
  for r in results[1:]:
    assert r.tokens == results[0].tokens
    assert r.nll == pytest.approx(results[0].nll, rel=1e-6)  # float32 summation order only


def test_eval_batch_size_only_cuts_context_for_carried_state(pydoc):
  vocab, splits = pydoc
  spec, cfg, state = built(tiny("lstm_small_ptb"), vocab)
  evaluate = lambda b, t: train.evaluate(state.params, splits["test"], "test", cfg, b, t)[0]
  one, many = evaluate(1, 8), evaluate(16, 8)
  assert one.tokens == many.tokens
  assert many.nll == pytest.approx(one.nll, rel=1e-2)  # 15 row starts lose their previous sentences
  assert evaluate(1, 5).nll == pytest.approx(one.nll, rel=1e-6)  # segment length is irrelevant


def test_learning_rate_schedules_golden():
  cfg = optim.OptimConfig(
    learning_rate=1.0, schedule="epoch_decay", decay_rate=0.5, decay_after_epochs=4
  )
  # Zaremba small: epochs 0-3 at 1, then 0.5, 0.25, ...  (10 steps per epoch)
  got = [float(optim.learning_rate(cfg, s, 10, 130)) for s in (0, 39, 40, 49, 50, 129)]
  assert got == [1.0, 1.0, 0.5, 0.5, 0.25, 0.5**9]
  cos = dataclasses.replace(cfg, schedule="cosine", learning_rate=2.0)
  assert [float(optim.learning_rate(cos, s, 10, 100)) for s in (0, 50, 100)] == pytest.approx(
    [2.0, 1.0, 0.0], abs=1e-6
  )


def test_adagrad_direction_is_the_gradient_over_its_root_sum_of_squares():
  cfg = optim.OptimConfig(name="adagrad", clip_norm=0.0, adagrad_initial=0.1, eps=0.0)
  tx, params = optim.make_optimizer(cfg), {"w": jnp.zeros(2)}
  state = tx.init(params)
  sums = np.full(2, 0.1)  # Duchi et al.: accumulator starts at adagrad_initial
  for g in ([3.0, -1.0], [1.0, 2.0]):
    sums += np.square(g)
    updates, state = tx.update({"w": jnp.array(g)}, state, params)
    np.testing.assert_allclose(updates["w"], np.array(g) / np.sqrt(sums), rtol=1e-6)


def test_plateau_halves_after_patience_epochs_without_improvement():
  cfg = optim.OptimConfig(plateau=True, plateau_factor=0.5, plateau_patience=1, plateau_rtol=1e-3)
  state = optim.make_plateau(cfg).init({})
  scales = []
  for valid_loss in (5.0, 4.0, 3.999, 3.0, 3.0):  # 3.999 is within rtol of 4.0: no improvement
    state = optim.plateau_update(cfg, state, valid_loss)
    scales.append(float(state.scale))
  assert scales == [1.0, 1.0, 0.5, 0.5, 0.25]
  off = dataclasses.replace(cfg, plateau=False)
  assert float(optim.plateau_update(off, optim.make_plateau(off).init({}), 9.0).scale) == 1.0


def strip_timing(records):
  return [{k: v for k, v in r.items() if k not in train.TIMING_KEYS} for r in records]


def test_same_config_and_seed_give_identical_metrics(tmp_path):
  config = tiny(
    model__dropout=0.2,
    optim__name="adam",
    optim__learning_rate=0.01,
    train__loss_normalizer="tokens",
  )
  for name in ("a", "b"):
    train.train_and_evaluate(config, str(tmp_path / name))
  a, b = (run_metrics(tmp_path / n) for n in ("a", "b"))
  assert strip_timing(a) == strip_timing(b)
  assert [r["step"] for r in a if "loss" in r] == [4, 8, 12]
  assert a[-1]["split"] == "test" and a[-1]["final"] and a[-2]["split"] == "valid"
  # It learns: uniform guessing has perplexity vocab.num_predictable.
  vocab = Vocab.load(str(tmp_path / "a" / "vocab.json"))
  assert a[-1]["perplexity"] < 0.5 * vocab.num_predictable, a[-1]["perplexity"]
  config.seed = 1
  train.train_and_evaluate(config, str(tmp_path / "c"))
  assert run_metrics(tmp_path / "c")[0]["loss"] != a[0]["loss"]


def test_resume_equals_uninterrupted(tmp_path):
  config = tiny("lstm_small_ptb", model__dropout=0.2)
  full = train.train_and_evaluate(config, str(tmp_path / "full"))
  # Stop after step 7: past the checkpoint at 5, between the log records at 4 and 8.
  assert train.train_and_evaluate(config, str(tmp_path / "split"), stop_after=7) == {}
  resumed = train.train_and_evaluate(config, str(tmp_path / "split"))
  assert resumed == full  # EvalResults: identical sums, not just close
  a, b = (run_metrics(tmp_path / n) for n in ("full", "split"))
  assert strip_timing(a) == strip_timing(b)
  # Rerunning a finished workdir re-evaluates without training or duplicating records.
  assert train.train_and_evaluate(config, str(tmp_path / "split")) == full
  assert strip_timing(run_metrics(tmp_path / "split")) == strip_timing(a)


def test_eval_every_steps_writes_valid_points_with_wall_time(tmp_path):
  config = tiny(train__eval_every_steps=6)
  train.train_and_evaluate(config, str(tmp_path))
  records = run_metrics(tmp_path)
  points = [r for r in records if r.get("split") == "valid" and not r.get("final")]
  assert [r["step"] for r in points] == [6, 12]  # 12 steps: no epoch ends in between
  assert points[0]["nll"] != points[1]["nll"] and all(math.isfinite(r["nll"]) for r in points)
  final = next(r for r in records if r.get("final") and r["split"] == "valid")
  assert final["nll"] == points[1]["nll"]  # The same params at step 12: an ordinary evaluation.
  elapsed = [r["elapsed_s"] for r in points] + [final["elapsed_s"]]
  assert elapsed == sorted(elapsed) and elapsed[0] > 0


def test_nonfinite_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
  from lm_jax.checkpoint import Checkpointer

  config = tiny(
    optim__learning_rate=1e30,
    optim__clip_norm=0.0,
    train__checkpoint_every_steps=1,
    train__log_every_steps=1,
  )
  with pytest.raises(NonFiniteLossError, match=r"diverged at step (\d+)") as err:
    train.train_and_evaluate(config, str(tmp_path))
  bad = int(err.value.args[0].split("at step ")[1].split(":")[0])
  assert f"last good checkpoint is step {bad - 1}" in str(err.value)
  assert Checkpointer(str(tmp_path)).latest_step() == bad - 1
  losses = [r["loss"] for r in run_metrics(tmp_path)]
  assert len(losses) == bad - 1 and all(math.isfinite(l) for l in losses)


def test_manual_bptt_step_matches_autodiff(pydoc):
  vocab, splits = pydoc
  from lm_jax.data import batching

  results = []
  for grad in ("autodiff", "manual"):
    spec, cfg, state = built(tiny(model__grad=grad, model__num_layers=1, model__dropout=0.0), vocab)
    stream = batching.train_stream(splits["train"], vocab.bos_id, 4, 8)
    step = jax.jit(
      functools.partial(
        train.train_step,
        model_cfg=cfg,
        optim_cfg=spec.optim,
        train_cfg=spec.train,
        steps_per_epoch=stream.steps_per_epoch,
        total_steps=12,
      )
    )
    for pos in range(3):
      inputs, targets = stream.segment(pos)
      state = step(state, {"inputs": jnp.asarray(inputs), "targets": jnp.asarray(targets)})
    results.append(jax.device_get(state))
  jax.tree.map(
    lambda a, m: np.testing.assert_allclose(a, m, rtol=1e-4, atol=1e-6),
    results[0].params,
    results[1].params,
  )


@pytest.mark.parametrize(
  "key,value,message",
  [
    ("train__loss_normalizer", "mean", "train.loss_normalizer"),
    ("optim__name", "adadelta", "optim.name"),
    ("train__batch_size", 0, "train.batch_size"),
    ("eval__batch_size", 0, "eval.batch_size"),
    ("train__eval_every_steps", 0, "train.eval_every_steps"),
  ],
)
def test_parse_config_rejects_bad_values(key, value, message):
  with pytest.raises(ConfigError, match=message):
    parse_neural(tiny(**{key: value}))


def test_token_dump_matches_the_evaluation_sums(tmp_path):
  """The per-token dump of a trained run sums to the final record's nll, token for token."""
  from lm_jax.rundir import RunDir

  cfg = rnn_configs.get_config("elman_ptb,tiny")
  cfg.eval.dump_tokens = True
  cfg.train.num_steps = 5
  train.train_and_evaluate(cfg, str(tmp_path))
  finals = finals_of(run_metrics(tmp_path))
  for split in ("valid", "test"):
    tokens, logp, oov = RunDir.open(str(tmp_path)).read_token_dump(split)
    assert len(tokens) == finals[split]["tokens"] and int(oov.sum()) == finals[split]["oovs"]
    # The dump prints 6 decimals per token: the sums agree to that rounding.
    assert -logp.sum() == pytest.approx(finals[split]["nll"], abs=1e-6 * len(tokens) + 1e-3)
