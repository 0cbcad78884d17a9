"""Checkpoints: exact round trip, strict refusal with a diff, params-only restore, metrics rewind."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import rnn as rnn_configs
from lm_jax import checkpoint, train
from lm_jax.data.pipeline import load_data
from lm_jax.errors import CheckpointError
from lm_jax.metric_writer import MetricWriter
from lm_jax.models import ModelConfig
from lm_jax.spec import parse_neural


def tiny(**model):
  c = rnn_configs.get_config("elman_ptb,tiny")
  c.train.update(num_steps=6, log_every_steps=3, checkpoint_every_steps=3)
  c.model.update(**{"tie_weights": False, **model})
  return c


def fresh_state(config, vocab, seed=0):
  spec = parse_neural(config)
  cfg = ModelConfig.build(spec.model, vocab)
  return cfg, train.init_state(seed, cfg, spec.optim, spec.train.batch_size)


def test_save_restore_round_trip_is_exact(tmp_path):
  config = tiny(kind="lstm")
  _, vocab, splits = load_data(config.data)
  cfg, state = fresh_state(config, vocab, seed=0)
  state = state.replace(step=jnp.int32(17), carry=jax.tree.map(lambda c: c + 0.5, state.carry))
  meta = checkpoint.run_meta(config.to_dict(), vocab, state.params)
  ckpt = checkpoint.Checkpointer(str(tmp_path))
  ckpt.save(17, state, meta)
  ckpt.close()
  _, target = fresh_state(config, vocab, seed=1)  # different values, same structure
  reopened = checkpoint.Checkpointer(str(tmp_path))
  restored = reopened.restore(target, meta)
  reopened.close()
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(restored), jax.device_get(state))
  a = train.evaluate(state.params, splits["valid"], "valid", cfg, 4, 8)
  b = train.evaluate(restored.params, splits["valid"], "valid", cfg, 4, 8)
  assert a[0] == b[0]
  # Parameters alone (what sampling reads): the same arrays, no optimizer state needed.
  step, params = checkpoint.restore_params(str(tmp_path), target.params, meta)
  assert step == 17
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(params), jax.device_get(state.params))


def test_restore_refuses_another_model_with_a_diff(tmp_path):
  train.train_and_evaluate(tiny(), str(tmp_path))
  config_json = (tmp_path / "config.json").read_text()
  with pytest.raises(CheckpointError) as err:
    train.train_and_evaluate(tiny(hidden_dim=24, embed_dim=24), str(tmp_path))
  msg = str(err.value)
  assert "\n" not in msg  # One line.
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
  current = {
    "vocab_hash": "b",
    "vocab_size": 10,
    "config": {"x": 1, "z": 3},
    "params": {"w": "f[3]"},
  }
  assert checkpoint.diff_meta(saved, current) == [
    "vocab_hash: 'a' (checkpoint) != 'b' (this run)",
    "config y: 2 (checkpoint) != '<absent>' (this run)",
    "config z: '<absent>' (checkpoint) != 3 (this run)",
    "params w: 'f[2]' (checkpoint) != 'f[3]' (this run)",
  ]
  assert checkpoint.diff_meta(saved, saved) == []


def test_logging_keys_may_change_on_resume_but_not_the_math():
  a, b = tiny(), tiny()
  b.train.log_every_steps = 1
  b.eval.dump_tokens = True
  flat = lambda c: checkpoint.flat_config(c.to_dict())
  assert flat(a) == flat(b)
  b.eval.batch_size = 3  # Changes the validation loss that a plateau schedule follows.
  assert flat(a) != flat(b)
  b = tiny()
  b.optim.learning_rate = 0.5
  assert flat(a) != flat(b)


def test_a_different_corpus_with_the_same_vocabulary_is_refused():
  saved = {"vocab_hash": "v", "vocab_size": 5, "corpus_checksums": {"train.txt": "aa"}}
  other = dict(saved, corpus_checksums={"train.txt": "bb"})
  assert checkpoint.diff_meta(saved, other) == [
    "corpus_checksums: {'train.txt': 'aa'} (checkpoint) != {'train.txt': 'bb'} (this run)"
  ]
  no_corpus = {k: v for k, v in saved.items() if k != "corpus_checksums"}
  assert checkpoint.diff_meta(saved, no_corpus) == []  # Sampling does not read the corpus.


def test_rewind_drops_later_and_final_records(tmp_path):
  path = tmp_path / "metrics.jsonl"
  recs = [
    {"kind": "train", "step": 4, "loss": 1.0},
    {"kind": "train", "step": 8, "loss": 0.5},
    {"kind": "eval", "split": "valid", "step": 8},
    {"kind": "eval", "split": "test", "step": 8, "final": True},
    {"kind": "train", "step": 12, "loss": 0.25},
  ]
  path.write_text("".join(json.dumps(r) + "\n" for r in recs) + '{"kind": "tra')  # torn last line
  MetricWriter(str(tmp_path)).rewind(8)
  assert [json.loads(line) for line in path.read_text().splitlines()] == recs[:3]
  MetricWriter(str(tmp_path)).rewind(0)  # No checkpoint yet: every record is written again.
  assert path.read_text() == ""
