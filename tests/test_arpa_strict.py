"""Strict ARPA reading: every inconsistency is one ArpaError line naming file, line, cause, fix."""

import math

import numpy as np
import pytest

from lm_jax.data.tokens import encode_sentences
from lm_jax.data.vocab import Vocab
from lm_jax.errors import ArpaError
from lm_jax.ngram.arpa import check_normalization, read_arpa, write_arpa
from lm_jax.ngram.model import NGramLM
from tests.test_ngram_smoothing import zipf_corpus

L4 = repr(math.log10(0.25))  # '-0.6020599913279624'
L2 = repr(math.log10(0.5))  # '-0.3010299956639812'
# A hand-written 3-gram file; the comment on each line is its line number in the file.
LINES = [
  "\\data\\",  # 1
  "ngram 1=4",  # 2
  "ngram 2=3",  # 3
  "ngram 3=2",  # 4
  "",  # 5
  "\\1-grams:",  # 6
  "-99\t<s>\t-0.25",  # 7   <s> is never predicted: probability 0 (-99), as KenLM writes
  f"{L4}\t</s>",  # 8   p = 0.25
  f"{L2}\ta\t-0.2",  # 9   p = 0.5
  f"{L4}\tb\t-0.1",  # 10  p = 0.25: the unigrams sum to exactly 1
  "",  # 11
  "\\2-grams:",  # 12
  "-0.2\t<s> a\t-0.1",  # 13
  "-0.3\ta b\t-0.05",  # 14
  "-0.1\tb </s>",  # 15
  "",  # 16
  "\\3-grams:",  # 17
  "-0.1\t<s> a b",  # 18
  "-0.05\ta b </s>",  # 19
  "",  # 20
  "\\end\\",  # 21
]
GOOD = "\n".join(LINES) + "\n"


def _edit(**lines: str) -> str:
  """GOOD with line ``lN`` (1-based) replaced; None deletes the line."""
  out = list(LINES)
  for key, value in sorted(lines.items(), key=lambda kv: -int(kv[0][1:])):
    if value is None:
      del out[int(key[1:]) - 1]
    else:
      out[int(key[1:]) - 1] = value
  return "\n".join(out) + "\n"


def _error(tmp_path, text: str, level: str = "word") -> str:
  path = tmp_path / "model.arpa"
  path.write_text(text, encoding="utf-8", newline="")
  with pytest.raises(ArpaError) as e:
    read_arpa(str(path), level)
  msg = str(e.value)
  assert isinstance(e.value, ValueError)
  assert "\n" not in msg and msg.startswith(str(path)), msg  # One line that names the file.
  assert "rewrite it" in msg or "give the" in msg, msg  # ... and the fix.
  return msg


def test_the_hand_written_file_reads(tmp_path):
  path = tmp_path / "model.arpa"
  path.write_text(GOOD, encoding="utf-8")
  lm = read_arpa(str(path))
  assert lm.vocab.tokens == ("<unk>", "</s>", "a", "b", "<s>")
  assert lm.trie.sizes() == [5, 3, 2]
  np.testing.assert_allclose(np.exp(lm.tables.logp[0]), [0, 0.25, 0.5, 0.25, 0], rtol=1e-15)
  assert lm.tables.logbow[0][4] == pytest.approx(-0.25 * math.log(10))  # <s>'s back-off: 10**-0.25
  assert check_normalization(str(path)) == pytest.approx(1.0, abs=1e-15)  # 0.25 + 0.5 + 0.25
  # Windows line ends (an editor's CRLF) read the same.
  path.write_text(GOOD.replace("\n", "\r\n"), encoding="utf-8", newline="")
  crlf = read_arpa(str(path))
  assert crlf.trie.sizes() == [5, 3, 2] and all(
    np.array_equal(a, b) for a, b in zip(crlf.tables.logp, lm.tables.logp)
  )


@pytest.mark.parametrize("log10p", ["0", "-99", "-120", "-inf"])
def test_probability_zero_and_one_for_bos_are_accepted(tmp_path, log10p):
  # lmplz writes 0 (p = 1) for <s>, lm_jax -99; <s> is never predicted either way.
  path = tmp_path / "model.arpa"
  path.write_text(_edit(l7=f"{log10p}\t<s>\t-0.25"), encoding="utf-8")
  assert read_arpa(str(path)).tables.logp[0][4] == -math.inf


