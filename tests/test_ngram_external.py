"""Out-of-core Kneser-Ney (``memory=``): equal to the in-memory model bit for bit, file for file."""

import dataclasses
import filecmp

import numpy as np
import pytest

from lm_jax.data.embedded import load as load_embedded
from lm_jax.data.pipeline import load_data
from lm_jax.data.stream import slices, stream_data
from lm_jax.data.tokens import encode_sentences
from lm_jax.data.vocab import Vocab
from lm_jax.errors import ConfigError, CorpusError
from lm_jax.ngram import external
from lm_jax.ngram.arpa import write_arpa
from lm_jax.ngram.arrays_io import ArrayModel, save_scoring
from lm_jax.ngram.binary import load_binary
from lm_jax.ngram.model import NGramLM
from lm_jax.ngram.sample import sample_corpus
from lm_jax.spec import DataSpec
from tests.conftest import write_corpus
from tests.test_ngram_smoothing import LECTURE, build


def _generated(tokens=120_000, seed=0):
  """Sentences drawn from a Kneser-Ney trigram of the embedded corpus: the test corpus."""
  raw = load_embedded()
  vocab = Vocab.build(raw.splits["train"])
  lm = NGramLM.estimate(
    encode_sentences(vocab, raw.splits["train"]), vocab, 3, "modified_kneser_ney"
  )
  return [vocab.decode(s) for s in sample_corpus(lm, tokens, seed, batch=4096)]


def _assert_same(est, lm):
  assert est.sizes() == lm.trie.sizes()
  for k, o in enumerate(est.orders, start=1):
    if k > 1:
      ref = lm.trie.orders[k - 2]
      assert np.array_equal(o.suffix, ref.suffix) and np.array_equal(o.first, ref.first), k
    assert np.array_equal(o.logp, lm.tables.logp[k - 1]), k  # Bit for bit, -inf included.
    ctx = ~np.isnan(o.logbow)
    expect_ctx = (
      np.bincount(lm.trie.orders[k - 1].prefix, minlength=o.size) > 0
      if k < lm.order
      else np.zeros(o.size, bool)
    )
    assert np.array_equal(ctx, expect_ctx), k
    assert np.array_equal(o.logbow[ctx], lm.tables.logbow[k - 1][ctx]), k


@pytest.mark.parametrize(
  "order,smoothing,kn_statistics,fallback",
  [
    (4, "modified_kneser_ney", "lmplz", None),
    (3, "kneser_ney", "exact", None),
    (5, "modified_kneser_ney", "exact", "0.5,1.0,1.5"),
  ],
)
def test_out_of_core_equals_in_memory(tmp_path, order, smoothing, kn_statistics, fallback):
  sents = _generated()
  vocab = Vocab.build(sents)
  train = encode_sentences(vocab, sents)
  lm = NGramLM.estimate(
    train, vocab, order, smoothing, kn_statistics=kn_statistics, discount_fallback=fallback
  )
  # The smallest budget, its passes cut far smaller than it would (chunks of 5000 positions,
  # buckets of 3000 records, slabs of 700 contexts): every pass spans many of each, and
  # lmplz's statistics are tracked across the text's chunks.
  est = external.estimate_kneser_ney(
    slices(train, 5000),
    vocab.size,
    vocab.bos_id,
    order,
    external.parse_memory("48M"),
    str(tmp_path),
    modified=smoothing == "modified_kneser_ney",
    fallback=None if fallback is None else (0.5, 1.0, 1.5),
    lmplz_statistics=kn_statistics == "lmplz",
    out_dir=str(tmp_path / "arrays"),
    sizes={"chunk": 5000, "bucket_rows": 3000, "slab": 700},
  )
  assert est.info["discounts"] == lm.tables.info["discounts"]
  _assert_same(est, lm)
  assert sorted(p.name for p in tmp_path.iterdir()) == ["arrays"]  # The engine's files are gone.
  write_arpa(lm, str(tmp_path / "mem.arpa"))
  write_arpa(ArrayModel(est, vocab, rows=1000), str(tmp_path / "ooc.arpa"))
  assert filecmp.cmp(tmp_path / "mem.arpa", tmp_path / "ooc.arpa", shallow=False)
  save_scoring(est, vocab, str(tmp_path / "bin"), smoothing)
  held = encode_sentences(vocab, _generated(5000, seed=1))
  mapped = load_binary(str(tmp_path / "bin"))
  assert np.array_equal(mapped.token_logprobs(held), lm.token_logprobs(held))


