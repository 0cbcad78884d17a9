"""ARPA back-off files: log10 probabilities and back-off weights, read and written.

Probabilities are written with Python's shortest round-trip float format, so
a model read back has the same log10 values bit for bit.  ``-99`` stands for
probability zero (``<s>``, which is never predicted, and zero-count words of
unsmoothed models).  Files ending in ``.gz`` are (de)compressed on the fly.
"""

from __future__ import annotations

import gzip
import math
import re
from typing import IO

import numpy as np

from lm_jax.data.vocab import BOS, EOS, UNK, Vocab
from lm_jax.errors import ArpaError
from lm_jax.ngram.counts import Counts, Order, link_children, lookup
from lm_jax.ngram.smoothing import Tables

LN10 = math.log(10.0)
ZERO = -99.0


def _open(path: str, mode: str) -> IO[str]:
  if str(path).endswith(".gz"):
    return gzip.open(path, mode + "t", encoding="utf-8")
  return open(path, mode, encoding="utf-8")


def _fmt(ln_value: float) -> str:
  return repr(ZERO) if ln_value == -math.inf else repr(ln_value / LN10)


def write_arpa(model, path: str) -> None:
  """Writes a model (``NGramLM``) as an ARPA file."""
  trie, tables, vocab = model.trie, model.tables, model.vocab
  n = trie.order
  with _open(path, "w") as f:
    f.write("\\data\\\n")
    for k in range(1, n + 1):
      f.write(f"ngram {k}={trie.sizes()[k - 1]}\n")
    for k in range(1, n + 1):
      f.write(f"\n\\{k}-grams:\n")
      words = trie.words(k)
      names = [" ".join(vocab.tokens[i] for i in row) for row in words.tolist()]
      logp = tables.logp[k - 1].copy()
      if k == 1:
        logp[vocab.bos_id] = -math.inf
      if k < n:
        # Back-off weights belong to n-grams that are contexts of a longer n-gram.
        has_children = np.bincount(trie.orders[k - 1].prefix, minlength=len(words)) > 0
        bows = [_fmt(b) if h else None for b, h in zip(tables.logbow[k - 1].tolist(), has_children)]
      else:
        bows = [None] * len(names)
      for p, name, b in zip(logp.tolist(), names, bows):
        f.write(f"{_fmt(p)}\t{name}\t{b}\n" if b is not None else f"{_fmt(p)}\t{name}\n")
    f.write("\n\\end\\\n")


_HEADER_RE = re.compile(r"^ngram\s+(\d+)\s*=\s*(\d+)\s*$")


def _read_sections(path: str) -> list[list[list[str]]]:
  try:
    f = _open(path, "r")
  except FileNotFoundError:
    raise ArpaError(f"no ARPA file at {path}.") from None
  sizes, sections, current = {}, [], None
  with f:
    try:
      for lineno, line in enumerate(f, start=1):
        line = line.strip()
        if not line:
          continue
        m = _HEADER_RE.match(line)
        if m and not sections:
          sizes[int(m.group(1))] = int(m.group(2))
        elif line.startswith("\\") and line.endswith("-grams:"):
          k = int(line[1:-len("-grams:")])
          if k != len(sections) + 1:
            raise ArpaError(f"{path}:{lineno}: section \\{k}-grams: out of order.")
          current = []
          sections.append(current)
        elif line == "\\end\\":
          break
        elif line == "\\data\\":
          continue
        elif current is not None:
          current.append(line.split())
        else:
          raise ArpaError(f"{path}:{lineno}: unexpected line before the first n-gram section: {line[:60]!r}")
    except UnicodeDecodeError as e:
      raise ArpaError(f"{path} is not UTF-8 text ({e}); is it a binary KenLM model? Give the .arpa file.") from None
  if not sections:
    raise ArpaError(f"{path} has no \\1-grams: section; is it an ARPA file?")
  for k, rows in enumerate(sections, start=1):
    if sizes.get(k) is not None and sizes[k] != len(rows):
      raise ArpaError(f"{path}: header says ngram {k}={sizes[k]} but the section has {len(rows)} entries; "
                      "the file is truncated or corrupt.")
    bad = next((r for r in rows if len(r) not in (k + 1, k + 2)), None)
    if bad is not None:
      raise ArpaError(f"{path}: malformed {k}-gram line {' '.join(bad)[:80]!r}: expected "
                      f"'log10p w1..w{k} [log10bow]'.")
  return sections


def _ln(rows, col, path) -> np.ndarray:
  """Column ``col`` as natural logs; absent -> 0 (weight 1); -99 or below -> log 0."""
  try:
    v = np.array([float(r[col]) if len(r) > col else 0.0 for r in rows], dtype=np.float64)
  except ValueError as e:
    raise ArpaError(f"{path}: a probability or back-off weight is not a number ({e}).") from None
  return np.where(v <= ZERO, -math.inf, v * LN10)


def read_arpa(path: str, level: str = "word"):
  """Reads an ARPA file into an ``NGramLM`` with a vocabulary taken from its unigrams."""
  from lm_jax.ngram.model import NGramLM  # model imports this module.
  sections = _read_sections(path)
  n = len(sections)
  uni_words = [r[1] for r in sections[0]]
  specials = {UNK, EOS, BOS}
  vocab = Vocab(tokens=(UNK, EOS, *[w for w in dict.fromkeys(uni_words) if w not in specials], BOS),
                level=level)
  size = vocab.size
  index = vocab.index
  logp1 = np.full(size, -math.inf)
  logbow1 = np.zeros(size)
  ids = np.array([index[w] for w in uni_words])
  logp1[ids] = _ln(sections[0], 0, path)
  logbow1[ids] = _ln(sections[0], 2, path)
  logp1[vocab.bos_id] = -math.inf
  trie = Counts(vocab_size=size, bos_id=vocab.bos_id, unigram=np.zeros(size, np.int64), orders=())
  logps, logbows = [logp1], [logbow1]
  for k in range(2, n + 1):
    rows = sections[k - 1]
    try:
      words = np.array([[index[w] for w in r[1:k + 1]] for r in rows], dtype=np.int64).reshape(-1, k)
    except KeyError as e:
      raise ArpaError(f"{path}: the {k}-gram section uses {e.args[0]!r}, which is not a unigram.") from None
    suffix = lookup(trie, words[:, 1:])
    prefix = lookup(trie, words[:, :-1])
    missing = np.nonzero((suffix < 0) | (prefix < 0))[0]
    if len(missing):
      raise ArpaError(f"{path}: {k}-gram {' '.join(rows[missing[0]][1:k + 1])!r} lacks its "
                      f"({k - 1})-gram prefix or suffix; lm_jax needs ARPA files closed under both, "
                      "as KenLM and SRILM write them.")
    order = np.lexsort((words[:, 0], suffix))
    prev = trie.sizes()[-1]
    o = Order(suffix=suffix[order].astype(np.int32), first=words[order, 0].astype(np.int32),
              prefix=prefix[order].astype(np.int32), count=np.zeros(len(order), np.int64),
              child_start=link_children(suffix[order], prev))
    trie = Counts(size, vocab.bos_id, trie.unigram, trie.orders + (o,))
    logps.append(_ln(rows, 0, path)[order])
    logbows.append(_ln(rows, k + 1, path)[order])
  return NGramLM(vocab, "arpa", trie, Tables(tuple(logps), tuple(logbows)))
