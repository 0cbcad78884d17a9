"""ARPA back-off files: log10 probabilities and back-off weights, read strictly and written.

Values are written with the shortest digits that read back to the same float64
(Python's ``repr``, formatted a chunk at a time by ``arpa_format``), so a model
read back has the same log10 values bit for bit.  ``-99`` stands for
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

import math
import os

import numpy as np

from lm_jax.data.vocab import BOS, EOS, UNK, Vocab
from lm_jax.errors import ArpaError
from lm_jax.ngram.arpa_reader import REWRITE, _Reader
from lm_jax.ngram.arpa_writer import ArpaWriter, write_arpa  # noqa: F401  (the module's API)
from lm_jax.ngram.counts import Counts, extend
from lm_jax.ngram.smoothing import Tables


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
  vocab = Vocab(
    tokens=(UNK, EOS, *[w for w in dict.fromkeys(uni) if w not in (UNK, EOS, BOS)], BOS),
    level=level,
  )
  ids = np.array(list(map(vocab.index.get, uni)), dtype=np.int64)
  _, seen, inverse = np.unique(ids, return_index=True, return_inverse=True)
  again = np.nonzero(seen[inverse] != np.arange(len(ids)))[0]  # Not where its word first was.
  if len(again):
    raise r.fail(
      lines[again[0]],
      f"the 1-gram {uni[again[0]]!r} is listed twice (also on line "
      f"{lines[seen[inverse[again[0]]]]})",
    )
  logp1, logbow1 = np.full(vocab.size, -math.inf), np.zeros(vocab.size)
  logp1[ids] = r.log10(logp_col, lines, 1, bow=False)
  logbow1[ids] = r.log10(bow_col, lines, 1, bow=True)
  logp1[vocab.bos_id] = -math.inf
  trie = Counts(
    vocab_size=vocab.size, bos_id=vocab.bos_id, unigram=np.zeros(vocab.size, np.int64), orders=()
  )
  logps, logbows = [logp1], [logbow1]
  for k in range(2, n + 1):
    rows, lines = sections[k - 1]
    logp_col, keys, bow_col = r.columns(rows, lines, k)
    words = r.ids(keys, vocab)
    if np.any(words < 0):
      i, j = np.argwhere(words < 0)[0]
      raise r.fail(
        lines[i],
        f"the {k}-gram section uses {r.tokens(keys[j][i : i + 1])[0]!r}, "
        "which is not a unigram (not in the \\1-grams: section)",
      )
    trie, order, missing = extend(trie, words, np.zeros(len(words), np.int64))
    if len(missing):
      raise r.fail(
        lines[missing[0]],
        f"{k}-gram {' '.join(vocab.decode(words[missing[0]]))!r} "
        f"lacks its ({k - 1})-gram prefix or suffix; lm_jax needs ARPA files closed "
        "under both, as KenLM and SRILM write them",
      )
    o = trie.orders[-1]
    dup = np.nonzero((o.suffix[1:] == o.suffix[:-1]) & (o.first[1:] == o.first[:-1]))[0]
    if len(dup):  # Sorted by (suffix, first): a repeated n-gram sits next to its twin.
      a, b = sorted(order[dup[0] : dup[0] + 2].tolist())
      raise r.fail(
        lines[b],
        f"the {k}-gram {' '.join(vocab.decode(words[b]))!r} is listed "
        f"twice (also on line {lines[a]})",
      )
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
  total = math.fsum(np.exp(model.tables.logp[0][: model.vocab.num_predictable]).tolist())
  if not abs(total - 1.0) <= tol:
    raise ArpaError(
      f"{source if is_path else 'the model'}: the unigram probabilities sum to "
      f"{total:.9g}, not 1 (tolerance {tol:g}); the file was edited or the model is "
      "not normalized (stupid_backoff scores are not probabilities) — "
      f"{REWRITE} with katz or kneser_ney."
    )
  return total
