"""The memory-mapped binary n-gram model scores exactly as the in-memory one."""

import os

import numpy as np
import pytest

from lm_jax.data import corpus as corpus_lib
from lm_jax.data.tokens import encode_sentences
from lm_jax.data.vocab import Vocab
from lm_jax.errors import ArpaError
from lm_jax.ngram.binary import load_binary, save_binary
from lm_jax.ngram.model import NGramLM
from tests.conftest import run_python


def test_mapped_model_scores_bit_for_bit(tmp_path):
  raw = corpus_lib.load("pydoc")
  vocab = Vocab.build(raw.splits["train"])
  lm = NGramLM.estimate(
    encode_sentences(vocab, raw.splits["train"]), vocab, 4, "modified_kneser_ney"
  )
  save_binary(lm, str(tmp_path / "m"))
  mapped = load_binary(str(tmp_path / "m"))
  keys = mapped._score_arrays[3][0][0]
  assert isinstance(keys, np.memmap) and not keys.flags.writeable  # read-only, from disk
  test = encode_sentences(vocab, raw.splits["test"])
  np.testing.assert_array_equal(mapped.token_logprobs(test), lm.token_logprobs(test))
  assert mapped.evaluate(test, "test").perplexity == lm.evaluate(test, "test").perplexity
  np.testing.assert_array_equal(
    mapped.next_logprobs([-1, -1, vocab.bos_id]), lm.next_logprobs([-1, -1, vocab.bos_id])
  )
  # A damaged model directory is one clear error.
  os.remove(tmp_path / "m" / "logp3.npy")
  with pytest.raises(ArpaError, match="not a complete lm_jax binary n-gram model"):
    load_binary(str(tmp_path / "m"))


def test_opening_a_mapped_model_reads_almost_nothing(tmp_path):
  # 10M trigrams on disk (keys and tables: 160 MB): mapping them and scoring a token grows
  # the process's resident memory by a small fraction of that (imports included).
  script = f"""
import resource, numpy as np
from lm_jax.ngram import binary
from lm_jax.data.vocab import Vocab
v = Vocab.build([["a", "b"]])
import json, os
d = {str(tmp_path / "big")!r}
os.makedirs(d)
n = 10_000_000
keys = np.append(np.arange(n, dtype=np.int64) * 7, np.iinfo(np.int64).max)
for k, m in ((2, 100), (3, n)):
  np.save(f"{{d}}/keys{{k}}.npy", keys[: m] if k == 2 else keys)
  np.save(f"{{d}}/logp{{k}}.npy", np.full(len(keys[: m] if k == 2 else keys), -1, np.float32))
  np.save(f"{{d}}/logbow{{k}}.npy", np.zeros(len(keys[: m] if k == 2 else keys), np.float32))
np.save(f"{{d}}/logp1.npy", np.full(v.size, -2, np.float32)); np.save(f"{{d}}/logbow1.npy", np.zeros(v.size, np.float32))
v.save(f"{{d}}/vocab.json")
json.dump({{"format": binary.FORMAT, "order": 3, "vocab_size": v.size, "smoothing": "x", "normalized": True, "ngrams": [v.size, 99, n]}}, open(f"{{d}}/model.json", "w"))
def rss():
  return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
before = rss()
m = binary.load_binary(d)
m.logprob(np.array([[0, 1]]), np.array([2]))
print(rss() - before)
"""
  grown = int(run_python(script).split()[-1])
  assert grown < 16 * 2**20  # a tenth of the 160 MB the arrays hold
