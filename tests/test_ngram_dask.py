"""Counting on Dask's local schedulers equals counting the whole corpus at once."""

import os

import numpy as np
import pytest

from lm_jax.data import corpus as corpus_lib
from lm_jax.data.tokens import encode_sentences
from lm_jax.data.vocab import Vocab
from lm_jax.ngram.counts import count_ngrams
from lm_jax.ngram.dask_counts import count_ngrams_dask
from lm_jax.ngram.model import estimate_tables

pytest.importorskip("dask")  # In the test extra; optional for users (lm_jax[dask]).


def load_shard(path):
  """A worker-side reader: one shard file of whole sentences, encoded with the shared vocab."""
  with open(path + ".pid", "w") as f:  # which process read it
    f.write(str(os.getpid()))
  with open(path, encoding="utf-8") as f:
    vocab_path, *lines = f.read().splitlines()
  return encode_sentences(Vocab.load(vocab_path), [line.split() for line in lines])


def _assert_same_counts(got, want):
  assert got.sizes() == want.sizes()
  np.testing.assert_array_equal(got.unigram, want.unigram)
  for a, b in zip(got.orders, want.orders):
    for field in ("suffix", "first", "prefix", "count", "child_start"):
      np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


@pytest.fixture(scope="module")
def pydoc():
  sents = corpus_lib.load("pydoc").splits["train"]
  return sents, Vocab.build(sents)


def test_sharded_on_dask_equals_one_machine(pydoc, tmp_path):
  sents, vocab = pydoc
  whole = encode_sentences(vocab, sents)
  want = count_ngrams(whole, 4, vocab.size, vocab.bos_id)
  cuts = np.linspace(0, len(sents), 6).astype(int)  # 5 shards of whole sentences
  shards = [encode_sentences(vocab, sents[a:b]) for a, b in zip(cuts, cuts[1:])]
  got = count_ngrams_dask(shards, 4, vocab.size, vocab.bos_id, scheduler="threads", split_every=2)
  _assert_same_counts(got, want)
  # Workers in other processes read their own shard files: nothing passes through the driver
  # but the file names and the merged tables.
  vocab.save(tmp_path / "vocab.json")
  paths = []
  for i, (a, b) in enumerate(zip(cuts, cuts[1:])):
    paths.append(tmp_path / f"shard{i}.txt")
    paths[-1].write_text(
      "\n".join([str(tmp_path / "vocab.json"), *(" ".join(s) for s in sents[a:b])]) + "\n",
      encoding="utf-8",
    )
  got = count_ngrams_dask(
    [str(p) for p in paths], 4, vocab.size, vocab.bos_id, load=load_shard, scheduler="processes"
  )
  _assert_same_counts(got, want)
  readers = {int(open(f"{p}.pid").read()) for p in paths}
  assert readers and os.getpid() not in readers  # the shards were read in worker processes
  # Equal counts give the same Kneser-Ney model, entry for entry.
  a = estimate_tables(got, "modified_kneser_ney", train=whole)
  b = estimate_tables(want, "modified_kneser_ney", train=whole)
  for x, y in zip(a.logp + a.logbow, b.logp + b.logbow):
    np.testing.assert_array_equal(x, y)
