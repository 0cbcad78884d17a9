"""Strict ARPA parsing: the sections of a file as vectorized columns, every value checked.

``_Reader`` splits a file into its header and sections and turns each section into
numpy columns (log10 p, the n-gram's tokens, log10 back-off), checking header counts
against sections, missing sections or ``\\end\\``, log10 probabilities <= 0 and finite
back-off weights; a failure is an ``ArpaError`` naming file, line, cause and fix.
``lm_jax.ngram.arpa`` builds the model from these columns.
"""

from __future__ import annotations

import gzip
import itertools
import math
import re
from typing import IO

import numpy as np

from lm_jax.data.vocab import BOS, EOS, UNK, Vocab
from lm_jax.errors import ArpaError

LN10 = math.log(10.0)
ZERO = -99.0
ROUNDING = 1e-12  # log10 p up to this is p = 1 up to float rounding, not a positive log.
_STR = np.dtypes.StringDType()  # Variable-width strings: vectorized concatenation.
REWRITE = (
  "rewrite it (python -m experiments.ngram --config=configs/ngram.py --workdir=DIR "
  "--config.write_arpa=True, or lmplz --arpa)"
)


def _open(path: str, mode: str) -> IO[str]:
  # newline="": no newline translation, so "\r" stays a character (a token of char models).
  if str(path).endswith(".gz"):
    return gzip.open(path, mode + "t", encoding="utf-8", newline="")
  return open(path, mode, encoding="utf-8", newline="")


def _unused(text: str, count: int) -> list[str]:
  """``count`` private-use characters that ``text`` does not contain."""
  free = (
    c
    for c in map(chr, itertools.chain(range(0xE000, 0xF900), range(0xF0000, 0x110000)))
    if c not in text
  )
  return list(itertools.islice(free, count))


_DATA_RE = re.compile(r"^\\data\\[ \t\r]*$", re.M)
_HEADER_RE = re.compile(r"ngram[ \t]+(\d+)[ \t]*=[ \t]*(\d+)")
_SECTION_RE = re.compile(r"^\\(\d+)-grams:[ \t\r]*$", re.M)
_END_RE = re.compile(r"^\\end\\[ \t\r]*$", re.M)


