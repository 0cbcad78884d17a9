"""ARPA back-off files: log10 probabilities and back-off weights, read strictly and written.

Probabilities are written with Python's shortest round-trip float format, so
a model read back has the same log10 values bit for bit.  ``-99`` stands for
probability zero (``<s>``, which is never predicted, and zero-count words of
unsmoothed models).  Files ending in ``.gz`` are (de)compressed on the fly.

Reading checks everything, vectorized: header counts against sections, no
section or ``\\end\\`` missing, log10 probabilities <= 0, finite back-off
weights, no n-gram twice; a failure is an ``ArpaError`` naming file, line,
cause and fix.  Word-level lines split at any whitespace (as KenLM's reader);
character-level lines are read in ``write_arpa``'s exact layout
(``log10p<TAB>c1 c2 .. ck[<TAB>log10bow]``), so whitespace characters are tokens.
"""

from __future__ import annotations

import gzip
import itertools
import math
import os
import re
from typing import IO

import numpy as np

from lm_jax.data.vocab import BOS, EOS, UNK, Vocab
from lm_jax.errors import ArpaError
from lm_jax.ngram.counts import Counts, extend
from lm_jax.ngram.smoothing import Tables

LN10 = math.log(10.0)
ZERO = -99.0
ROUNDING = 1e-12  # log10 p up to this is p = 1 up to float rounding, not a positive log.
_STR = np.dtypes.StringDType()  # Variable-width strings: vectorized concatenation.
REWRITE = ("rewrite it (python -m experiments.ngram --config=configs/ngram.py --workdir=DIR "
           "--config.write_arpa=True, or lmplz --arpa)")


def _open(path: str, mode: str) -> IO[str]:
  # newline="": no newline translation, so "\r" stays a character (a token of char models).
  if str(path).endswith(".gz"):
    return gzip.open(path, mode + "t", encoding="utf-8", newline="")
  return open(path, mode, encoding="utf-8", newline="")


def _unused(text: str, count: int) -> list[str]:
  """``count`` private-use characters that ``text`` does not contain."""
  free = (c for c in map(chr, itertools.chain(range(0xE000, 0xF900), range(0xF0000, 0x110000)))
          if c not in text)
  return list(itertools.islice(free, count))


def _fmt(ln_values: np.ndarray) -> np.ndarray:
  """log10 strings (shortest round-trip repr) of natural-log values; log 0 -> -99."""
  text = np.array(list(map(repr, (ln_values / LN10).tolist())), dtype=_STR)
  return np.where(np.isneginf(ln_values), repr(ZERO), text)


