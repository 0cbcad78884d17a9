"""lm_jax's modified Kneser-Ney against lmplz on corpora other than PTB.

Runs only where KenLM's ``lmplz`` binary is available (``$LMPLZ``, PATH, or
../peers/kenlm/build/bin beside the checkout; it is built from KenLM's source,
not installed by lm_jax).  Text without a literal ``<unk>`` needs no renaming:
both tools then add one zero-count ``<unk>`` and share the same uniform floor,
so every ARPA entry should agree to float32 precision.
"""

import os
import shutil
import subprocess

import numpy as np
import pytest

from lm_jax.data import corpus as corpus_lib
from lm_jax.data.tokens import encode_sentences
from lm_jax.data.vocab import Vocab
from lm_jax.ngram.arpa import read_arpa
from lm_jax.ngram.counts import lookup
from lm_jax.ngram.model import NGramLM
from tests.conftest import REPO, data_dir

LN10 = np.log(10)


def _lmplz() -> str | None:
  for cand in (
    os.environ.get("LMPLZ"),
    shutil.which("lmplz"),
    str(REPO.parent / "peers" / "kenlm" / "build" / "bin" / "lmplz"),
  ):
    if cand and os.access(cand, os.X_OK):
      return cand
  return None


def _corpora():
  yield "pydoc", corpus_lib.load("pydoc")
  d = data_dir()
  if d is not None:  # Tiny Shakespeare read as words: a corpus with no <unk> at all.
    yield (
      "shakespeare_words",
      corpus_lib.load("tinyshakespeare", data_dir=str(d), level="word", download=False),
    )


@pytest.mark.slow
@pytest.mark.skipif(_lmplz() is None, reason="lmplz not built (set LMPLZ=/path/to/lmplz)")
@pytest.mark.parametrize("order", [3, 5])
def test_every_entry_matches_lmplz(tmp_path, order):
  for name, raw in _corpora():
    train_txt = tmp_path / f"{name}.txt"
    train_txt.write_text("\n".join(" ".join(s) for s in raw.splits["train"]) + "\n")
    arpa_path = tmp_path / f"{name}.o{order}.arpa"
    subprocess.run(
      [
        _lmplz(),
        "-o",
        str(order),
        "-S",
        "10%",
        "-T",
        str(tmp_path),
        "--text",
        str(train_txt),
        "--arpa",
        str(arpa_path),
      ],
      check=True,
      capture_output=True,
    )
    ref = read_arpa(str(arpa_path))
    vocab = Vocab.build(raw.splits["train"])
    lm = NGramLM.estimate(
      encode_sentences(vocab, raw.splits["train"]), vocab, order, "modified_kneser_ney"
    )
    assert ref.trie.sizes() == lm.trie.sizes(), name
    to_ref = np.array([ref.vocab.index[t] for t in vocab.tokens])
    for k in range(1, order + 1):
      words = lm.trie.words(k)
      j = lookup(ref.trie, to_ref[words])
      assert np.all(j >= 0), (name, k)
      keep = words[:, 0] != vocab.bos_id
      dp = np.abs(lm.tables.logp[k - 1][keep] - ref.tables.logp[k - 1][j[keep]]) / LN10
      db = np.abs(lm.tables.logbow[k - 1] - ref.tables.logbow[k - 1][j]) / LN10
      assert dp.max() < 1e-4 and db.max() < 1e-4, (name, k, dp.max(), db.max())
    test = encode_sentences(vocab, raw.splits["test"])
    ours = lm.evaluate(test, "test").perplexity
    theirs = ref.evaluate(encode_sentences(ref.vocab, raw.splits["test"]), "test").perplexity
    assert ours == pytest.approx(theirs, rel=1e-5), name


def _compare(lm, ref, names, tol):
  to_ref = np.array([ref.vocab.index[t] for t in names])
  for k in range(1, lm.order + 1):
    words = lm.trie.words(k)
    j = lookup(ref.trie, to_ref[words])
    assert np.all(j >= 0), k
    keep = words[:, 0] != lm.vocab.bos_id if k == 1 else slice(None)
    dp = np.abs(lm.tables.logp[k - 1][keep] - ref.tables.logp[k - 1][j[keep]]) / LN10
    db = np.abs(lm.tables.logbow[k - 1] - ref.tables.logbow[k - 1][j]) / LN10
    assert dp.max() < tol and db.max() < tol, (k, dp.max(), db.max())


@pytest.mark.slow
@pytest.mark.skipif(_lmplz() is None, reason="lmplz not built (set LMPLZ=/path/to/lmplz)")
@pytest.mark.parametrize("order,prune", [(3, "0 0 1"), (5, "0 1 1 1 1")])
def test_pruned_entries_match_lmplz(tmp_path, order, prune):
  """``prune`` as ``lmplz --prune``: the same n-grams survive, every entry agrees.

  Word corpora without a literal ``<unk>`` agree to lmplz's float32 (observed 2.6e-7
  log10); PTB (``<unk>`` renamed ``UNK`` for lmplz) within its uniform-floor
  difference of 2.7e-5, as the unpruned PTB models (README).
  """
  cases = [(name, raw, 1e-6, lambda w: w) for name, raw in _corpora()]
  d = data_dir()
  if d is not None:
    ptb = corpus_lib.load("ptb", data_dir=str(d), download=False)
    cases.append(("ptb", ptb, 3e-5, lambda w: "UNK" if w == "<unk>" else w))
  for name, raw, tol, rename in cases:
    train_txt = tmp_path / f"{name}.txt"
    with open(train_txt, "w", encoding="utf-8") as f:
      f.writelines(" ".join(map(rename, s)) + "\n" for s in raw.splits["train"])
    arpa_path = tmp_path / f"{name}.arpa"
    cmd = [_lmplz(), "-o", str(order), "-S", "10%", "-T", str(tmp_path), "--prune", *prune.split()]
    subprocess.run(
      [*cmd, "--text", str(train_txt), "--arpa", str(arpa_path)], check=True, capture_output=True
    )
    ref = read_arpa(str(arpa_path))
    vocab = Vocab.build(raw.splits["train"])
    lm = NGramLM.estimate(
      encode_sentences(vocab, raw.splits["train"]), vocab, order, "modified_kneser_ney", prune=prune
    )
    extra_unk = int(name == "ptb")  # lmplz's own zero-count <unk> beside PTB's UNK
    assert ref.trie.sizes()[1:] == lm.trie.sizes()[1:], name
    assert ref.trie.sizes()[0] == lm.trie.sizes()[0] + extra_unk, name
    _compare(lm, ref, [rename(t) for t in vocab.tokens], tol)