def test_truncated_before_a_section(tmp_path):
  msg = _error(tmp_path, GOOD[: GOOD.index("\\3-grams:")])
  # The last non-blank line is line 15, the last 2-gram.
  assert "line 15:" in msg and "ends in the \\2-grams: section" in msg
  assert "ngram 3=2" in msg and "truncated" in msg


def test_truncated_mid_section(tmp_path):
  msg = _error(tmp_path, GOOD[: GOOD.index("-0.3\ta b")])  # Cut after the first 2-gram (line 13).
  assert "line 13:" in msg and "ends in the \\2-grams: section" in msg and "truncated" in msg
  msg = _error(tmp_path, GOOD[: GOOD.index("-0.05\ta b </s>") + 6])  # Mid-line in the last section.
  assert "line 19:" in msg and "no \\end\\ line after the \\3-grams: section" in msg
  assert "truncated" in msg


def test_missing_end(tmp_path):
  msg = _error(tmp_path, _edit(l21=None))
  assert "line 19:" in msg and "no \\end\\" in msg
  assert "(2 of the header's ngram 3=2 entries)" in msg


@pytest.mark.parametrize("count,has", [(4, 3), (2, 3)])
def test_header_count_disagrees_with_the_section(tmp_path, count, has):
  msg = _error(tmp_path, _edit(l3=f"ngram 2={count}"))
  # Reported at the \2-grams: heading, line 12.
  assert f"line 12: the 2-gram section has {has} entries but the header says ngram 2={count}" in msg


def test_header_count_matches_but_lines_were_removed(tmp_path):
  # The 2-gram 'a b' (line 14) deleted and the header fixed up: both 3-grams, the first now on
  # line 17, lose a 2-gram they extend.
  msg = _error(tmp_path, _edit(l3="ngram 2=2", l14=None))
  assert "line 17: 3-gram '<s> a b' lacks its (2)-gram prefix or suffix" in msg


def test_header_problems(tmp_path):
  assert "line 3: 'ngram two=3' in the \\data\\ header" in _error(tmp_path, _edit(l3="ngram two=3"))
  assert "gives ngram 2= twice" in _error(tmp_path, _edit(l4="ngram 2=3"))
  assert "counts of orders 1, 3; it must give" in _error(tmp_path, _edit(l3=None))
  assert "no \\data\\ line" in _error(tmp_path, _edit(l1=None))
  extra = _edit(l21="\\4-grams:\n-0.1\t<s> a b </s>\n\n\\end\\")
  assert "line 21: an extra \\4-grams: section" in _error(tmp_path, extra)
  swapped = GOOD.replace("\\2-grams:", "\\9-grams:")
  assert "line 12: section \\9-grams: where \\2-grams: was expected" in _error(tmp_path, swapped)


@pytest.mark.parametrize(
  "line,value,cause",
  [
    ("l14", "nan\ta b\t-0.05", "2-gram log10 probability 'nan' is NaN"),
    ("l14", "inf\ta b\t-0.05", "2-gram log10 probability 'inf' is infinite"),
    ("l14", "1e999\ta b\t-0.05", "2-gram log10 probability '1e999' is infinite"),
    ("l18", "0.25\t<s> a b", "3-gram log10 probability '0.25' is positive"),
    ("l9", f"{L2}\ta\tnan", "1-gram back-off weight 'nan' is NaN"),
    ("l14", "-0.3\ta b\t-inf", "2-gram back-off weight '-inf' is infinite"),
    ("l14", "-0.3\ta b\tx", "2-gram back-off weight 'x' is not a number"),
  ],
)
def test_bad_values(tmp_path, line, value, cause):
  msg = _error(tmp_path, _edit(**{line: value}))
  assert f"line {line[1:]}: the {cause}" in msg, msg


