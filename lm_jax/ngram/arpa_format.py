"""ARPA lines as bytes, built with array operations: the writer's inner loop.

An ARPA line is ``log10p<TAB>w1 w2 .. wk[<TAB>log10bow]<NEWLINE>``.  Formatting
millions of floats one ``repr`` at a time costs about a microsecond each; here the
numbers of a whole chunk are formatted by orjson's Ryu (shortest round-trip digits,
the same digits as Python's ``repr``) in one call, and every line is assembled by
one gather from a byte buffer: a line is a list of byte segments (its number, its
words, separators), each an offset and a length into that buffer.  Values where
``repr`` switches to exponent notation (below 1e-4, from 1e16) or that are not finite
are formatted by ``repr`` itself, so every line equals, byte for byte, the one built
with ``repr`` and string concatenation, and reads back to the same float64.
"""

from __future__ import annotations

import numpy as np
import orjson

from lm_jax.ngram.arpa_reader import LN10, ZERO

# ``repr`` writes positional notation for 1e-4 <= |x| < 1e16 (and 0); orjson may differ
# outside.  Numbers outside [1e-4, 1e15) (a margin below 1e16) are formatted by ``repr``.
_POSITIONAL = (1e-4, 1e15)


def _numbers(values: np.ndarray, before: bytes, after: bytes):
  """``repr`` of each float64 value as (utf-8 buffer, starts, lengths).

  One separator sits between two numbers, so: a number at an even index is preceded
  by the byte ``before`` (at ``start - 1``) and followed by ``after``; one at an odd
  index is followed by ``before`` (included in the lengths).  With a filler at every
  odd index, each even-indexed number is framed by ``before`` and ``after``.
  """
  values = np.ascontiguousarray(values, np.float64)
  if not len(values):
    return np.zeros(0, np.uint8), np.zeros(0, np.int64), np.zeros(0, np.int64)
  with np.errstate(invalid="ignore"):
    mag = np.abs(values)
    by_repr = ~((mag >= _POSITIONAL[0]) & (mag < _POSITIONAL[1]) | (values == 0))
  # orjson writes null for NaN and infinities: those too are formatted by repr below.
  text = orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)
  text = np.frombuffer(text, np.uint8).copy()
  ends = np.flatnonzero(text == ord(","))
  ends = np.append(ends, len(text) - 1)  # The closing bracket ends the last number.
  starts = np.empty_like(ends)
  starts[0], starts[1:] = 1, ends[:-1] + 1
  text[0] = ord(before)
  text[ends[::2]] = ord(after)
  text[ends[1::2]] = ord(before)
  lengths = ends + 1 - starts
  where = np.flatnonzero(by_repr)
  if len(where):
    seps = np.where(where % 2 == 0, ord(after), ord(before)).astype(np.uint8).tobytes()
    extra = [
      before + repr(v).encode() + seps[i : i + 1] for i, v in enumerate(values[where].tolist())
    ]
    size = np.fromiter(map(len, extra), np.int64, len(extra))
    starts[where] = len(text) + np.cumsum(size) - size + 1
    lengths[where] = size - 1
    text = np.concatenate([text, np.frombuffer(b"".join(extra), np.uint8)])
  return text, starts, lengths


def log10_numbers(ln_values: np.ndarray, before: bytes, after: bytes):
  """``_numbers`` of log10 of natural-log values; log 0 (-inf) is written as -99."""
  v = np.asarray(ln_values, np.float64) / LN10
  return _numbers(np.where(np.isneginf(v), ZERO, v), before, after)


