import json

import numpy as np
import pytest

from lm_jax.data.tokens import contexts, encode_sentences, with_bos
from lm_jax.data.vocab import BOS, EOS, UNK, Vocab
from lm_jax.errors import VocabError


def test_layout_and_order():
  v = Vocab.build([["b", "a", "b"], ["c", "b", "a"]])
  # <unk>, </s> first; by descending count (b:3, a:2, c:1); <s> last.
  assert v.tokens == (UNK, EOS, "b", "a", "c", BOS)
  assert v.num_predictable == 5 and v.bos_id == 5 and v.size == 6


def test_min_count_and_max_size():
  sents = [["a"] * 3 + ["b"] * 2 + ["c"]]
  assert Vocab.build(sents, min_count=2).tokens == (UNK, EOS, "a", "b", BOS)
  assert Vocab.build(sents, max_size=4).tokens == (UNK, EOS, "a", BOS)
  with pytest.raises(VocabError, match="min_count"):
    Vocab.build(sents, min_count=0)


def test_literal_unk_is_the_unknown_word_not_an_oov():
  v = Vocab.build([["<unk>", "x"]])
  t = encode_sentences(v, [["<unk>", "x", "zzz"]])
  np.testing.assert_array_equal(t.ids, [0, v.index["x"], 0, 1])
  np.testing.assert_array_equal(t.oov, [False, False, True, False])


@pytest.mark.parametrize("reserved", ["<s>", "</s>"])
def test_reserved_symbols_in_text_are_refused(reserved):
  with pytest.raises(VocabError, match="reserved token"):
    Vocab.build([["a", reserved]])


def test_json_roundtrip_and_hash(tmp_path):
  v = Vocab.build([["x", "y", "y"]], level="word")
  v.save(tmp_path / "v.json")
  w = Vocab.load(tmp_path / "v.json")
  assert w == v and w.hash == v.hash
  assert Vocab.build([["x", "y", "x"]]).hash != v.hash  # Same types, different ids.


def test_load_errors(tmp_path):
  with pytest.raises(VocabError, match="no vocabulary file"):
    Vocab.load(tmp_path / "missing.json")
  (tmp_path / "bad.json").write_text("{not json")
  with pytest.raises(VocabError, match="not a vocabulary JSON"):
    Vocab.load(tmp_path / "bad.json")
  (tmp_path / "edited.json").write_text(json.dumps({"tokens": ["a", "<unk>", "</s>", "<s>"]}))
  with pytest.raises(VocabError, match="must start with"):
    Vocab.load(tmp_path / "edited.json")


def test_char_level_detokenize():
  v = Vocab.build([list("ab a")], level="char")
  assert v.detokenize(v.encode(list("a b"))) == "a b"


def test_stream_and_contexts():
  v = Vocab.build([["a", "b"]])
  a, b, s = v.index["a"], v.index["b"], v.bos_id
  t = encode_sentences(v, [["a", "b"], ["b"]])
  stream, pos = with_bos(t, s)
  np.testing.assert_array_equal(stream, [s, a, b, 1, s, b, 1])
  np.testing.assert_array_equal(pos, [0, 1, 2, 3, 0, 1, 2])
  # Two words of context; -1 before <s>; the newest word is the last column.
  np.testing.assert_array_equal(contexts(t, s, 2), [[-1, s], [s, a], [a, b], [-1, s], [s, b]])
  assert t.num_words == 3 and t.num_tokens == 5 and t.num_sentences == 2


def test_ptb_vocabulary_has_10000_predictable_types(ptb_dir):
  from lm_jax.data.pipeline import data_config, load_data

  cfg = data_config("ptb")
  cfg.dir = str(ptb_dir)
  cfg.download = False
  _, vocab, arrays = load_data(cfg)
  assert vocab.num_predictable == 10_000  # 9,999 words incl. <unk>, plus </s>
  # Scored tokens (data README): test 78,669 words + 3,761 sentences = 82,430.
  assert arrays["test"].num_tokens == 82_430 and arrays["valid"].num_tokens == 73_760
  assert int(arrays["test"].oov.sum()) == 0
