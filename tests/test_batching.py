"""Batching: the input stream, truncated-BPTT rows, eval grids that score every token once."""

import numpy as np
import pytest

from lm_jax.data import batching
from lm_jax.data.tokens import encode_sentences
from lm_jax.data.vocab import Vocab
from lm_jax.errors import ConfigError

SENTS = [["a", "b"], ["c"], ["a", "x", "b", "c"], [], ["b", "a"]]


@pytest.fixture(scope="module")
def vocab():
  return Vocab.build([["a", "b", "c"]])  # <unk>=0 </s>=1 a=2 b=3 c=4 <s>=5; "x" is OOV.


def test_input_stream_golden(vocab):
  toks = encode_sentences(vocab, SENTS)
  # ids:    a b </s> c </s> a x b c </s> </s> b a </s>
  assert toks.ids.tolist() == [2, 3, 1, 4, 1, 2, 0, 3, 4, 1, 1, 3, 2, 1]
  # Input of each target: the previous token, but <s> (5) where a sentence starts;
  # the empty sentence is "<s> -> </s>".  </s> is never an input, <s> never a target.
  assert batching.input_stream(toks, vocab.bos_id).tolist() == [
    5,
    2,
    3,
    5,
    4,
    5,
    2,
    0,
    3,
    4,
    5,
    5,
    3,
    2,
  ]


def test_train_stream_rows_are_contiguous_text(vocab, tmp_path):
  toks = encode_sentences(vocab, SENTS * 3)  # 42 tokens
  s = batching.train_stream(toks, vocab.bos_id, batch_size=2, seq_len=4)
  # 42 // 2 = 21 tokens per row -> 5 segments of 4 (the last token of each row is dropped).
  assert s.steps_per_epoch == 5
  segs = [s.segment(pos) for pos in range(5)]
  inputs, targets = (np.concatenate([seg[i] for seg in segs], axis=1) for i in (0, 1))
  assert inputs.shape == targets.shape == (2, 20)
  np.testing.assert_array_equal(targets[0], toks.ids[:20])
  np.testing.assert_array_equal(targets[1], toks.ids[21:41])
  stream = batching.input_stream(toks, vocab.bos_id)
  np.testing.assert_array_equal(inputs[0], stream[:20])
  np.testing.assert_array_equal(inputs[1], stream[21:41])
  assert inputs.dtype == np.int32 and targets.dtype == np.int32
  # One row alone (a process of a multi-host job) reads the same cells; so does a memmap.
  np.testing.assert_array_equal(s.segment(3, slice(1, 2))[0], segs[3][0][1:])
  ids = np.memmap(tmp_path / "ids", np.int32, "w+", shape=toks.ids.shape)
  ids[:] = toks.ids
  mapped = batching.train_stream(ids, vocab.bos_id, batch_size=2, seq_len=4)
  for pos in range(5):
    np.testing.assert_array_equal(np.stack(mapped.segment(pos)), np.stack(segs[pos]))


def test_train_stream_too_small_names_the_knobs(vocab):
  toks = encode_sentences(vocab, SENTS)
  with pytest.raises(ConfigError, match="train.batch_size"):
    batching.train_stream(toks, vocab.bos_id, batch_size=4, seq_len=8)


@pytest.mark.parametrize("batch_size", [1, 2, 3, 7, 40])
@pytest.mark.parametrize("seq_len", [1, 5])
def test_eval_grid_scores_every_token_exactly_once(vocab, batch_size, seq_len):
  toks = encode_sentences(vocab, SENTS * 4)
  g = batching.eval_grid(toks, vocab.bos_id, batch_size, seq_len)
  assert g.inputs_BxL.shape[0] == batch_size and g.inputs_BxL.shape[1] % seq_len == 0
  idx = g.index_BxL[g.index_BxL >= 0]
  np.testing.assert_array_equal(np.sort(idx), np.arange(toks.num_tokens))  # each once
  valid = g.index_BxL >= 0
  np.testing.assert_array_equal(g.weights_BxL, valid.astype(np.float32))
  np.testing.assert_array_equal(g.targets_BxL[valid], toks.ids[g.index_BxL[valid]])
  stream = batching.input_stream(toks, vocab.bos_id)
  np.testing.assert_array_equal(g.inputs_BxL[valid], stream[g.index_BxL[valid]])
  np.testing.assert_array_equal(g.oov_BxL[valid], toks.oov[g.index_BxL[valid]])
  assert g.oov_BxL.sum() == 4  # one "x" per copy of SENTS
  # Every non-empty row starts a sentence (its first input is <s>) and is one contiguous run.
  for row, inp in zip(g.index_BxL, g.inputs_BxL):
    r = row[row >= 0]
    if len(r):
      assert inp[0] == vocab.bos_id and r[0] in toks.starts
      np.testing.assert_array_equal(np.diff(r), 1)
  assert g.weights_BxL.sum() == toks.num_tokens


def test_eval_grid_balances_rows(vocab):
  toks = encode_sentences(vocab, [["a"] * 3] * 100)  # 100 sentences of 4 tokens
  g = batching.eval_grid(toks, vocab.bos_id, batch_size=4, seq_len=10)
  assert (g.index_BxL >= 0).sum(axis=1).tolist() == [100, 100, 100, 100]
  assert g.inputs_BxL.shape[1] == 100
