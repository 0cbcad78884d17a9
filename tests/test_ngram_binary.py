"""The memory-mapped binary n-gram model scores exactly as the in-memory one."""

import os

import numpy as np
import pytest

from lm_jax.data import corpus as corpus_lib
from lm_jax.data.tokens import encode_sentences
from lm_jax.data.vocab import Vocab
from lm_jax.errors import ArpaError
from lm_jax.ngram.binary import load_binary, save_binary, write_header
from lm_jax.ngram.model import NGramLM
from lm_jax.ngram.npy import FileArray
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
  assert isinstance(keys, FileArray)  # read from disk, block by block
  test = encode_sentences(vocab, raw.splits["test"])
  np.testing.assert_array_equal(mapped.token_logprobs(test), lm.token_logprobs(test))
  assert mapped.evaluate(test, "test").perplexity == lm.evaluate(test, "test").perplexity
  np.testing.assert_array_equal(
    mapped.next_logprobs([-1, -1, vocab.bos_id]), lm.next_logprobs([-1, -1, vocab.bos_id])
  )
  # A damaged model directory is one clear error: a file cut short, or one missing.
  os.truncate(tmp_path / "m" / "keys4.npy", os.path.getsize(tmp_path / "m" / "keys4.npy") - 8)
  with pytest.raises(ArpaError, match="keys4.npy is shorter than its header says"):
    load_binary(str(tmp_path / "m"))
  os.remove(tmp_path / "m" / "logp3.npy")
  with pytest.raises(ArpaError, match="not a complete lm_jax binary n-gram model"):
    load_binary(str(tmp_path / "m"))


def save_arrays(d, vocab: Vocab, size: int, keys: dict) -> None:
  """A binary model directory from each order's sorted keys (with their sentinel):
  ln p = -1 for every n-gram, -2 for every unigram, back-off weights 1."""
  os.makedirs(d)
  np.save(d / "logp1.npy", np.full(size, -2, np.float32))
  np.save(d / "logbow1.npy", np.zeros(size, np.float32))
  for k, a in keys.items():
    np.save(d / f"keys{k}.npy", a)
    np.save(d / f"logp{k}.npy", np.full(len(a), -1, np.float32))
    np.save(d / f"logbow{k}.npy", np.zeros(len(a), np.float32))
  write_header(str(d), vocab, size, "x", True, [size] + [len(a) - 1 for a in keys.values()])


def test_opening_a_mapped_model_reads_almost_nothing(tmp_path):
  # 10M trigrams on disk (keys and tables: 160 MB): mapping them and scoring a token grows
  # the process's resident memory by a small fraction of that (imports included).
  v, n = Vocab.build([["a", "b"]]), 10_000_000
  keys = np.append(np.arange(n, dtype=np.int64) * 7, np.iinfo(np.int64).max)
  save_arrays(tmp_path / "big", v, v.size, {2: np.append(keys[:99], keys[-1]), 3: keys})
  script = f"""
import os, numpy as np
from lm_jax.ngram import binary
def rss():
  return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
before = rss()
m = binary.load_binary({str(tmp_path / "big")!r})
m.logprob(np.array([[0, 1]]), np.array([2]))
print(rss() - before)
"""
  grown = int(run_python(script).split()[-1])
  assert grown < 16 * 2**20  # a tenth of the 160 MB the arrays hold


def test_scoring_holds_no_more_than_a_batch_of_the_model(tmp_path):
  # A bigram model over 2048 ids, every pair present: 32 MiB of keys and 16 MiB of
  # log-probabilities. 131,072 random lookups, in batches of 32,768, need nearly every block of both; the
  # peak resident memory grows by a batch's own arrays (a few MiB), not by the 48 MiB read.
  # (Memory-mapped, the same lookups grew it by 50 MiB on one machine: each page touched,
  # and the cached folios around it, stay mapped.)
  d, s = tmp_path / "pairs", 2048
  v = Vocab.build([["a", "b"]])
  keys = np.append(np.arange(s * s, dtype=np.int64), np.iinfo(np.int64).max)
  save_arrays(d, v, s, {2: keys})
  script = f"""
import re, numpy as np
from lm_jax.ngram import binary
def peak():  # VmHWM, the peak resident memory since the last reset (writing 5 to clear_refs)
  status = open("/proc/self/status").read()
  return int(re.search(r"VmHWM:\\s*(\\d+) kB", status).group(1)) * 1024
m = binary.load_binary({str(d)!r})
rng = np.random.default_rng(0)
ctx, word = rng.integers(0, {s}, (1 << 17, 1)), rng.integers(0, {s}, 1 << 17)
m.logprob(ctx[:64], word[:64])
with open("/proc/self/clear_refs", "w") as f:
  f.write("5")
before = peak()
for i in range(0, 1 << 17, 1 << 15):  # in the scoring batches of token_logprobs
  logp = m.logprob(ctx[i : i + (1 << 15)], word[i : i + (1 << 15)])
  assert np.all(logp == -1), logp  # every pair found
print(peak() - before)
"""
  grown = int(run_python(script).split()[-1])
  assert grown < 16 * 2**20  # a third of what was read (measured here: 5.9 MiB)


def test_file_array_gathers_and_searches_as_numpy(tmp_path):
  rng = np.random.default_rng(0)
  # Values spread out, and values repeated across the 4 KiB blocks (50 distinct in 5,000).
  cases = [(1, np.int64, 10**9), (1000, np.float32, 10**9), (70_001, np.int64, 10**9)]
  # 300,000 values: the search index takes several reads, and searches cut their spans.
  for n, dtype, hi in [*cases, (5000, np.int64, 25), (300_000, np.int64, 10**12)]:
    a = np.sort(rng.integers(-hi, hi, n)).astype(dtype)
    np.save(tmp_path / "a.npy", a)
    f = FileArray(str(tmp_path / "a.npy"))
    assert len(f) == n
    idx = rng.integers(-n, n, (3, 500))  # unsorted, negative from the end, repeated
    np.testing.assert_array_equal(f[idx], a[idx])
    np.testing.assert_array_equal(f[np.arange(n)], a)
    assert f[np.empty(0, np.int64)].shape == (0,)
    edges = np.concatenate([a[:: f.per], [a[0] - 1, a[-1] + 1]]).astype(dtype)  # block starts
    q = np.concatenate([rng.choice(a, 300), rng.integers(-2 * hi, 2 * hi, 300), edges])
    np.testing.assert_array_equal(f.searchsorted(q), np.searchsorted(a, q))
    np.testing.assert_array_equal(f.searchsorted(np.sort(q)), np.searchsorted(a, np.sort(q)))
    for x in q[::20]:  # one at a time: each read starts at the query's own block
      assert f.searchsorted(np.array([x]))[0] == np.searchsorted(a, x)
    with pytest.raises(IndexError, match="out of range"):
      f[np.array([n])]