@pytest.mark.parametrize(
  "edits,where",
  [  # Each edit adds one line: the repeat, after its twin.
    (
      {"l2": "ngram 1=5", "l10": f"{L4}\tb\t-0.1\n-1.0\ta"},
      "line 11: the 1-gram 'a' is listed twice (also on line 9)",
    ),
    (
      {"l3": "ngram 2=4", "l15": "-0.1\tb </s>\n-0.4\ta b"},
      "line 16: the 2-gram 'a b' is listed twice (also on line 14)",
    ),
    (
      {"l4": "ngram 3=3", "l18": "-0.1\t<s> a b\n-0.1\t<s>  a\tb"},  # Other spacing, same 3-gram.
      "line 19: the 3-gram '<s> a b' is listed twice (also on line 18)",
    ),
  ],
)
def test_duplicate_entries(tmp_path, edits, where):
  assert where in _error(tmp_path, _edit(**edits))


def test_unknown_word_and_malformed_line(tmp_path):
  assert "line 15: the 2-gram section uses 'c', which is not a unigram" in _error(
    tmp_path, _edit(l15="-0.1\tb c")
  )
  assert "line 15: malformed 2-gram line '-0.1 b'" in _error(tmp_path, _edit(l15="-0.1\tb"))


def test_char_level_lines_must_be_exact(tmp_path):
  # In a character file "a b" is two tokens; "ab" cannot be split into characters with spaces.
  msg = _error(tmp_path, _edit(l14="-0.3\tab\t-0.05"), level="char")
  assert "line 14: malformed 2-gram line" in msg and "one character" in msg


def test_normalization_of_a_written_model_and_an_edited_one(tmp_path):
  sents = zipf_corpus(3, n_sent=300, n_words=50)
  vocab = Vocab.build(sents)
  lm = NGramLM.estimate(
    encode_sentences(vocab, sents), vocab, 3, "modified_kneser_ney", discount_fallback="0.5,1.0,1.5"
  )
  path = tmp_path / "m.arpa"
  write_arpa(lm, str(path))
  assert check_normalization(str(path)) == pytest.approx(1.0, abs=1e-12)
  assert check_normalization(lm) == pytest.approx(1.0, abs=1e-12)
  # Edit one unigram to probability 1 (log10 0): the sum grows by 1 - p(word).
  lines = path.read_text(encoding="utf-8").split("\n")
  i = lines.index("\\1-grams:") + 3  # The third unigram, the first ordinary word.
  logp, word, *rest = lines[i].split("\t")
  lines[i] = "\t".join(["0", word, *rest])
  path.write_text("\n".join(lines), encoding="utf-8")
  edited = read_arpa(str(path))  # Still a well-formed file ...
  with pytest.raises(ArpaError, match=r"sum to ([0-9.]+), not 1 \(tolerance 0.0001\)") as e:
    check_normalization(str(path))  # ... but no longer a distribution.
  msg = str(e.value)
  assert "\n" not in msg and msg.startswith(f"{path}: the unigram probabilities")
  total = float(msg.split("sum to ")[1].split(",")[0])
  assert total == pytest.approx(2.0 - 10 ** float(logp), abs=1e-8)  # 1 - p(word) + 1
  with pytest.raises(ArpaError, match="the model: the unigram probabilities sum to"):
    check_normalization(edited)


def test_normalization_tolerance_and_stupid_backoff(tmp_path):
  path = tmp_path / "model.arpa"
  path.write_text(_edit(l10="-0.602\tb\t-0.1"), encoding="utf-8")
  # 0.25 + 0.5 + 10**-0.602 = 1.0000345361696432: inside 1e-4, outside 1e-5.
  assert check_normalization(str(path)) == pytest.approx(1.0000345361696432, abs=1e-15)
  with pytest.raises(ArpaError, match=r"sum to 1.00003454, not 1 \(tolerance 1e-05\)"):
    check_normalization(str(path), tol=1e-5)
  sents = zipf_corpus(4, n_sent=200, n_words=30)
  vocab = Vocab.build(sents)
  sb = NGramLM.estimate(encode_sentences(vocab, sents), vocab, 2, "stupid_backoff")
  with pytest.raises(ArpaError, match="stupid_backoff"):
    check_normalization(sb)


def test_kenlm_reference_is_normalized(kenlm_reference):
  # lmplz rounds each log10 to 8 significant digits: the sum is 1 to about 1e-7.
  assert check_normalization(str(kenlm_reference / "ptb.o3.arpa.gz"), tol=1e-6) == pytest.approx(
    1.0, abs=1e-6
  )