def write_arpa(model, path: str) -> None:
  """Writes a model (``NGramLM``) as an ARPA file (columns built as numpy string arrays)."""
  trie, tables, vocab = model.trie, model.tables, model.vocab
  n = trie.order
  # numpy strings drop trailing NULs, so a NUL token (char models) is written via a stand-in.
  nul = _unused("".join(vocab.tokens), 1)[0] if any("\x00" in t for t in vocab.tokens) else None
  toks = np.array([t.replace("\x00", nul) for t in vocab.tokens] if nul else vocab.tokens,
                  dtype=_STR)
  with _open(path, "w") as f:
    f.write("\\data\\\n")
    for k in range(1, n + 1):
      f.write(f"ngram {k}={trie.sizes()[k - 1]}\n")
    for k in range(1, n + 1):
      f.write(f"\n\\{k}-grams:\n")
      words = trie.words(k)
      names = toks[words[:, 0]]
      for j in range(1, k):
        names = np.strings.add(np.strings.add(names, " "), toks[words[:, j]])
      logp = tables.logp[k - 1].copy()
      if k == 1:
        logp[vocab.bos_id] = -math.inf
      lines = np.strings.add(np.strings.add(_fmt(logp), "\t"), names)
      if k < n:
        # Back-off weights belong to n-grams that are contexts of a longer n-gram.
        is_context = np.bincount(trie.orders[k - 1].prefix, minlength=len(words)) > 0
        with_bow = np.strings.add(np.strings.add(lines, "\t"), _fmt(tables.logbow[k - 1]))
        lines = np.where(is_context, with_bow, lines)
      body = "\n".join(lines.tolist())
      f.write(body.replace(nul, "\x00") if nul else body)
      f.write("\n")
    f.write("\n\\end\\\n")


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
      raise ArpaError(f"no ARPA file at {path}; give the .arpa (or .arpa.gz) file that "
                      "lmplz or lm_jax (--config.write_arpa=True) wrote.") from None
    except (UnicodeDecodeError, EOFError, OSError) as e:
      raise ArpaError(f"{path} is not UTF-8 ARPA text ({e}); is it a binary KenLM model? "
                      "Give the .arpa (or .arpa.gz) file.") from None
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
    for i, line in enumerate(self.text[data.end():stop].split("\n")):
      h = _HEADER_RE.fullmatch(line.strip())
      if line.strip() and h is None:
        raise self.fail(first + i, f"{line.strip()[:60]!r} in the \\data\\ header is not "
                        "'ngram N=count'")
      if h and int(h[1]) in sizes:
        raise self.fail(first + i, f"the header gives ngram {h[1]}= twice")
      if h:
        sizes[int(h[1])] = int(h[2])
    if sorted(sizes) != list(range(1, len(sizes) + 1)):
      raise self.fail(first, "the \\data\\ header gives the counts of orders "
                      f"{', '.join(map(str, sorted(sizes))) or 'none'}; it must give ngram 1= to "
                      "ngram N= with no order missing")
    return sizes

  def sections(self) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per order, the entry lines (a string array) and their line numbers, counts checked."""
    text = self.text
    data = _DATA_RE.search(text)
    if data is None:
      raise self.fail(None, "no \\data\\ line, so this is not an ARPA file",
                      "give the .arpa (or .arpa.gz) file that lmplz or lm_jax wrote")
    marks = list(_SECTION_RE.finditer(text, data.end()))
    if not marks:
      raise self.fail(None, "no \\1-grams: section after \\data\\; the file is truncated")
    sizes = self.header(data, marks[0].start())
    n = len(sizes)
    for k, m in enumerate(marks, start=1):
      if k > n or int(m[1]) != k:
        cause = (f"an extra \\{m[1]}-grams: section: the header announces orders 1..{n} only"
                 if k > n else f"section \\{m[1]}-grams: where \\{k}-grams: was expected")
        raise self.fail(self.line_at(m.start()), cause + "; the file is truncated or was edited")
    last = self.line_at(len(text.rstrip("\n")))
    if len(marks) < n:
      k = len(marks) + 1
      raise self.fail(last, f"the file ends in the \\{k - 1}-grams: section but the header "
                      f"says ngram {k}={sizes[k]}; the file is truncated")
    end = _END_RE.search(text, marks[-1].end())
    if end is None:
      got = sum(1 for line in text[marks[-1].end():].split("\n") if line.strip())
      raise self.fail(last, f"no \\end\\ line after the \\{n}-grams: section ({got} of the "
                      f"header's ngram {n}={sizes[n]} entries); the file is truncated")
    out = []
    for k, m, stop in zip(range(1, n + 1), marks, [m.start() for m in marks[1:]] + [end.start()]):
      first = self.line_at(m.start())
      lines = np.array(text[m.end():stop].split("\n"), dtype=_STR)  # [0]: rest of the heading.
      stripped = np.strings.strip(lines)
      keep = np.nonzero(stripped != "")[0]
      rows = (lines if self.char else stripped)[keep]
      if len(rows) != sizes[k]:
        raise self.fail(first, f"the {k}-gram section has {len(rows)} entries but the header "
                        f"says ngram {k}={sizes[k]}; the file is truncated or was edited")
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
        raise self.fail(lines[bad[0]], f"malformed {k}-gram line {str(rows[bad[0]])[:80]!r}: "
                        f"expected 'log10p w1..w{k} [log10bow]'",
                        "read a character-level file with level='char', or " + REWRITE)
      cols = []
      for _ in range(k + 2):
        head, _, rows = np.strings.partition(rows, np.array(" ", dtype=_STR))
        cols.append(head)
      return cols[0], cols[1:k + 1], cols[k + 1]
    # Char level: tokens at even offsets after the first tab, spaces between, tab or end after.
    logp, _, rest = np.strings.partition(rows, np.array("\t", dtype=_STR))
    length = np.strings.str_len(rest)
    width = max(int(length.max(initial=0)), 2 * k + 1)
    codes = rest.astype(f"<U{width}").view(np.uint32).reshape(len(rest), width)
    ok = (length >= 2 * k - 1) & np.all(codes[:, 1:2 * k - 1:2] == ord(" "), axis=1)
    ok &= (length == 2 * k - 1) | (codes[:, 2 * k - 1] == ord("\t"))
    bad = np.nonzero(~ok)[0]
    if len(bad):
      raise self.fail(lines[bad[0]], f"malformed {k}-gram line {str(rows[bad[0]])[:80]!r}: a "
                      f"character-level ARPA line is 'log10p<TAB>c1 c2 .. c{k}[<TAB>log10bow]' "
                      "with one character (or <s>, </s>, <unk>) per token",
                      "read a word-level file with level='word', or " + REWRITE)
    bow = np.ascontiguousarray(codes[:, 2 * k:]).view(f"<U{width - 2 * k}").reshape(-1)
    return logp, [codes[:, 2 * j].astype(np.int64) for j in range(k)], bow

  def tokens(self, key_col: np.ndarray) -> list[str]:
    if not self.char:
      return key_col.tolist()
    return [self.marks.get(chr(c), chr(c)) for c in key_col.tolist()]

  def ids(self, keys: list[np.ndarray], vocab: Vocab) -> np.ndarray:
    """Vocabulary ids [M, k] of the key columns; -1 for a token that is not a unigram."""
    if not self.char:
      index, missing = vocab.index, itertools.repeat(-1)
      return np.stack([np.array(list(map(index.get, c.tolist(), missing)), dtype=np.int64)
                       for c in keys], axis=1)
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
      why = ("NaN" if np.isnan(v[i]) else "infinite" if np.isinf(v[i]) else
             "positive, a probability above 1")
      need = "a finite number" if bow else "a number <= 0 (-99 for probability 0)"
      raise self.fail(lines[i], f"the {k}-gram {what} {str(col[i])[:30]!r} is {why}; it must be "
                      f"{need}; the file is corrupt or was edited")
    return np.where(v <= ZERO, -math.inf, v * LN10)


def _is_float(s: str) -> bool:
  try:
    return np.array([s], dtype=_STR).astype(np.float64) is not None
  except ValueError:
    return False


def read_arpa(path: str, level: str = "word"):
  """Reads an ARPA file into an ``NGramLM`` with a vocabulary taken from its unigrams.

  Raises ``ArpaError`` (one line: file, line, cause, fix) for any inconsistency.
  """
  from lm_jax.ngram.model import NGramLM  # model imports this module.
  r = _Reader(path, level)
  sections = r.sections()
  (rows, lines), n = sections[0], len(sections)
  logp_col, keys, bow_col = r.columns(rows, lines, 1)
  uni = r.tokens(keys[0])
  vocab = Vocab(tokens=(UNK, EOS, *[w for w in dict.fromkeys(uni) if w not in (UNK, EOS, BOS)],
                        BOS), level=level)
  ids = np.array(list(map(vocab.index.get, uni)), dtype=np.int64)
  _, seen, inverse = np.unique(ids, return_index=True, return_inverse=True)
  again = np.nonzero(seen[inverse] != np.arange(len(ids)))[0]  # Not where its word first was.
  if len(again):
    raise r.fail(lines[again[0]], f"the 1-gram {uni[again[0]]!r} is listed twice (also on line "
                 f"{lines[seen[inverse[again[0]]]]})")
  logp1, logbow1 = np.full(vocab.size, -math.inf), np.zeros(vocab.size)
  logp1[ids] = r.log10(logp_col, lines, 1, bow=False)
  logbow1[ids] = r.log10(bow_col, lines, 1, bow=True)
  logp1[vocab.bos_id] = -math.inf
  trie = Counts(vocab_size=vocab.size, bos_id=vocab.bos_id,
                unigram=np.zeros(vocab.size, np.int64), orders=())
  logps, logbows = [logp1], [logbow1]
  for k in range(2, n + 1):
    rows, lines = sections[k - 1]
    logp_col, keys, bow_col = r.columns(rows, lines, k)
    words = r.ids(keys, vocab)
    if np.any(words < 0):
      i, j = np.argwhere(words < 0)[0]
      raise r.fail(lines[i], f"the {k}-gram section uses {r.tokens(keys[j][i:i + 1])[0]!r}, "
                   "which is not a unigram (not in the \\1-grams: section)")
    trie, order, missing = extend(trie, words, np.zeros(len(words), np.int64))
    if len(missing):
      raise r.fail(lines[missing[0]], f"{k}-gram {' '.join(vocab.decode(words[missing[0]]))!r} "
                   f"lacks its ({k - 1})-gram prefix or suffix; lm_jax needs ARPA files closed "
                   "under both, as KenLM and SRILM write them")
    o = trie.orders[-1]
    dup = np.nonzero((o.suffix[1:] == o.suffix[:-1]) & (o.first[1:] == o.first[:-1]))[0]
    if len(dup):  # Sorted by (suffix, first): a repeated n-gram sits next to its twin.
      a, b = sorted(order[dup[0]:dup[0] + 2].tolist())
      raise r.fail(lines[b], f"the {k}-gram {' '.join(vocab.decode(words[b]))!r} is listed "
                   f"twice (also on line {lines[a]})")
    logps.append(r.log10(logp_col, lines, k, bow=False)[order])
    logbows.append(r.log10(bow_col, lines, k, bow=True)[order])
  return NGramLM(vocab, "arpa", trie, Tables(tuple(logps), tuple(logbows)))


def check_normalization(source, tol: float = 1e-4, level: str = "word") -> float:
  """Checks that the unigram distribution sums to one; returns the sum.

  ``source`` is an ARPA path or an ``NGramLM``.  The sum is of 10**log10p over the
  predictable unigrams (every type but ``<s>``, which is never predicted); an
  ``ArpaError`` naming the sum is raised unless it is within ``tol`` of 1.
  """
  is_path = isinstance(source, (str, os.PathLike))
  model = read_arpa(source, level) if is_path else source
  total = math.fsum(np.exp(model.tables.logp[0][:model.vocab.num_predictable]).tolist())
  if not abs(total - 1.0) <= tol:
    raise ArpaError(f"{source if is_path else 'the model'}: the unigram probabilities sum to "
                    f"{total:.9g}, not 1 (tolerance {tol:g}); the file was edited or the model is "
                    "not normalized (stupid_backoff scores are not probabilities) — "
                    f"{REWRITE} with katz or kneser_ney.")
  return total
