"""Splitting blocks of word-level text in C: tokens as bytes, and the tokens of each line.

Reading a large corpus line by line with ``str.split()`` makes a Python string per
token and a list per line, most of the time of a pass over the text.  A block of
whole lines is split instead by one ``bytes.split()`` and its lines' token counts
come from array operations on its bytes.  ``bytes.split()`` splits at ASCII
whitespace only, ``str.split()`` also at the separators ``\\x1c``-``\\x1f`` and the
Unicode spaces; a block holding any of those is split line by line as text, so the
tokens are the same either way.
"""

from __future__ import annotations

import numpy as np

# Byte classes: 1 ASCII whitespace (bytes.split's), 2 a separator str.split() adds
# (\x1c-\x1f), 4 the lead byte of a UTF-8 character that may be a Unicode space.
_CLASS = np.zeros(256, np.uint8)
_CLASS[list(b" \t\n\r\x0b\x0c")] = 1
_CLASS[0x1C:0x20] = 2
_CLASS[[0xC2, 0xE1, 0xE2, 0xE3]] = 4


def _other_space(a: np.ndarray, cls: np.ndarray) -> bool:
  """Whether bytes ``a`` hold a character that str.split() splits at and bytes.split() not.

  Those are \x1c-\x1f and the Unicode spaces: U+0085, U+00A0 (c2 85, c2 a0), U+1680
  (e1 9a 80), U+2000-U+200A, U+2028, U+2029, U+202F (e2 80 xx), U+205F (e2 81 9f), U+3000
  (e3 80 80); a lead byte always starts a character in UTF-8.
  """
  odd = np.flatnonzero(cls >= 2)
  if not len(odd):
    return False
  if (cls[odd] == 2).any():
    return True
  lead = a[odd].astype(np.int32)
  b1 = a[np.minimum(odd + 1, len(a) - 1)].astype(np.int32)
  b2 = a[np.minimum(odd + 2, len(a) - 1)].astype(np.int32)
  e2_80 = (b2 <= 0x8A) & (b2 >= 0x80) | (b2 == 0xA8) | (b2 == 0xA9) | (b2 == 0xAF)
  space = (
    (lead == 0xC2) & ((b1 == 0x85) | (b1 == 0xA0))
    | (lead == 0xE1) & (b1 == 0x9A) & (b2 == 0x80)
    | (lead == 0xE2) & (b1 == 0x80) & e2_80
    | (lead == 0xE2) & (b1 == 0x81) & (b2 == 0x9F)
    | (lead == 0xE3) & (b1 == 0x80) & (b2 == 0x80)
  )
  return bool(space.any())


def split_lines(block: bytes) -> tuple[list[bytes], np.ndarray]:
  """The tokens of a block of UTF-8 lines and the number of tokens on each line.

  Lines end at ``\\n`` (a last line without one is a line too), as ``str.split("\\n")``
  of the text without its final newline; tokens are those of ``str.split()``, encoded.
  """
  a = np.frombuffer(block, np.uint8)
  cls = _CLASS[a]
  if _other_space(a, cls):
    lines = block.decode("utf-8").split("\n")
    if lines[-1] == "":
      lines.pop()
    words = [line.split() for line in lines]
    tokens = [w.encode("utf-8") for line in words for w in line]
    return tokens, np.array([len(line) for line in words], np.int64)
  tokens = block.split()
  space = cls == 1
  start = ~space
  start[1:] &= space[:-1]  # A token starts after a space or at the beginning.
  ends = np.flatnonzero(a == ord("\n"))
  if len(a) and a[-1] != ord("\n"):
    ends = np.append(ends, len(a))
  counts = np.diff(np.searchsorted(np.flatnonzero(start), ends), prepend=0)
  return tokens, counts
