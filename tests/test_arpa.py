import gzip
import io
import math

import numpy as np
import pytest

from lm_jax.data import corpus
from lm_jax.data.tokens import encode_sentences
from lm_jax.data.vocab import Vocab
from lm_jax.errors import ArpaError
from lm_jax.ngram import arpa_writer
from lm_jax.ngram.arpa import check_normalization, read_arpa, write_arpa
from lm_jax.ngram.counts import lookup
from lm_jax.ngram.model import NGramLM
from tests.conftest import run_python
from tests.test_ngram_smoothing import zipf_corpus

SMOOTHINGS = ["mle", "laplace", "katz", "kneser_ney", "modified_kneser_ney", "stupid_backoff"]


def _model(smoothing, order=3):
  sents = zipf_corpus(5, n_sent=300, n_words=400)
  vocab = Vocab.build(sents[:250])
  lm = NGramLM.estimate(
    encode_sentences(vocab, sents[:250]), vocab, order, smoothing, discount_fallback="0.5,1.0,1.5"
  )
  return lm, vocab, sents[250:]


@pytest.mark.parametrize("smoothing", SMOOTHINGS)
def test_roundtrip_scores_identically(smoothing, tmp_path):
  lm, vocab, held = _model(smoothing)
  path = str(tmp_path / "m.arpa.gz")
  write_arpa(lm, path)
  back = read_arpa(path)
  assert back.trie.sizes() == lm.trie.sizes()
  assert back.vocab.tokens[:2] == vocab.tokens[:2] and set(back.vocab.tokens) == set(vocab.tokens)
  ours = lm.token_logprobs(encode_sentences(vocab, held))
  theirs = back.token_logprobs(encode_sentences(back.vocab, held))
  # log10 values round-trip exactly; only the float32 device copy can round differently.
  np.testing.assert_allclose(theirs, ours, rtol=0, atol=1e-6)
  for k in range(lm.order):  # The float64 tables themselves agree to rounding of ln <-> log10.
    w = lm.trie.words(k + 1)
    ids = back.vocab.encode(vocab.decode(w.ravel())).reshape(w.shape)
    j = lookup(back.trie, ids)
    finite = np.isfinite(lm.tables.logp[k])
    np.testing.assert_allclose(
      back.tables.logp[k][j][finite], lm.tables.logp[k][finite], rtol=1e-14
    )


@pytest.mark.parametrize("smoothing", ["katz", "modified_kneser_ney", "laplace"])
def test_kenlm_reads_our_arpa_and_agrees(smoothing, tmp_path):
  kenlm = pytest.importorskip("kenlm")
  lm, vocab, held = _model(smoothing)
  path = str(tmp_path / "m.arpa")
  write_arpa(lm, path)
  k = kenlm.Model(path)
  for s in held:
    words = [w if w in vocab.index else "<unk>" for w in s]
    ours = lm.sentence_logprob(words) / math.log(10)
    assert k.score(" ".join(words), bos=True, eos=True) == pytest.approx(ours, abs=1e-4)


def test_char_level_roundtrip_with_whitespace_tokens(tmp_path):
  # Characters a word-level reader would split at or drop (space, tab, CR, VT, FF, NEL, U+2028,
  # NUL), and '<', 's', '>' which spell <s> when adjacent; every line is one sentence.
  text = [
    "the cat sat on\tthe mat.\r",
    "a  b <s> </s> <unk>\\",
    " x\x85y\u2028z\x0b\x0c\x00 \\end\\",
  ]
  sents = [list(t) for t in text * 3 + ["ab ba", " "]]
  vocab = Vocab.build(sents, level="char")
  assert " " in vocab.index and "\t" in vocab.index and "\x00" in vocab.index
  lm = NGramLM.estimate(
    encode_sentences(vocab, sents), vocab, 4, "modified_kneser_ney", discount_fallback="0.5,1.0,1.5"
  )
  path = tmp_path / "char.arpa"
  write_arpa(lm, str(path))
  with open(path, encoding="utf-8", newline="") as f:  # newline="": keep "\r" tokens as they are.
    written = f.read()
  assert "\t \t" in written and "\t\t\t" in written  # The space and tab unigrams, written as is.
  back = read_arpa(str(path), level="char")
  assert back.vocab.level == "char" and set(back.vocab.tokens) == set(vocab.tokens)
  assert back.trie.sizes() == lm.trie.sizes()
  for k in range(1, lm.order + 1):  # Every entry: its probability and (if written) back-off.
    w = lm.trie.words(k)
    j = lookup(back.trie, back.vocab.encode(vocab.decode(w.ravel())).reshape(w.shape))
    assert np.all(j >= 0)
    want = lm.tables.logp[k - 1].copy()
    if k == 1:
      want[vocab.bos_id] = -math.inf  # Written as -99: <s> is never predicted.
    np.testing.assert_allclose(back.tables.logp[k - 1][j], want, rtol=1e-14)
    if k < lm.order:  # Back-off weights are written for contexts of a longer n-gram.
      ctx = np.bincount(lm.trie.orders[k - 1].prefix, minlength=len(w)) > 0
      np.testing.assert_allclose(
        back.tables.logbow[k - 1][j][ctx], lm.tables.logbow[k - 1][ctx], rtol=1e-14
      )
  held = [list(" a\tb<s>\r \x00"), list("the  mat")]
  np.testing.assert_allclose(
    back.token_logprobs(encode_sentences(back.vocab, held)),
    lm.token_logprobs(encode_sentences(vocab, held)),
    rtol=0,
    atol=1e-6,
  )
  assert check_normalization(str(path), level="char") == pytest.approx(1.0, abs=1e-12)


