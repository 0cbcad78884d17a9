"""The statistics lmplz keeps while the training text streams by."""

from __future__ import annotations

import numpy as np

from lm_jax.data.tokens import TokenArray, with_bos
from lm_jax.data.vocab import EOS_ID


class Windows:
  """Tracks what lmplz's statistics need as the training text streams by, chunk by chunk."""

  def __init__(self, order: int, vocab_size: int, bos_id: int):
    self.n, self.size, self.bos = order, vocab_size, bos_id
    self.unigram = np.zeros(vocab_size, np.int64)
    # lmplz's vocabulary ids so far: <s>, </s>, then words by first appearance.
    self.kid = np.zeros(vocab_size, np.int64)
    self.kid[bos_id], self.kid[EOS_ID] = 1, 2
    self.next_kid = 3
    self.offset = 0
    self.window = None  # lmplz's last window in suffix order, newest word first

  def add(self, tokens: TokenArray) -> tuple[np.ndarray, np.ndarray]:
    """Tracks one chunk of whole sentences; its stream with ``<s>`` and positions."""
    stream, pos = with_bos(tokens, self.bos)
    self.unigram += np.bincount(stream, minlength=self.size)
    at = np.flatnonzero(self.kid[stream] == 0)  # Words seen for the first time.
    if len(at):
      words, first = np.unique(stream[at], return_index=True)
      words = words[np.argsort(at[first])]
      self.kid[words] = self.next_kid + np.arange(len(words))
      self.next_kid += len(words)
    self.offset += len(stream)
    self._track_window(stream, pos)
    return stream, pos

  def _track_window(self, stream: np.ndarray, pos: np.ndarray) -> None:
    """The largest window in suffix order (``kneser_ney.lmplz_statistics``), chunk by chunk.

    Words seen so far keep their relative lmplz ids as the text goes on (new words
    sort after them), so the running maximum over chunks is the maximum over the text.
    """
    kid = self.kid
    last_word = np.where(pos > 0, kid[stream], -1)
    cand = np.flatnonzero(last_word == last_word.max())
    for j in range(1, self.n):
      word = np.where(pos[cand] - j >= 0, stream[np.maximum(cand - j, 0)], self.bos)
      cand = cand[kid[word] == kid[word].max()]
    last = cand[0]
    window = [int(stream[last - j]) if pos[last] - j >= 0 else self.bos for j in range(self.n)]
    if self.window is None or [kid[w] for w in window] > [kid[w] for w in self.window]:
      self.window = window


def lmplz_grams(w: Windows) -> list[tuple[int, ...]]:
  """The n-grams whose raw count lmplz's counts-of-counts use (see ``lmplz_statistics``)."""
  grams = []
  for k in range(1, w.n):
    gram = tuple(reversed(w.window[:k]))
    grams.append(gram)
    if gram[0] == w.bos:
      break  # lmplz keeps no longer lower-order n-gram open past <s>.
  return grams
