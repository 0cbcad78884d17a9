"""Parity with KenLM on Penn Treebank: lmplz's ARPA files and query's sentence scores.

The gold files (../shared/reference/kenlm) were made with ``<unk>`` renamed to
``UNK`` (lmplz refuses the literal); lm_jax's ``<unk>`` is mapped to ``UNK`` to
compare.  KenLM's own zero-count ``<unk>`` has no counterpart in lm_jax.
"""

import functools
import math

import numpy as np
import pytest

from lm_jax.data.pipeline import data_config, load_data
from lm_jax.data.tokens import encode_sentences
from lm_jax.ngram.arpa import read_arpa
from lm_jax.ngram.counts import lookup
from lm_jax.ngram.model import NGramLM

LN10 = math.log(10)
# Perplexities and log10 totals printed by KenLM (reference README).
KENLM = {
  3: {"test": (148.2815, -178962.6989), "valid": (157.7653, -162125.3183)},
  5: {"test": (141.1862, -177207.3770), "valid": (148.0074, -160080.1051)},
}


@functools.lru_cache(maxsize=1)
def _ptb(data_dir):
  cfg = data_config("ptb")
  cfg.dir, cfg.download = str(data_dir), False
  return load_data(cfg)


@functools.lru_cache(maxsize=2)
def _estimated(data_dir, order):
  raw, vocab, arrays = _ptb(data_dir)
  return NGramLM.estimate(arrays["train"], vocab, order, "modified_kneser_ney")


@functools.lru_cache(maxsize=2)
def _kenlm_arpa(ref_dir, order):
  return read_arpa(str(ref_dir / f"ptb.o{order}.arpa.gz"))


@pytest.mark.slow
@pytest.mark.parametrize("order", [3, 5])
def test_every_probability_and_backoff_matches_lmplz(ptb_dir, kenlm_reference, order):
  lm = _estimated(ptb_dir, order)
  ref = _kenlm_arpa(kenlm_reference, order)
  names = ["UNK" if t == "<unk>" else t for t in lm.vocab.tokens]
  to_ref = np.array([ref.vocab.index[t] for t in names])
  # Same n-grams: lmplz lists one more unigram, its own zero-count <unk>.
  assert ref.trie.sizes()[1:] == lm.trie.sizes()[1:]
  assert ref.trie.sizes()[0] == lm.trie.sizes()[0] + 1
  for k in range(1, order + 1):
    words = lm.trie.words(k)
    j = lookup(ref.trie, to_ref[words])
    assert np.all(j >= 0), f"{k}-grams missing from lmplz's ARPA"
    keep = words[:, 0] != lm.vocab.bos_id if k == 1 else slice(None)  # <s> is never predicted.
    dp = np.abs(lm.tables.logp[k - 1][keep] - ref.tables.logp[k - 1][j[keep]]) / LN10
    db = np.abs(lm.tables.logbow[k - 1] - ref.tables.logbow[k - 1][j]) / LN10
    assert dp.max() < 1e-4 and db.max() < 1e-4, (k, dp.max(), db.max())


@pytest.mark.slow
@pytest.mark.parametrize("order", [3, 5])
def test_perplexity_matches_kenlm(ptb_dir, order):
  _, _, arrays = _ptb(ptb_dir)
  lm = _estimated(ptb_dir, order)
  for split in ("test", "valid"):
    res = lm.evaluate(arrays[split], split)
    ppl, log10 = KENLM[order][split]
    assert res.tokens == (82_430 if split == "test" else 73_760)
    assert res.perplexity == pytest.approx(ppl, abs=0.05 if order == 5 else 0.01)
    assert -res.nll / LN10 == pytest.approx(log10, abs=0.1)


@pytest.mark.slow
@pytest.mark.parametrize("order", [3, 5])
def test_kenlm_arpa_scores_to_kenlm_numbers(ptb_dir, kenlm_reference, order):
  raw, _, _ = _ptb(ptb_dir)
  ref = _kenlm_arpa(kenlm_reference, order)
  for split in ("test", "valid"):
    sents = [["UNK" if w == "<unk>" else w for w in s] for s in raw.splits[split]]
    tokens = encode_sentences(ref.vocab, sents)
    logp = ref.token_logprobs(tokens)
    per_sentence = np.add.reduceat(logp, tokens.starts[:-1]) / LN10
    gold = np.loadtxt(kenlm_reference / f"ptb.o{order}.{split}.sentence_log10.txt")
    np.testing.assert_allclose(per_sentence, gold, atol=1e-3)  # gold has 4-5 printed decimals
    res = ref.evaluate(tokens, split)
    assert res.perplexity == pytest.approx(KENLM[order][split][0], abs=1e-3)
