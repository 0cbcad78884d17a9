"""Token arrays to model batches: streams for truncated BPTT, eval grids that score every token once.

The input stream is aligned with ``TokenArray.ids`` (the targets): the input of
each target is the token before it, except at a sentence start, where it is
``<s>``.  So ``</s>`` is only ever a target, ``<s>`` only ever an input, and a
split of N scored tokens gives exactly N (input, target) pairs -- no position
is spent predicting ``<s>``.  Every model (window and recurrent) reads this
stream; the window model pads with ``<s>`` before a sentence's ``<s>``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lm_jax.data.tokens import TokenArray
from lm_jax.data.vocab import EOS_ID
from lm_jax.errors import ConfigError


def input_stream(tokens: TokenArray, bos_id: int) -> np.ndarray:
  """The input for each target in ``tokens.ids``: the previous token, ``<s>`` at sentence starts."""
  inputs = np.empty_like(tokens.ids)
  inputs[1:] = tokens.ids[:-1]
  inputs[tokens.starts[:-1]] = bos_id  # Also covers position 0.
  return inputs


@dataclasses.dataclass(frozen=True)
class TrainStream:
  """The training split as ``B`` contiguous rows cut into segments of ``T`` (Zaremba et al. 2014).

  Row ``b`` holds tokens ``[b * R, (b + 1) * R)`` with ``R = N // B``; step ``i``
  of an epoch reads columns ``[i * T, (i + 1) * T)``, so a carried hidden state
  continues the same text.  The ``N - B * steps * T`` tokens at row ends are not
  trained on (fewer than ``B * T + B``).

  Segments are cut on demand from ``ids`` (an in-memory array or a ``np.memmap``
  of a corpus on disk): a step reads its ``B x T`` targets and the token before
  each, nothing else, and a process of a multi-host job reads only its own rows.
  """

  ids: np.ndarray  # the split's targets (``TokenArray.ids``), int32, possibly memory-mapped
  bos_id: int
  batch_size: int
  seq_len: int

  @property
  def row_len(self) -> int:
    return len(self.ids) // self.batch_size

  @property
  def steps_per_epoch(self) -> int:
    return self.row_len // self.seq_len

  @property
  def tokens_per_step(self) -> int:
    return self.batch_size * self.seq_len

  def segment(self, pos: int, rows: slice = slice(None)) -> tuple[np.ndarray, np.ndarray]:
    """``(inputs, targets)`` of segment ``pos`` for the given rows, each [rows, T] int32.

    The input of a target is the token before it, or ``<s>`` where a sentence starts
    (after a ``</s>``, and at position 0): ``input_stream`` computed for these cells only.
    """
    b = np.arange(self.batch_size)[rows]
    idx_BxT = (b * self.row_len + pos * self.seq_len)[:, None] + np.arange(self.seq_len)
    targets = np.asarray(self.ids[idx_BxT], np.int32)
    prev = np.asarray(self.ids[np.maximum(idx_BxT - 1, 0)], np.int32)
    inputs = np.where((idx_BxT == 0) | (prev == EOS_ID), np.int32(self.bos_id), prev)
    return inputs, targets


def train_stream(
  tokens: TokenArray | np.ndarray, bos_id: int, batch_size: int, seq_len: int
) -> TrainStream:
  """Cuts the training split (a ``TokenArray`` or its ``ids``) into ``batch_size`` rows."""
  ids = tokens.ids if isinstance(tokens, TokenArray) else tokens
  n = len(ids)
  if (n // batch_size) // seq_len < 1:
    raise ConfigError(
      f"the training split has {n} tokens, fewer than one batch of train.batch_size="
      f"{batch_size} rows x train.seq_len={seq_len}; lower them or use a larger corpus."
    )
  return TrainStream(ids, bos_id, batch_size, seq_len)


@dataclasses.dataclass(frozen=True)
class EvalGrid:
  """A split laid out as ``B`` rows of whole sentences, padded to a multiple of ``T``.

  ``index_BxL`` gives each cell's position in ``TokenArray.ids`` (-1 for padding),
  so every scored token appears exactly once.  Rows start at sentence starts
  and from a fresh state; only the context carried across a row cut can differ
  between batch sizes, and a sentence-independent model sees none.
  """

  inputs_BxL: np.ndarray
  targets_BxL: np.ndarray
  weights_BxL: np.ndarray  # 1.0 for scored tokens, 0.0 for padding
  oov_BxL: np.ndarray  # scored tokens that were out of vocabulary
  index_BxL: np.ndarray
  seq_len: int

  @property
  def num_segments(self) -> int:
    return self.inputs_BxL.shape[1] // self.seq_len


def eval_grid(tokens: TokenArray, bos_id: int, batch_size: int, seq_len: int) -> EvalGrid:
  """Cuts a split into ``batch_size`` rows at the sentence starts nearest to equal shares."""
  n = tokens.num_tokens
  if n == 0:
    raise ConfigError("the evaluation split is empty; check the corpus files.")
  starts = tokens.starts
  # Sentence index whose start is nearest to b * n / B, for b = 1 .. B-1.
  goals = np.arange(1, batch_size) * n / batch_size
  right = np.clip(np.searchsorted(starts, goals), 1, len(starts) - 1)
  nearer_left = goals - starts[right - 1] < starts[right] - goals
  cuts = np.maximum.accumulate(np.where(nearer_left, right - 1, right))
  bounds = np.concatenate([[0], starts[cuts], [n]])
  lengths = np.diff(bounds)
  width = max(seq_len, -(-int(lengths.max()) // seq_len) * seq_len)
  inputs = np.full((batch_size, width), bos_id, np.int32)
  targets = np.zeros((batch_size, width), np.int32)
  index = np.full((batch_size, width), -1, np.int64)
  stream = input_stream(tokens, bos_id)
  for b in range(batch_size):  # A loop over rows (not tokens); B is small.
    lo, hi = bounds[b], bounds[b + 1]
    inputs[b, : hi - lo] = stream[lo:hi]
    targets[b, : hi - lo] = tokens.ids[lo:hi]
    index[b, : hi - lo] = np.arange(lo, hi)
  valid = index >= 0
  oov = np.zeros_like(valid)
  oov[valid] = tokens.oov[index[valid]]
  return EvalGrid(inputs, targets, valid.astype(np.float32), oov, index, seq_len)