class _Reader:
  """An ARPA file's text (char level: one character per token), its checks and messages."""

  def __init__(self, path: str, level: str):
    self.path, self.char, self.marks = str(path), level == "char", {}
    try:
      with _open(path, "r") as f:
        text = f.read()
    except FileNotFoundError:
      raise ArpaError(
        f"no ARPA file at {path}; give the .arpa (or .arpa.gz) file that "
        "lmplz or lm_jax (--config.write_arpa=True) wrote."
      ) from None
    except (UnicodeDecodeError, EOFError, OSError) as e:
      raise ArpaError(
        f"{path} is not UTF-8 ARPA text ({e}); is it a binary KenLM model? "
        "Give the .arpa (or .arpa.gz) file."
      ) from None
    if self.char:  # Stand-ins (marks) for multi-character tokens and NUL (numpy drops it).
      for tok, mark in zip((UNK, EOS, BOS, "\x00"), _unused(text, 4)):
        text, self.marks[mark] = text.replace(tok, mark), tok
    self.text = text

  def fail(self, line: int | None, cause: str, fix: str = REWRITE) -> ArpaError:
    for mark, tok in self.marks.items():
      cause = cause.replace(mark, tok)
    return ArpaError(f"{self.path}{f' line {line}' if line else ''}: {cause} — {fix}.")

  def line_at(self, pos: int) -> int:
    return self.text.count("\n", 0, pos) + 1

  def header(self, data: re.Match, stop: int) -> dict[int, int]:
    """The ``ngram k=count`` lines between ``\\data\\`` and the first section."""
    sizes, first = {}, self.line_at(data.start())
    for i, line in enumerate(self.text[data.end() : stop].split("\n")):
      h = _HEADER_RE.fullmatch(line.strip())
      if line.strip() and h is None:
        raise self.fail(
          first + i, f"{line.strip()[:60]!r} in the \\data\\ header is not 'ngram N=count'"
        )
      if h and int(h[1]) in sizes:
        raise self.fail(first + i, f"the header gives ngram {h[1]}= twice")
      if h:
        sizes[int(h[1])] = int(h[2])
    if sorted(sizes) != list(range(1, len(sizes) + 1)):
      raise self.fail(
        first,
        "the \\data\\ header gives the counts of orders "
        f"{', '.join(map(str, sorted(sizes))) or 'none'}; it must give ngram 1= to "
        "ngram N= with no order missing",
      )
    return sizes

  def sections(self) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per order, the entry lines (a string array) and their line numbers, counts checked."""
    text = self.text
    data = _DATA_RE.search(text)
    if data is None:
      raise self.fail(
        None,
        "no \\data\\ line, so this is not an ARPA file",
        "give the .arpa (or .arpa.gz) file that lmplz or lm_jax wrote",
      )
    marks = list(_SECTION_RE.finditer(text, data.end()))
    if not marks:
      raise self.fail(None, "no \\1-grams: section after \\data\\; the file is truncated")
    sizes = self.header(data, marks[0].start())
    n = len(sizes)
    for k, m in enumerate(marks, start=1):
      if k > n or int(m[1]) != k:
        cause = (
          f"an extra \\{m[1]}-grams: section: the header announces orders 1..{n} only"
          if k > n
          else f"section \\{m[1]}-grams: where \\{k}-grams: was expected"
        )
        raise self.fail(self.line_at(m.start()), cause + "; the file is truncated or was edited")
    last = self.line_at(len(text.rstrip("\n")))
    if len(marks) < n:
      k = len(marks) + 1
      raise self.fail(
        last,
        f"the file ends in the \\{k - 1}-grams: section but the header "
        f"says ngram {k}={sizes[k]}; the file is truncated",
      )
    end = _END_RE.search(text, marks[-1].end())
    if end is None:
      got = sum(1 for line in text[marks[-1].end() :].split("\n") if line.strip())
      raise self.fail(
        last,
        f"no \\end\\ line after the \\{n}-grams: section ({got} of the "
        f"header's ngram {n}={sizes[n]} entries); the file is truncated",
      )
    out = []
    for k, m, stop in zip(range(1, n + 1), marks, [m.start() for m in marks[1:]] + [end.start()]):
      first = self.line_at(m.start())
      lines = np.array(text[m.end() : stop].split("\n"), dtype=_STR)  # [0]: rest of the heading.
      stripped = np.strings.strip(lines)
      keep = np.nonzero(stripped != "")[0]
      rows = (lines if self.char else stripped)[keep]
      if len(rows) != sizes[k]:
        raise self.fail(
          first,
          f"the {k}-gram section has {len(rows)} entries but the header "
          f"says ngram {k}={sizes[k]}; the file is truncated or was edited",
        )
      out.append((rows, first + keep))
    return out

  def columns(self, rows: np.ndarray, lines: np.ndarray, k: int):
    """log10p, k token key columns (words, or code points at char level), log10bow."""
    if not self.char:  # Split at any whitespace.
      rows = np.strings.replace(rows, "\t", " ")
      while np.any(np.strings.find(rows, "  ") >= 0):
        rows = np.strings.replace(rows, "  ", " ")
      fields = np.strings.count(rows, " ") + 1
      bad = np.nonzero((fields != k + 1) & (fields != k + 2))[0]
      if len(bad):
        raise self.fail(
          lines[bad[0]],
          f"malformed {k}-gram line {str(rows[bad[0]])[:80]!r}: "
          f"expected 'log10p w1..w{k} [log10bow]'",
          "read a character-level file with level='char', or " + REWRITE,
        )
      cols = []
      for _ in range(k + 2):
        head, _, rows = np.strings.partition(rows, np.array(" ", dtype=_STR))
        cols.append(head)
      return cols[0], cols[1 : k + 1], cols[k + 1]
    # Char level: tokens at even offsets after the first tab, spaces between, tab or end after.
    logp, _, rest = np.strings.partition(rows, np.array("\t", dtype=_STR))
    length = np.strings.str_len(rest)
    width = max(int(length.max(initial=0)), 2 * k + 1)
    codes = rest.astype(f"<U{width}").view(np.uint32).reshape(len(rest), width)
    ok = (length >= 2 * k - 1) & np.all(codes[:, 1 : 2 * k - 1 : 2] == ord(" "), axis=1)
    ok &= (length == 2 * k - 1) | (codes[:, 2 * k - 1] == ord("\t"))
    bad = np.nonzero(~ok)[0]
    if len(bad):
      raise self.fail(
        lines[bad[0]],
        f"malformed {k}-gram line {str(rows[bad[0]])[:80]!r}: a "
        f"character-level ARPA line is 'log10p<TAB>c1 c2 .. c{k}[<TAB>log10bow]' "
        "with one character (or <s>, </s>, <unk>) per token",
        "read a word-level file with level='word', or " + REWRITE,
      )
    bow = np.ascontiguousarray(codes[:, 2 * k :]).view(f"<U{width - 2 * k}").reshape(-1)
    return logp, [codes[:, 2 * j].astype(np.int64) for j in range(k)], bow

  def tokens(self, key_col: np.ndarray) -> list[str]:
    if not self.char:
      return key_col.tolist()
    return [self.marks.get(chr(c), chr(c)) for c in key_col.tolist()]

  def ids(self, keys: list[np.ndarray], vocab: Vocab) -> np.ndarray:
    """Vocabulary ids [M, k] of the key columns; -1 for a token that is not a unigram."""
    if not self.char:
      index, missing = vocab.index, itertools.repeat(-1)
      return np.stack(
        [np.array(list(map(index.get, c.tolist(), missing)), dtype=np.int64) for c in keys], axis=1
      )
    inverse = {tok: mark for mark, tok in self.marks.items()}
    code = np.array([ord(inverse.get(t, t)) for t in vocab.tokens], dtype=np.int64)
    order, keys = np.argsort(code), np.stack(keys, axis=1)
    pos = np.minimum(np.searchsorted(code[order], keys), len(code) - 1)
    return np.where(code[order][pos] == keys, order[pos], -1)

  def log10(self, col: np.ndarray, lines: np.ndarray, k: int, bow: bool) -> np.ndarray:
    """A log10 column as natural logs (-99 or below: log 0), every value checked."""
    what = "back-off weight" if bow else "log10 probability"
    try:
      v = (np.where(col == "", "0", col) if bow else col).astype(np.float64)
    except ValueError:  # Find the culprit: parse one by one.
      i = next((i for i, s in enumerate(col.tolist()) if not _is_float(s)), 0)
      cause = f"the {k}-gram {what} {str(col[i])[:30]!r} is not a number"
      raise self.fail(lines[i], cause) from None
    bad = ~np.isfinite(v) if bow else np.isnan(v) | (v > ROUNDING)
    if np.any(bad):
      i = int(np.argmax(bad))
      why = (
        "NaN"
        if np.isnan(v[i])
        else "infinite"
        if np.isinf(v[i])
        else "positive, a probability above 1"
      )
      need = "a finite number" if bow else "a number <= 0 (-99 for probability 0)"
      raise self.fail(
        lines[i],
        f"the {k}-gram {what} {str(col[i])[:30]!r} is {why}; it must be "
        f"{need}; the file is corrupt or was edited",
      )
    return np.where(v <= ZERO, -math.inf, v * LN10)


def _is_float(s: str) -> bool:
  try:
    return np.array([s], dtype=_STR).astype(np.float64) is not None
  except ValueError:
    return False
