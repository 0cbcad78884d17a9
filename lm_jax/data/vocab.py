"""Word and character vocabularies: build from train, encode, decode, hash, JSON.

Id layout (the same for every model): ``<unk>`` = 0, ``</s>`` = 1, then the
training types by descending count (ties alphabetical), and ``<s>`` last.  Ids
``0 .. num_predictable - 1`` are the predictable types (softmax outputs, n-gram
events); ``<s>`` = ``num_predictable`` is context only and is never predicted.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
import itertools
import json
import os
from collections.abc import Iterable, Sequence

import numpy as np

from lm_jax.errors import VocabError

UNK, EOS, BOS = "<unk>", "</s>", "<s>"
UNK_ID, EOS_ID = 0, 1
LEVELS = ("word", "char")


@dataclasses.dataclass(frozen=True)
class Vocab:
  """An immutable token <-> id mapping; ``tokens[i]`` is the token of id ``i``."""

  tokens: tuple[str, ...]
  level: str = "word"
  # Training count of each predictable id (<unk>: every replaced token; </s>: sentences), for
  # the class output layer's frequency bins.  Not part of the identity (hash, equality).
  counts: tuple[int, ...] | None = dataclasses.field(default=None, compare=False)

  def __post_init__(self):
    if self.level not in LEVELS:
      raise VocabError(f"unknown vocabulary level {self.level!r}; use one of {LEVELS}.")
    if len(self.tokens) < 3 or self.tokens[:2] != (UNK, EOS) or self.tokens[-1] != BOS:
      raise VocabError(
        "a vocabulary must start with '<unk>', '</s>' and end with '<s>'; "
        "rebuild it with Vocab.build() instead of editing the file by hand."
      )
    if len(set(self.tokens)) != len(self.tokens):
      raise VocabError("the vocabulary lists a token twice; rebuild it with Vocab.build().")
    if self.counts is not None and len(self.counts) != self.num_predictable:
      raise VocabError(
        f"the vocabulary has {len(self.counts)} counts for {self.num_predictable} predictable "
        "tokens; rebuild it with Vocab.build()."
      )

  @functools.cached_property
  def index(self) -> dict[str, int]:
    return {t: i for i, t in enumerate(self.tokens)}

  @property
  def size(self) -> int:
    """All ids, including ``<s>``."""
    return len(self.tokens)

  @property
  def num_predictable(self) -> int:
    """Types a model predicts: every id but ``<s>``."""
    return len(self.tokens) - 1

  @property
  def bos_id(self) -> int:
    return len(self.tokens) - 1

  @classmethod
  def build(
    cls,
    sentences: Iterable[Sequence[str]],
    level: str = "word",
    min_count: int = 1,
    max_size: int | None = None,
  ) -> Vocab:
    """Builds a vocabulary from training sentences (token lists) only."""
    counts = collections.Counter()
    num_sentences = 0
    for sent in sentences:
      counts.update(sent)
      num_sentences += 1
    return cls.from_counts(counts, num_sentences, level, min_count, max_size)

  @classmethod
  def from_counts(
    cls,
    counts: collections.Counter,
    num_sentences: int,
    level: str = "word",
    min_count: int = 1,
    max_size: int | None = None,
  ) -> Vocab:
    """``build`` from the training text's token counts (``counts`` is consumed)."""
    if min_count < 1:
      raise VocabError(f"min_count must be >= 1, got {min_count}.")
    for reserved in (BOS, EOS):
      if counts.get(reserved) and level == "word":
        raise VocabError(
          f"the training text contains the reserved token {reserved!r} "
          f"({counts[reserved]} times); lm_jax adds sentence boundaries itself, "
          "so remove or rename it in the text."
        )
    unk = counts.pop(UNK, 0)  # PTB-style text marks rare words with <unk> already.
    kept = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
    if max_size is not None:
      if max_size < 3:
        raise VocabError(f"max_size must leave room for <unk>, </s>, <s>; got {max_size}.")
      kept = kept[: max_size - 3]
    unk += sum(counts.values()) - sum(counts[t] for t in kept)
    return cls(
      tokens=(UNK, EOS, *kept, BOS),
      level=level,
      counts=(unk, num_sentences, *(counts[t] for t in kept)),
    )

  def encode(self, tokens: Sequence[str]) -> np.ndarray:
    """Maps tokens to int32 ids; unknown tokens become ``<unk>``."""
    return np.array(list(map(self.index.get, tokens, itertools.repeat(UNK_ID))), dtype=np.int32)

  def decode(self, ids: Iterable[int]) -> list[str]:
    return [self.tokens[int(i)] for i in ids]

  def detokenize(self, ids: Iterable[int]) -> str:
    """Joins tokens as text: spaces between words, nothing between characters."""
    toks = [t for t in self.decode(ids) if t not in (BOS, EOS)]
    return ("" if self.level == "char" else " ").join(toks)

  def _identity_json(self) -> str:
    return json.dumps({"level": self.level, "tokens": list(self.tokens)}, ensure_ascii=False)

  def to_json(self) -> str:
    if self.counts is None:
      return self._identity_json()
    obj = {"level": self.level, "tokens": list(self.tokens), "counts": list(self.counts)}
    return json.dumps(obj, ensure_ascii=False)

  @functools.cached_property
  def hash(self) -> str:
    """Content hash: equal for vocabularies that map every token to the same id (counts aside)."""
    return hashlib.sha256(self._identity_json().encode("utf-8")).hexdigest()[:16]

  def save(self, path: str | os.PathLike) -> None:
    with open(path, "w", encoding="utf-8") as f:
      f.write(self.to_json())

  @classmethod
  def load(cls, path: str | os.PathLike) -> Vocab:
    try:
      with open(path, encoding="utf-8") as f:
        obj = json.load(f)
    except FileNotFoundError:
      raise VocabError(
        f"no vocabulary file at {path}; run training first or point to the run's vocab.json."
      ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
      raise VocabError(
        f"{path} is not a vocabulary JSON file ({e}); it should be the vocab.json a run wrote."
      ) from None
    if (
      not isinstance(obj, dict)
      or not isinstance(obj.get("tokens"), list)
      or not all(isinstance(t, str) for t in obj["tokens"])
    ):
      raise VocabError(
        f"{path} lacks a 'tokens' list of strings; it should be the vocab.json a run wrote."
      )
    counts = obj.get("counts")
    if counts is not None and not (
      isinstance(counts, list) and all(isinstance(c, int) and c >= 0 for c in counts)
    ):
      raise VocabError(f"{path} has a 'counts' entry that is not a list of counts; rebuild it.")
    return cls(
      tokens=tuple(obj["tokens"]),
      level=obj.get("level", "word"),
      counts=None if counts is None else tuple(counts),
    )
