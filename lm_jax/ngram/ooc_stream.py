"""Streaming the training text into the engine, and the statistics lmplz keeps on the way."""

from __future__ import annotations

import numpy as np

from lm_jax.data.tokens import TokenArray, with_bos
from lm_jax.data.vocab import EOS_ID


class Windows:
  """Streams the training text into the engine and tracks what lmplz's statistics need."""

  def __init__(self, con, order: int, vocab_size: int, bos_id: int):
    self.con, self.n, self.size, self.bos = con, order, vocab_size, bos_id
    self.unigram = np.zeros(vocab_size, np.int64)
    self.first_pos = np.full(vocab_size, np.iinfo(np.int64).max, np.int64)
    self.offset = 0
    self.window = None  # lmplz's last window in suffix order, newest word first
    int_cols = lambda k: ", ".join(f"w{j} INTEGER" for j in range(1, k + 1))
    con.execute(f"CREATE TABLE top ({int_cols(order)})")
    for k in range(2, order):
      con.execute(f"CREATE TABLE bos{k} ({int_cols(k)})")

  def add(self, tokens: TokenArray) -> None:
    n = self.n
    stream, pos = with_bos(tokens, self.bos)
    self.unigram += np.bincount(stream, minlength=self.size)
    at = np.arange(len(stream), dtype=np.int64) + self.offset
    np.minimum.at(self.first_pos, stream, at)
    self.offset += len(stream)
    self._track_window(stream, pos)
    for k in range(2, n + 1):
      end = np.nonzero(pos >= k - 1)[0] if k == n else np.nonzero(pos == k - 1)[0]
      table = {f"w{j}": stream[end - (k - j)] for j in range(1, k + 1)}
      self.con.register("chunk", table)
      self.con.execute(f"INSERT INTO {'top' if k == n else f'bos{k}'} SELECT * FROM chunk")
      self.con.unregister("chunk")

  def _kid(self) -> np.ndarray:
    """lmplz's vocabulary ids so far: <s>, </s>, then words by first appearance."""
    kid = np.empty(self.size, np.int64)
    kid[np.argsort(self.first_pos, kind="stable")] = np.arange(self.size) + 3
    kid[self.bos], kid[EOS_ID] = 1, 2
    return kid

  def _track_window(self, stream: np.ndarray, pos: np.ndarray) -> None:
    """The largest window in suffix order (``kneser_ney.lmplz_statistics``), chunk by chunk.

    Words seen so far keep their relative lmplz ids as the text goes on (new words
    sort after them), so the running maximum over chunks is the maximum over the text.
    """
    kid = self._kid()
    cand = np.nonzero(pos > 0)[0]
    for j in range(self.n):
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


def raw_count(con, w: Windows, gram: tuple[int, ...]) -> int:
  """Occurrences of a lower-order n-gram: as the end of a top-order window, or of a window
  that starts a sentence (``bos{j}``, j >= k)."""
  k, n = len(gram), w.n
  if k == 1:
    return int(w.unigram[gram[0]])
  match = lambda j: " AND ".join(f"w{j - k + 1 + i} = {x}" for i, x in enumerate(gram))
  total = con.execute(f"SELECT coalesce(sum(a), 0) FROM a{n} WHERE {match(n)}").fetchall()[0][0]
  for j in range(k, n):
    total += con.execute(f"SELECT count(*) FROM bos{j} WHERE {match(j)}").fetchall()[0][0]
  return int(total)
