"""Encoded splits: a flat int32 token array with sentence offsets."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence

import numpy as np

from lm_jax.data.vocab import EOS, EOS_ID, UNK_ID, Vocab
from lm_jax.errors import VocabError


@dataclasses.dataclass(frozen=True)
class TokenArray:
  """Sentences as one flat array: each sentence's ids followed by ``</s>``.

  ``ids[starts[i]:starts[i + 1]]`` is sentence ``i`` including its ``</s>``;
  ``oov`` marks tokens that were not in the vocabulary and became ``<unk>``.
  Every id in ``ids`` is a scored token; ``<s>`` is never stored here.
  """

  ids: np.ndarray
  starts: np.ndarray
  oov: np.ndarray

  @property
  def num_sentences(self) -> int:
    return len(self.starts) - 1

  @property
  def num_tokens(self) -> int:
    return len(self.ids)

  @property
  def num_words(self) -> int:
    """Tokens other than the per-sentence ``</s>``."""
    return len(self.ids) - self.num_sentences

  @property
  def lengths(self) -> np.ndarray:
    return np.diff(self.starts)


def encode_sentences(vocab: Vocab, sentences: Sequence[Sequence[str]]) -> TokenArray:
  """Encodes token lists, appending ``</s>`` to each sentence."""
  flat = list(itertools.chain.from_iterable(itertools.chain(s, (EOS,)) for s in sentences))
  # One C-level pass: unknown tokens come back as -1 (a literal <unk> is known).
  ids = np.array(list(map(vocab.index.get, flat, itertools.repeat(-1))), dtype=np.int32)
  oov = ids < 0
  ids[oov] = UNK_ID
  # Vocab.build rejects literal boundaries in train; valid/test text must not smuggle them in
  # (a literal <s> would become a target outside the softmax).
  literal = int(np.count_nonzero(ids == vocab.bos_id) + np.count_nonzero(ids == EOS_ID)) - len(
    sentences
  )
  if literal and vocab.level == "word":
    raise VocabError(
      f"the text contains the reserved token <s> or </s> ({literal} times); lm_jax "
      "adds sentence boundaries itself, so remove or rename them in the text."
    )
  starts = np.zeros(len(sentences) + 1, dtype=np.int64)
  np.cumsum([len(s) + 1 for s in sentences], out=starts[1:])
  return TokenArray(ids=ids, starts=starts, oov=oov)


def with_bos(tokens: TokenArray, bos_id: int) -> tuple[np.ndarray, np.ndarray]:
  """The stream ``<s> w1 .. wn </s> <s> ...`` and each token's position in its sentence."""
  n_sent = tokens.num_sentences
  lengths = tokens.lengths + 1
  stream = np.empty(tokens.num_tokens + n_sent, dtype=np.int32)
  starts = tokens.starts + np.arange(n_sent + 1)
  is_bos = np.zeros(len(stream), dtype=bool)
  is_bos[starts[:-1]] = True
  stream[is_bos] = bos_id
  stream[~is_bos] = tokens.ids
  pos = np.arange(len(stream)) - np.repeat(starts[:-1], lengths)
  return stream, pos


def contexts(tokens: TokenArray, bos_id: int, width: int) -> np.ndarray:
  """For each scored token, the ``width`` preceding ids (``<s>`` then ``-1`` before the sentence)."""
  stream, pos = with_bos(tokens, bos_id)
  target = pos > 0
  idx = np.nonzero(target)[0]
  ctx = np.full((len(idx), width), -1, dtype=np.int32)
  for j in range(1, width + 1):  # Column width - j holds the token j steps back.
    ok = pos[idx] - j >= 0
    ctx[ok, width - j] = stream[idx[ok] - j]
  return ctx
