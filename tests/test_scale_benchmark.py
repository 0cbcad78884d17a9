"""The scale benchmark's corpus: whole sentences, exact sizes, reproducible; sharded = one-shot."""

import numpy as np

from experiments import benchmark
from experiments.benchmarks import scale


def test_zipf_shards_are_exact_whole_sentences_and_reproducible():
  shards = list(scale.zipf_shards(10_000, 3_000, seed=3))
  assert [s.num_tokens for s in shards] == [3_000, 3_000, 3_000, 1_000]
  for s in shards:
    assert s.starts[0] == 0 and s.starts[-1] == s.num_tokens and np.all(s.lengths >= 1)
    assert np.all(s.ids[s.starts[1:] - 1] == scale.EOS)  # every sentence ends with </s>
    assert s.ids.max() < scale.BOS and np.sum(s.ids == scale.EOS) == s.num_sentences
  again = list(scale.zipf_shards(10_000, 3_000, seed=3))
  assert all(np.array_equal(a.ids, b.ids) for a, b in zip(shards, again))


def test_sharded_and_one_shot_measurements_agree():
  a, b = scale.measure("sharded", 20_000, 3_000), scale.measure("one_shot", 20_000, 3_000)
  assert a["tokens"] == b["tokens"] == 20_000
  assert (a["ngrams"], a["sentences"]) == (b["ngrams"], b["sentences"])
  assert "scale" in benchmark.SUITES
