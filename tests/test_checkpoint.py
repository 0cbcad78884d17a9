"""Checkpoints: exact round trip, strict refusal with a diff, metrics rewind."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import rnn as rnn_configs
from lm_jax import checkpoint, optim, train
from lm_jax.data.pipeline import load_data
from lm_jax.errors import CheckpointError
from lm_jax.models import get_model


def tiny(**model):
  c = rnn_configs.get_config("elman_ptb,tiny")
  c.train.update(num_steps=6, log_every_steps=3, checkpoint_every_steps=3)
  c.model.update(**{"tie_weights": False, **model})
  return c


def fresh_state(config, vocab, seed=0):
  config.seed = seed
  spec = train.parse_config(config)
  spec = dataclasses.replace(spec, model=spec.model.with_vocab(vocab))
  return spec, train.init_state(spec, get_model(spec.model), optim.make_optimizer(spec.optim))


def test_save_restore_round_trip_is_exact(tmp_path):
  config = tiny(kind="lstm")
  _, vocab, splits = load_data(config.data)
  spec, state = fresh_state(config, vocab, seed=0)
  state = state.replace(step=jnp.int32(17), carry=jax.tree.map(lambda c: c + 0.5, state.carry))
  meta = checkpoint.run_meta(config, vocab, state.params)
  ckpt = checkpoint.Checkpointer(str(tmp_path))
  ckpt.save(17, state, meta)
  ckpt.wait()
  _, target = fresh_state(config, vocab, seed=1)  # different values, same structure
  restored = checkpoint.Checkpointer(str(tmp_path), read_only=True).restore(target, meta)
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(restored), jax.device_get(state))
  a = train.evaluate(state.params, splits["valid"], "valid", spec.model, 4, 8)
  b = train.evaluate(restored.params, splits["valid"], "valid", spec.model, 4, 8)
  assert a == b


def test_restore_refuses_another_model_with_a_diff(tmp_path):
  train.train_and_evaluate(tiny(), str(tmp_path))
  config_json = (tmp_path / "config.json").read_text()
  with pytest.raises(CheckpointError) as err:
    train.train_and_evaluate(tiny(hidden_dim=24, embed_dim=24), str(tmp_path))
  msg = str(err.value)
  assert "refusing a partial or mismatched restore" in msg
  assert "config model.hidden_dim: 16 (checkpoint) != 24 (this run)" in msg
  assert "params layers/0/W_h: 'float32[16,16]' (checkpoint) != 'float32[24,24]' (this run)" in msg
  assert (tmp_path / "config.json").read_text() == config_json  # refused before touching the run


def test_restore_refuses_another_vocabulary(tmp_path):
  train.train_and_evaluate(tiny(), str(tmp_path))
  config = tiny()
  config.data.min_count = 2
  with pytest.raises(CheckpointError, match="vocab_hash"):
    train.train_and_evaluate(config, str(tmp_path))


def test_missing_checkpoint_is_a_clear_error(tmp_path):
  ckpt = checkpoint.Checkpointer(str(tmp_path))
  with pytest.raises(CheckpointError, match="no checkpoint"):
    ckpt.restore({}, {})


def test_diff_meta_lists_every_difference():
  saved = {"vocab_hash": "a", "vocab_size": 10, "config": {"x": 1, "y": 2}, "params": {"w": "f[2]"}}
  current = {"vocab_hash": "b", "vocab_size": 10, "config": {"x": 1, "z": 3}, "params": {"w": "f[3]"}}
  assert checkpoint.diff_meta(saved, current) == [
      "vocab_hash: 'a' (checkpoint) != 'b' (this run)",
      "config y: 2 (checkpoint) != '<absent>' (this run)",
      "config z: '<absent>' (checkpoint) != 3 (this run)",
      "params w: 'f[2]' (checkpoint) != 'f[3]' (this run)"]
  assert checkpoint.diff_meta(saved, saved) == []


def test_logging_keys_may_change_on_resume_but_not_the_math():
  a, b = tiny(), tiny()
  b.train.log_every_steps = 1
  b.eval.dump_tokens = True
  assert checkpoint.flat_config(a) == checkpoint.flat_config(b)
  b.eval.batch_size = 3  # Changes the validation loss that a plateau schedule follows.
  assert checkpoint.flat_config(a) != checkpoint.flat_config(b)
  b = tiny()
  b.optim.learning_rate = 0.5
  assert checkpoint.flat_config(a) != checkpoint.flat_config(b)


def test_checkpoints_from_before_eval_batch_size_was_recorded_still_restore():
  saved = {"config": {"train.batch_size": 20}}
  current = {"config": {"train.batch_size": 20, "eval.batch_size": 1}}
  assert checkpoint.diff_meta(saved, current) == []
  saved["config"]["eval.batch_size"] = 10  # Recorded and different: refused.
  assert checkpoint.diff_meta(saved, current) == [
      "config eval.batch_size: 10 (checkpoint) != 1 (this run)"]


def test_a_different_corpus_with_the_same_vocabulary_is_refused():
  saved = {"vocab_hash": "v", "vocab_size": 5, "corpus_checksums": {"train.txt": "aa"}}
  other = dict(saved, corpus_checksums={"train.txt": "bb"})
  assert checkpoint.diff_meta(saved, other) == [
      "corpus_checksums: {'train.txt': 'aa'} (checkpoint) != {'train.txt': 'bb'} (this run)"]
  no_corpus = {k: v for k, v in saved.items() if k != "corpus_checksums"}
  assert checkpoint.diff_meta(saved, no_corpus) == []  # Sampling does not read the corpus.


def test_rewind_metrics_drops_later_and_final_records(tmp_path):
  path = tmp_path / "metrics.jsonl"
  recs = [{"step": 4, "loss": 1.0}, {"step": 8, "loss": 0.5}, {"split": "valid", "step": 8},
          {"split": "test", "step": 8, "final": True}, {"step": 12, "loss": 0.25}]
  path.write_text("".join(json.dumps(r) + "\n" for r in recs))
  checkpoint.rewind_metrics(str(path), 8)
  assert [json.loads(l) for l in path.read_text().splitlines()] == recs[:3]