class Words:
  """A vocabulary's tokens as one utf-8 buffer (each token followed by a space), and a
  workspace that holds the buffer followed by a chunk's numbers, for one gather."""

  def __init__(self, tokens):
    encoded = [t.encode("utf-8") for t in tokens]
    self.lengths = np.fromiter(map(len, encoded), np.int64, len(encoded))
    self.starts = np.cumsum(self.lengths + 1) - self.lengths - 1
    self.size = int(self.lengths.sum()) + len(encoded)
    self._work = np.empty(self.size + (1 << 20), np.uint8)
    self._work[: self.size] = np.frombuffer(b"".join(t + b" " for t in encoded), np.uint8)

  def source(self, *parts: np.ndarray) -> np.ndarray:
    """The words, then ``parts`` (at ``self.size`` on): a view, the words are not copied.

    (A fresh concatenation per chunk would copy the whole vocabulary each time: 8 MB
    for a million types, per few thousand lines.)
    """
    need = self.size + sum(len(p) for p in parts)
    if need > len(self._work):
      work = np.empty(2 * need, np.uint8)
      work[: self.size] = self._work[: self.size]
      self._work = work
    at = self.size
    for p in parts:
      self._work[at : at + len(p)] = p
      at += len(p)
    return self._work[:need]


def gather(source: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> bytes:
  """The concatenation of ``source[s : s + n]`` for each (s, n), in order, as bytes.

  One index per output byte: 1 within a segment, a jump between segments, summed.
  """
  starts, lengths = starts.ravel(), lengths.ravel()
  if not lengths.all():
    keep = lengths > 0
    starts, lengths = starts[keep], lengths[keep]
  if not len(starts):
    return b""
  ends = np.cumsum(lengths, dtype=np.int64)
  # int32 steps (half the memory traffic of int64) while every index fits.
  dtype = np.int32 if max(len(source), int(ends[-1])) < 2**31 else np.int64
  index = np.ones(int(ends[-1]), dtype)
  index[0] = starts[0]
  index[ends[:-1]] = starts[1:] - (starts[:-1] + lengths[:-1] - 1)
  np.cumsum(index, out=index)
  return np.take(source, index).tobytes()


_NEWLINE = np.frombuffer(b"\n", np.uint8)
# Lines formatted per call: their index arrays stay in cache (about 2.5x faster than 256k).
ROWS = 1 << 12


def lines(words: Words, ids: np.ndarray, logp: np.ndarray, logbow: np.ndarray) -> bytes:
  """ARPA lines of n-grams ``ids`` ([n, k] word ids, w1 first), each ending in a newline.

  ``logp``, ``logbow``: natural logs; a back-off is written where ``logbow`` is not NaN.
  """
  if len(ids) > ROWS:
    return b"".join(
      lines(words, ids[lo : lo + ROWS], logp[lo : lo + ROWS], logbow[lo : lo + ROWS])
      for lo in range(0, len(ids), ROWS)
    )
  n, k = ids.shape
  has_bow = ~np.isnan(logbow)
  pbuf, pstart, plen = log10_numbers(logp, b"\t", b"\t")
  # Back-offs as tab, number, newline: formatted with a zero between any two, the
  # separator before each becomes a tab and the one after a newline.
  bows = np.zeros(2 * int(has_bow.sum()))
  bows[::2] = np.asarray(logbow)[has_bow]
  bbuf, bstart, blen = log10_numbers(bows, b"\t", b"\n")
  bstart, blen = bstart[::2] - 1, blen[::2] + 1
  # One buffer: the words, the probabilities, the back-offs, then a newline.
  at_p = words.size
  at_b = at_p + len(pbuf)
  newline = at_b + len(bbuf)
  source = words.source(pbuf, bbuf, _NEWLINE)
  # Segments per line: p + tab, w1 + space, .., wk, then tab + bow + newline or a newline.
  starts = np.empty((n, k + 2), np.int64)
  lengths = np.empty((n, k + 2), np.int64)
  starts[:, 0], lengths[:, 0] = at_p + pstart, plen
  starts[:, 1 : 1 + k] = words.starts[ids]
  lengths[:, 1 : 1 + k] = words.lengths[ids] + 1
  lengths[:, k] -= 1  # No space after the last word.
  starts[:, k + 1], lengths[:, k + 1] = newline, 1
  starts[has_bow, k + 1] = at_b + bstart
  lengths[has_bow, k + 1] = blen
  return gather(source, starts, lengths)
