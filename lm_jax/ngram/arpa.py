"""ARPA back-off files: log10 probabilities and back-off weights, read and written.

Probabilities are written with Python's shortest round-trip float format, so
a model read back has the same log10 values bit for bit.  ``-99`` stands for
probability zero (``<s>``, which is never predicted, and zero-count words of
unsmoothed models).  Files ending in ``.gz`` are (de)compressed on the fly.
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
from lm_jax.ngram.counts import Counts, extend
from lm_jax.ngram.smoothing import Tables

LN10 = math.log(10.0)
ZERO = -99.0
_STR = np.dtypes.StringDType()  # Variable-width strings: vectorized concatenation.


def _open(path: str, mode: str) -> IO[str]:
  if str(path).endswith(".gz"):
    return gzip.open(path, mode + "t", encoding="utf-8")
  return open(path, mode, encoding="utf-8")


def _fmt(ln_values: np.ndarray) -> np.ndarray:
  """log10 strings (shortest round-trip repr) of natural-log values; log 0 -> -99."""
  text = np.array(list(map(repr, (ln_values / LN10).tolist())), dtype=_STR)
  return np.where(np.isneginf(ln_values), repr(ZERO), text)


def write_arpa(model, path: str) -> None:
  """Writes a model (``NGramLM``) as an ARPA file (columns built as numpy string arrays)."""
  trie, tables, vocab = model.trie, model.tables, model.vocab
  n = trie.order
  toks = np.array(vocab.tokens, dtype=_STR)
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
      f.write("\n".join(lines.tolist()))
      f.write("\n")
    f.write("\n\\end\\\n")


_HEADER_RE = re.compile(r"^ngram\s+(\d+)\s*=\s*(\d+)\s*$", re.M)
_SECTION_RE = re.compile(r"^\\(\d+)-grams:\s*$", re.M)
_END_RE = re.compile(r"^\\end\\\s*$", re.M)


def _read_sections(path: str) -> list[np.ndarray]:
  """The n-gram lines of each order as string arrays, checked against the header counts."""
  try:
    with _open(path, "r") as f:
      text = f.read()
  except FileNotFoundError:
    raise ArpaError(f"no ARPA file at {path}.") from None
  except (UnicodeDecodeError, EOFError, OSError) as e:
    raise ArpaError(f"{path} is not UTF-8 ARPA text ({e}); is it a binary KenLM model? "
                    "Give the .arpa (or .arpa.gz) file.") from None
  marks = list(_SECTION_RE.finditer(text))
  if not marks:
    raise ArpaError(f"{path} has no \\1-grams: section; is it an ARPA file?")
  sizes = {int(m.group(1)): int(m.group(2)) for m in _HEADER_RE.finditer(text, 0, marks[0].start())}
  end = _END_RE.search(text, marks[-1].end())
  bounds = [m.start() for m in marks[1:]] + [end.start() if end else len(text)]
  sections = []
  for k, (m, stop) in enumerate(zip(marks, bounds), start=1):
    if int(m.group(1)) != k:
      raise ArpaError(f"{path}: section \\{m.group(1)}-grams: out of order (expected \\{k}-grams:).")
    lines = [l.strip() for l in text[m.end():stop].splitlines()]
    rows = np.array([l for l in lines if l], dtype=_STR)
    if sizes.get(k) is not None and sizes[k] != len(rows):
      raise ArpaError(f"{path}: header says ngram {k}={sizes[k]} but the section has {len(rows)} "
                      "entries; the file is truncated or corrupt.")
    sections.append(rows)
  return sections


def _columns(rows: np.ndarray, k: int, path: str) -> list[np.ndarray]:
  """Splits ``log10p w1 .. wk [log10bow]`` lines (any whitespace) into k + 2 columns."""
  rows = np.strings.replace(rows, "\t", " ")
  while np.any(np.strings.find(rows, "  ") >= 0):
    rows = np.strings.replace(rows, "  ", " ")
  fields = np.strings.count(rows, " ") + 1
  bad = np.nonzero((fields != k + 1) & (fields != k + 2))[0]
  if len(bad):
    raise ArpaError(f"{path}: malformed {k}-gram line {str(rows[bad[0]])[:80]!r}: expected "
                    f"'log10p w1..w{k} [log10bow]'.")
  cols = []
  for _ in range(k + 2):
    head, _, rows = np.strings.partition(rows, np.array(" ", dtype=_STR))
    cols.append(head)
  return cols


def _ln(col: np.ndarray, path: str) -> np.ndarray:
  """A log10 column as natural logs; empty -> 0 (weight 1); -99 or below -> log 0."""
  try:
    v = np.where(col == "", "0", col).astype(np.float64)
  except ValueError as e:
    raise ArpaError(f"{path}: a probability or back-off weight is not a number ({e}).") from None
  return np.where(v <= ZERO, -math.inf, v * LN10)


def _ids(col: np.ndarray, index: dict, k: int, path: str) -> np.ndarray:
  words = col.tolist()
  ids = np.array(list(map(index.get, words, itertools.repeat(-1))), dtype=np.int64)
  if np.any(ids < 0):
    unknown = words[int(np.argmin(ids))]
    raise ArpaError(f"{path}: the {k}-gram section uses {unknown!r}, which is not a unigram.")
  return ids


def read_arpa(path: str, level: str = "word"):
  """Reads an ARPA file into an ``NGramLM`` with a vocabulary taken from its unigrams."""
  from lm_jax.ngram.model import NGramLM  # model imports this module.
  sections = _read_sections(path)
  n = len(sections)
  uni = _columns(sections[0], 1, path)
  uni_words = uni[1].tolist()
  specials = {UNK, EOS, BOS}
  vocab = Vocab(tokens=(UNK, EOS, *[w for w in dict.fromkeys(uni_words) if w not in specials], BOS),
                level=level)
  size, index = vocab.size, vocab.index
  logp1 = np.full(size, -math.inf)
  logbow1 = np.zeros(size)
  ids = np.array([index[w] for w in uni_words], dtype=np.int64)
  logp1[ids] = _ln(uni[0], path)
  logbow1[ids] = _ln(uni[2], path)
  logp1[vocab.bos_id] = -math.inf
  trie = Counts(vocab_size=size, bos_id=vocab.bos_id, unigram=np.zeros(size, np.int64), orders=())
  logps, logbows = [logp1], [logbow1]
  for k in range(2, n + 1):
    cols = _columns(sections[k - 1], k, path)
    words = np.stack([_ids(c, index, k, path) for c in cols[1:k + 1]], axis=1).reshape(-1, k)
    trie, order, missing = extend(trie, words, np.zeros(len(words), np.int64))
    if len(missing):
      gram = " ".join(vocab.decode(words[missing[0]]))
      raise ArpaError(f"{path}: {k}-gram {gram!r} lacks its ({k - 1})-gram prefix or suffix; "
                      "lm_jax needs ARPA files closed under both, as KenLM and SRILM write them.")
    logps.append(_ln(cols[0], path)[order])
    logbows.append(_ln(cols[k + 1], path)[order])
  return NGramLM(vocab, "arpa", trie, Tables(tuple(logps), tuple(logbows)))
