"""Splitting text blocks as bytes gives str.split()'s tokens, line by line."""

from __future__ import annotations

import sys

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lm_jax.data.stream import encode_lines
from lm_jax.data.wordsplit import split_lines

SPACES = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
# Characters that share a lead byte with a Unicode space but are not spaces.
NEIGHBOURS = ["\u0084", "\u00a9", "\u1681", "\u200b", "\u2018", "\u2030", "\u2060", "\u3001", "é"]


def reference(text: str) -> tuple[list[bytes], list[int]]:
  lines = text.split("\n")
  if lines[-1] == "":
    lines.pop()
  words = [line.split() for line in lines]
  return [w.encode() for line in words for w in line], [len(line) for line in words]


def check(text: str) -> None:
  tokens, per_line = split_lines(text.encode())
  want_tokens, want_counts = reference(text)
  assert tokens == want_tokens and per_line.tolist() == want_counts, repr(text)


def test_every_whitespace_character_splits_as_str_split():
  assert len(SPACES) == 29  # Python 3.11's str.isspace() set: the fast path must know them all.
  for c in SPACES + NEIGHBOURS:
    check(f"a{c}b c\n\nd{c}\ne{c}")


def test_line_ends_empty_lines_and_blocks():
  for text in ["", "\n", "\n\n", "a", "a\n", " a  b \n\tc\r\n", "x\n\ny\n"]:
    check(text)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab \t\n\r\x0bé") + SPACES[9:] + NEIGHBOURS)))
def test_random_text_splits_as_str_split(text):
  check(text)


def test_encode_lines_appends_eos_and_marks_unknown_words():
  index = {b"<unk>": 0, b"</s>": 1, b"a": 2, b"b": 3}
  got = encode_lines(index, [b"a", b"zz", b"b"], np.array([2, 0, 1]))
  assert got.ids.tolist() == [2, 0, 1, 1, 3, 1]
  assert got.starts.tolist() == [0, 3, 4, 6]
  assert got.oov.tolist() == [False, True, False, False, False, False]
