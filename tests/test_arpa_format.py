"""The bulk ARPA line builder equals lines built one ``repr`` and one concatenation at a time."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lm_jax.ngram import arpa_format


def reference_lines(tokens, ids, logp, logbow) -> bytes:
  """The ARPA layout written out plainly: ``repr`` of log10 values, -99 for log 0."""

  def fmt(ln: float) -> str:
    return repr(-99.0) if ln == -math.inf else repr(ln / math.log(10.0))

  out = []
  for row, p, b in zip(ids.tolist(), logp.tolist(), logbow.tolist()):
    line = fmt(p) + "\t" + " ".join(tokens[w] for w in row)
    if not math.isnan(b):
      line += "\t" + fmt(b)
    out.append(line + "\n")
  return "".join(out).encode("utf-8")


# Magnitudes on both sides of repr's switches to exponent notation (1e-4 and 1e16),
# subnormals, zeros of both signs, and the values ARPA files hold (log10 in [-99, 0]).
SPECIAL = [
  0.0,
  -0.0,
  -math.inf,
  1e-4,
  -1e-4,
  9.999999999999999e-05,
  1e-5,
  -3.2e-7,
  5e-324,
  1e-320,
  1e15,
  1e16,
  -1e16,
  9.999999999999998e15,
  1.5e22,
  -99.0,
  -1.0,
  0.1,
  123456.0,
]


def test_lines_equal_repr_and_join():
  rng = np.random.default_rng(0)
  tokens = ["<unk>", "</s>", "é", "\r", "a\tb", "x" * 40] + [f"w{i}" for i in range(300)] + ["<s>"]
  n, k = 5000, 3
  ids = rng.integers(0, len(tokens), (n, k))
  ln10 = math.log(10.0)
  logp = -rng.exponential(3.0, n)
  logp[: len(SPECIAL)] = np.array(SPECIAL) * ln10
  logp[len(SPECIAL) : 2 * len(SPECIAL)] = -(10.0 ** rng.uniform(-30, 20, len(SPECIAL)))
  logbow = np.where(rng.random(n) < 0.5, rng.normal(0.0, 1.0, n), np.nan)
  logbow[: len(SPECIAL)] = np.array(SPECIAL) * ln10
  logbow[len(SPECIAL)] = np.nan
  got = arpa_format.lines(arpa_format.Words(tokens), ids, logp, logbow)
  assert got == reference_lines(tokens, ids, logp, logbow)


def test_lines_of_an_empty_chunk_and_one_word_lines():
  words = arpa_format.Words(["<unk>", "</s>", "<s>"])
  empty = np.zeros((0, 2), np.int64)
  assert arpa_format.lines(words, empty, np.zeros(0), np.zeros(0)) == b""
  ids = np.array([[2], [0]])
  got = arpa_format.lines(words, ids, np.array([-math.inf, 0.0]), np.array([-1.0, np.nan]))
  assert got == f"-99.0\t<s>\t{-1.0 / math.log(10.0)!r}\n0.0\t<unk>\n".encode()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=1, max_size=40))
def test_numbers_are_repr_whatever_the_value(values):
  buf, starts, lengths = arpa_format._numbers(np.array(values, np.float64), b"<", b">")
  got = [buf[s : s + n].tobytes().decode() for s, n in zip(starts, lengths)]
  # Even-indexed numbers end in ``after``, the odd ones in ``before`` (that of the next).
  assert got == [f"{v!r}{'>' if i % 2 == 0 else '<'}" for i, v in enumerate(values)]
  assert all(buf[s - 1] == ord("<") for s in starts[::2])


def test_gather_concatenates_segments_in_order():
  source = np.frombuffer(b"abcdefghij", np.uint8)
  starts = np.array([[3, 0], [9, 5], [0, 1]])
  lengths = np.array([[2, 1], [1, 0], [0, 3]])
  assert arpa_format.gather(source, starts, lengths) == b"dea" + b"j" + b"bcd"


def test_the_workspace_grows_and_keeps_the_words():
  words = arpa_format.Words(["<unk>", "</s>", "é", "<s>"])
  small = words.source(np.frombuffer(b"12", np.uint8))
  assert small.tobytes() == "<unk> </s> é <s> 12".encode()
  big = np.full(3 << 20, ord("x"), np.uint8)  # Beyond the first workspace.
  got = words.source(big, np.frombuffer(b"!", np.uint8))
  assert got[: words.size].tobytes() == "<unk> </s> é <s> ".encode()
  assert got[words.size :].tobytes() == b"x" * (3 << 20) + b"!"