def test_malformed_files(tmp_path):
  with pytest.raises(ArpaError, match="no ARPA file"):
    read_arpa(str(tmp_path / "none.arpa"))
  bad = tmp_path / "trunc.arpa"
  bad.write_text("\\data\\\nngram 1=3\n\n\\1-grams:\n-1\t<s>\t-0.5\n-1\t</s>\n\n\\end\\\n")
  with pytest.raises(ArpaError, match="header says ngram 1=3"):
    read_arpa(str(bad))
  bad.write_text(
    "\\data\\\nngram 1=2\nngram 2=1\n\n\\1-grams:\n-1\t<s>\t-0.5\n-1\t</s>\n\n"
    "\\2-grams:\n-0.3\ta </s>\n\\end\\\n"
  )
  with pytest.raises(ArpaError, match="not a unigram"):
    read_arpa(str(bad))
  bad.write_text("\\data\\\nngram 1=2\n\n\\1-grams:\nx\t<s>\n-1\t</s>\n\\end\\\n")
  with pytest.raises(ArpaError, match="not a number"):
    read_arpa(str(bad))
  gz = tmp_path / "binary.arpa"
  gz.write_bytes(gzip.compress(b"x") + b"\xff\xfe")
  with pytest.raises(ArpaError):
    read_arpa(str(gz))


def test_forked_writer_writes_the_same_bytes(tmp_path):
  # The writer forks only where jax was never started: check it in a fresh process, with
  # the size threshold lowered so that a small model takes the forked path.
  script = (
    "import sys; from lm_jax.ngram import arpa; from lm_jax.data import corpus; "
    "from lm_jax.data.vocab import Vocab; from lm_jax.data.tokens import encode_sentences; "
    "from lm_jax.ngram.model import NGramLM; "
    "s = corpus.load('pydoc').splits['train']; v = Vocab.build(s); "
    "lm = NGramLM.estimate(encode_sentences(v, s), v, 4, 'modified_kneser_ney'); "
    "from lm_jax.ngram import arpa_writer; arpa_writer.PARALLEL_MIN_NGRAMS = 0; "
    f"arpa.write_arpa(lm, {str(tmp_path / 'forked.arpa')!r}); "
    f"arpa.write_arpa(lm, {str(tmp_path / 'one.arpa')!r}, parallel=False); "
    "print(arpa_writer.cut(lm.trie.sizes()), sum(lm.trie.sizes()), 'jax' in sys.modules)"
  )
  cut, total, jax_started = run_python(script).split()
  assert 0 < int(cut) < int(total) and jax_started == "False"
  forked, one = (tmp_path / "forked.arpa").read_bytes(), (tmp_path / "one.arpa").read_bytes()
  assert forked == one and b"\\4-grams:" in forked
  assert sorted(p.name for p in tmp_path.iterdir()) == ["forked.arpa", "one.arpa"]  # no part left


def test_line_ranges_tile_the_file(tmp_path):
  # Any cut, an order boundary included, gives the same body; so does an empty order.
  s = corpus.load("pydoc").splits["train"][:40] + [["a"], ["b", "a"]]
  v = Vocab.build(s)
  lm = NGramLM.estimate(encode_sentences(v, s), v, 4, "modified_kneser_ney")
  short = NGramLM.estimate(
    encode_sentences(v, s[-2:]), v, 5, "modified_kneser_ney", discount_fallback="0.5,1.0,1.5"
  )
  assert short.trie.sizes()[-1] == 0  # "<s> b a </s>" has no 5-gram.
  for model in (lm, short):
    _check_tiling(model)


def _check_tiling(lm):
  sizes = lm.trie.sizes()
  whole = io.BytesIO()
  arpa_writer.write_lines(lm, whole, 0, sum(sizes) + 1)
  for at in sorted({0, 1, sizes[0], sizes[0] + 3, sum(sizes[:3]), sum(sizes) - 1, sum(sizes)}):
    a, b = io.BytesIO(), io.BytesIO()
    arpa_writer.write_lines(lm, a, 0, at)
    arpa_writer.write_lines(lm, b, at, sum(sizes) + 1)
    assert a.getvalue() + b.getvalue() == whole.getvalue(), at


def test_cut_balances_the_weighted_lines():
  # Weights 1.3 below the top order, 1 at it: sizes 10, 20 cost 13 + 20 = 33; half is 16.5:
  # all 10 first-order lines (13) and 3.5 top-order lines, rounded down to 3: cut at 13.
  assert arpa_writer.cut([10, 20]) == 13
  assert arpa_writer.cut([10, 20], busy=33) == 0  # The caller is busy the whole time.
  assert arpa_writer.cut([10, 20], busy=7) == 10  # (33 - 7) / 2 = 13: exactly order 1.