@pytest.mark.slow
@pytest.mark.parametrize("order", [3, 5])
def test_ptb_run_out_of_core_writes_the_same_files(ptb_dir, tmp_path, order):
  """The whole command on PTB: the out-of-core ARPA file is the in-memory one, byte for byte
  (and so within lmplz's gold ARPA as ``test_ngram_kenlm_ptb`` checks the in-memory one)."""
  from configs.ngram import get_config
  from lm_jax.ngram.run import run

  finals = {}
  for name, memory in (("mem", None), ("ooc", "200M")):
    c = get_config("ptb")
    c.order = order
    c.data.dir, c.data.download, c.write_arpa, c.memory = str(ptb_dir), False, True, memory
    c.temp_dir = str(tmp_path) if memory else None
    finals[name] = run(c, str(tmp_path / name), verbose=False)
  assert filecmp.cmp(tmp_path / "mem/model.arpa", tmp_path / "ooc/model.arpa", shallow=False)
  assert finals["mem"] == finals["ooc"]
  assert (tmp_path / "mem/samples.txt").read_text() == (tmp_path / "ooc/samples.txt").read_text()
  assert sorted(p.name for p in tmp_path.iterdir()) == ["mem", "ooc"]  # No temporaries left.


# Read twice; once to ids on disk; once, in two halves at once (the second in a child).
@pytest.mark.parametrize("spill,halves", [(False, False), (True, False), (True, True)])
def test_streamed_directory_equals_load_data(tmp_path, monkeypatch, spill, halves):
  import os
  import pathlib
  import subprocess
  import sys

  import lm_jax.data.stream as stream_lib

  if halves and "jax" in sys.modules:
    # A fork next to jax's threads is unsafe: the same case in a fresh interpreter.
    assert not os.environ.get("LM_JAX_FRESH_TEST"), "jax was imported in the fresh process"
    r = subprocess.run(
      [sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider"]
      + [f"{__file__}::test_streamed_directory_equals_load_data[True-True]"],
      cwd=pathlib.Path(__file__).parents[1],
      env={**os.environ, "LM_JAX_FRESH_TEST": "1"},
      capture_output=True,
      text=True,
    )
    assert r.returncode == 0 and "1 passed" in r.stdout, r.stdout[-3000:] + r.stderr[-2000:]
    return
  if halves:  # Forced on one core too; no jax here (checked above).
    monkeypatch.setattr(stream_lib, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(stream_lib, "_can_fork", lambda: True)
  sents = [" ".join(s) for s in _generated(20_000)]
  root = write_corpus(tmp_path / "c", "\n".join(sents) + "\n", "a b zz\n", "b a\n")
  data = DataSpec(name=None, dir=str(root), min_count=2)
  _, vocab, arrays = load_data(data)
  spill_dir = tmp_path / "spill" if spill else None
  if spill:
    spill_dir.mkdir()
  streamed = stream_data(data, chunk_tokens=3000, spill_dir=spill_dir)
  assert streamed.vocab.tokens == vocab.tokens and streamed.vocab.counts == vocab.counts
  assert streamed.vocab.hash == vocab.hash and streamed.train_tokens == arrays["train"].num_tokens
  chunks = list(streamed.train())
  assert len(chunks) > 2
  assert spill_dir is None or (spill_dir / "train.ids.1").exists() == halves
  assert np.array_equal(np.concatenate([c.ids for c in chunks]), arrays["train"].ids)
  assert np.array_equal(np.concatenate([c.oov for c in chunks]), arrays["train"].oov)
  assert sum(c.num_sentences for c in chunks) == arrays["train"].num_sentences
  for split in ("valid", "test"):
    assert np.array_equal(streamed.heldout[split].ids, arrays[split].ids)
  assert streamed.info.describe()["checksums"].keys() == {"train.txt", "valid.txt", "test.txt"}
  (root / "train.txt").write_bytes(b"caf\xe9\n")
  with pytest.raises(CorpusError, match="not UTF-8"):
    stream_data(data, chunk_tokens=3000, spill_dir=spill_dir)
  # A bad byte in the second half: the error names its offset in the whole file.
  (root / "train.txt").write_bytes(b"a b\n" * 1000 + b"caf\xe9\n")
  with pytest.raises(CorpusError, match="byte 4003"):
    stream_data(data, chunk_tokens=3000, spill_dir=spill_dir)


def test_parse_memory():
  assert external.parse_memory("2G") == 2 * 2**30
  assert external.parse_memory("500M") == 500 * 2**20
  assert external.parse_memory("1.5g") == int(1.5 * 2**30)
  assert external.parse_memory(3 * 2**30) == 3 * 2**30
  assert external.parse_memory("50%") > external.parse_memory("10%") > 0
  assert external.parse_memory(None) is None
  for bad in ("lots", "2X", "-1G"):
    with pytest.raises(ConfigError, match="not a size"):
      external.parse_memory(bad)
  with pytest.raises(ConfigError, match="at least"):
    external.parse_memory("8M")


@pytest.mark.parametrize(
  "overrides,match",
  [
    ({"smoothing": "katz"}, "builds Kneser-Ney"),
    ({"prune": "0,0,1"}, "does not prune"),
    ({"order": 1}, "order >= 2"),
    ({"temp_dir": "/nonexistent/lm_jax"}, "not a directory"),
    ({"memory": "plenty"}, "not a size"),
  ],
)
def test_config_errors_name_the_fix(overrides, match):
  from configs.ngram import get_config
  from lm_jax.ngram.spec import parse_ngram

  c = get_config()
  c.memory = "1G"
  for k, v in overrides.items():
    c[k] = v
  with pytest.raises(ConfigError, match=match):
    parse_ngram(c)


def test_sample_corpus_draws_from_the_model():
  lm, vocab = build(LECTURE * 3, 2, "modified_kneser_ney", discount_fallback="0.5,1.0,1.5")
  sents = list(sample_corpus(lm, 60_000, seed=3, batch=2048))
  again = list(sample_corpus(lm, 60_000, seed=3, batch=2048))
  assert all(np.array_equal(a, b) for a, b in zip(sents, again)) and len(sents) == len(again)
  # First words against p(w | <s>): within 5 standard errors each (a failure is a wrong draw).
  firsts = np.array([s[0] if len(s) else 1 for s in sents])  # </s> first: an empty sentence
  freq = np.bincount(firsts, minlength=vocab.size)[: vocab.num_predictable] / len(sents)
  p = np.exp(lm.next_logprobs([vocab.bos_id]))
  se = np.sqrt(p * (1 - p) / len(sents))
  assert np.all(np.abs(freq - p) <= 5 * se + 1e-12), np.abs(freq - p) / se
  # A stored bigram made less probable than its back-off estimate: no exact mixture.
  logp = [a.copy() for a in lm.tables.logp]
  logp[1][0] = -50.0
  bad = dataclasses.replace(lm, tables=dataclasses.replace(lm.tables, logp=tuple(logp)))
  with pytest.raises(ConfigError, match="alpha >= 0"):
    next(sample_corpus(bad, 100, seed=0))


def test_a_budget_too_small_names_the_fix(tmp_path):
  sents = _generated(40_000)
  vocab = Vocab.build(sents)
  train = encode_sentences(vocab, sents)
  # 12 MiB (6 MiB for the engine) is below the engine's working set: a ConfigError, no debris.
  with pytest.raises(ConfigError, match="too small for this corpus.*--config.memory"):
    external.estimate_kneser_ney(
      slices(train, 5000),
      vocab.size,
      vocab.bos_id,
      5,
      12 * 2**20,
      str(tmp_path),
      out_dir=str(tmp_path / "arrays"),
    )
  assert [p.name for p in tmp_path.iterdir()] == ["arrays"]


def test_evaluate_false_writes_the_same_arpa_and_scores_nothing(tmp_path):
  """Text in, ARPA out (``evaluate=False num_samples=0``, lmplz's work): the same file, no
  eval records, and out of core no scoring arrays; dumps without scores are refused."""
  import json

  from configs.ngram import get_config
  from lm_jax.ngram.run import run
  from lm_jax.ngram.spec import parse_ngram

  sents = [" ".join(s) for s in _generated(20_000)]
  root = write_corpus(tmp_path / "c", "\n".join(sents) + "\n", "a b zz\n", "b a\n")
  for memory in (None, "200M"):
    for evaluate in (True, False):
      c = get_config()
      c.order, c.data.name, c.data.dir, c.write_arpa = 4, "", str(root), True
      c.memory, c.temp_dir, c.evaluate = memory, str(tmp_path) if memory else None, evaluate
      c.num_samples = 3 if evaluate else 0
      work = tmp_path / f"{memory}_{evaluate}"
      finals = run(c, str(work), verbose=False)
      kinds = [json.loads(line)["kind"] for line in open(work / "metrics.jsonl")]
      assert ("eval" in kinds) == evaluate and ("sample" in kinds) == evaluate
      assert bool(finals) == evaluate
      if memory:
        stages = [json.loads(line) for line in open(work / "metrics.jsonl")][-1]["stages"]
        assert ("scoring arrays" in [s["stage"] for s in stages]) == evaluate
    assert filecmp.cmp(
      tmp_path / f"{memory}_True/model.arpa", tmp_path / f"{memory}_False/model.arpa", shallow=False
    )
  c = get_config()
  c.evaluate, c.dump_tokens = False, True
  with pytest.raises(ConfigError, match="dump_tokens=True with evaluate=False"):
    parse_ngram(c)
