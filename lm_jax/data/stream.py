"""A training split read in chunks of whole sentences, for estimation in a memory budget.

``load_data`` holds every split as Python token lists, about 60 bytes per word: fine
for PTB, not for a corpus of hundreds of millions of words.  ``stream_data`` reads
a word corpus directory's ``train.txt`` line block by line block, never holding more
than one block: twice (once for the vocabulary, once to encode), or, given a
``spill_dir``, once: each word gets a provisional id as it first appears, the ids go
to a file there, and the passes over the split read them back mapped to the
vocabulary's ids.  Valid and test are small and read whole.  Other corpora (registered ones, one raw file, and
lm1b, whose training split is already memory-mapped) come from ``load_data`` and
are cut into chunks the same way.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import pathlib
from collections.abc import Callable, Iterator

import numpy as np

from lm_jax.data import corpus as corpus_lib
from lm_jax.data.lm1b import ShardedCorpus
from lm_jax.data.pipeline import load_data
from lm_jax.data.tokens import TokenArray, encode_sentences
from lm_jax.data.vocab import EOS_ID, UNK_ID, Vocab
from lm_jax.data.wordsplit import split_lines
from lm_jax.errors import CorpusError
from lm_jax.spec import DataSpec


@dataclasses.dataclass(frozen=True)
class StreamedCorpus:
  info: object  # what run.json records (``describe()``)
  vocab: Vocab
  heldout: dict[str, TokenArray]  # valid, test
  train: Callable[[], Iterator[TokenArray]]  # a fresh pass over the training split
  train_tokens: int


def slices(tokens: TokenArray, max_tokens: int) -> Iterator[TokenArray]:
  """``tokens`` as consecutive chunks of whole sentences, about ``max_tokens`` each."""
  starts = tokens.starts
  a, n = 0, tokens.num_sentences
  while a < n:
    b = int(starts.searchsorted(starts[a] + max_tokens, side="right")) - 1
    b = min(max(b, a + 1), n)
    lo, hi = int(starts[a]), int(starts[b])
    yield TokenArray(ids=tokens.ids[lo:hi], starts=starts[a : b + 1] - lo, oov=tokens.oov[lo:hi])
    a = b


def _blocks(path: pathlib.Path, block_bytes: int) -> Iterator[bytes]:
  """Whole lines of a file, about ``block_bytes`` at a time, checked to be UTF-8."""
  at = 0
  with open(path, "rb") as f:
    while block := f.read(block_bytes):
      block += f.readline()  # On to the end of the line.
      try:
        block.decode("utf-8")
      except UnicodeDecodeError as e:
        raise CorpusError(
          f"{path} is not UTF-8 (byte {at + e.start}: {block[e.start : e.start + 4]!r}); "
          "convert it, e.g. `iconv -f latin1 -t utf-8`."
        ) from None
      at += len(block)
      yield block


def _vocab(path: pathlib.Path, block_bytes: int, data: DataSpec) -> Vocab:
  counts, lines = collections.Counter(), 0
  for block in _blocks(path, block_bytes):
    tokens, per_line = split_lines(block)
    counts.update(tokens)
    lines += len(per_line)
  return _from_counts(counts, lines, data)


def _from_counts(counts: dict[bytes, int], lines: int, data: DataSpec) -> Vocab:
  words = collections.Counter({t.decode("utf-8"): c for t, c in counts.items()})
  del counts
  return Vocab.from_counts(words, lines, "word", data.min_count or 1, data.max_size)


class _FirstSeen(dict):
  """Token -> provisional id, the next id for a token not seen before."""

  def __missing__(self, token: bytes) -> int:
    self[token] = len(self)
    return self[token]


class _Spilled:
  """The training split read once: provisional ids and tokens per line, in ``spill_dir``."""

  def __init__(self, path: pathlib.Path, block_bytes: int, data: DataSpec, spill_dir: str):
    self.ids_path = pathlib.Path(spill_dir) / "train.ids"
    self.lines_path = pathlib.Path(spill_dir) / "train.lines"
    seen, counts, self.blocks = _FirstSeen(), np.zeros(0, np.int64), []
    with open(self.ids_path, "wb") as fi, open(self.lines_path, "wb") as fl:
      for block in _blocks(path, block_bytes):
        tokens, per_line = split_lines(block)
        ids = np.fromiter(map(seen.__getitem__, tokens), np.int32, len(tokens))
        if len(seen) > len(counts):
          counts = np.concatenate([counts, np.zeros(2 * len(seen) - len(counts), np.int64)])
        counts[: len(seen)] += np.bincount(ids, minlength=len(seen))
        ids.tofile(fi)
        per_line.astype(np.int64).tofile(fl)
        self.blocks.append((len(ids), len(per_line)))
    tokens = list(seen)
    del seen
    self.vocab = _from_counts(
      dict(zip(tokens, counts.tolist())), sum(n for _, n in self.blocks), data
    )
    index = {t: i for i, t in enumerate(self.vocab.tokens)}
    self.remap = np.fromiter(
      (index.get(t.decode("utf-8"), -1) for t in tokens), np.int32, len(tokens)
    )

  def train(self) -> Iterator[TokenArray]:
    with open(self.ids_path, "rb") as fi, open(self.lines_path, "rb") as fl:
      for n_ids, n_lines in self.blocks:
        ids = np.fromfile(fi, np.int32, n_ids)
        yield _encode(self.remap[ids], np.fromfile(fl, np.int64, n_lines))


def encode_lines(index: dict[bytes, int], tokens: list[bytes], per_line: np.ndarray) -> TokenArray:
  """Sentences of ``per_line`` tokens each (``index``'s keys), each followed by ``</s>``."""
  words = np.fromiter(map(index.get, tokens, itertools.repeat(-1)), np.int32, len(tokens))
  return _encode(words, per_line)


def _encode(words: np.ndarray, per_line: np.ndarray) -> TokenArray:
  """Sentences of ``per_line`` word ids each (-1: not in the vocabulary), each with ``</s>``."""
  starts = np.zeros(len(per_line) + 1, np.int64)
  np.cumsum(per_line + 1, out=starts[1:])
  ids = np.full(int(starts[-1]), EOS_ID, np.int32)
  is_word = np.ones(len(ids), bool)
  is_word[starts[1:] - 1] = False
  ids[is_word] = words
  oov = ids < 0
  ids[oov] = UNK_ID
  return TokenArray(ids=ids, starts=starts, oov=oov)


def stream_data(data: DataSpec, chunk_tokens: int, spill_dir: str | None = None) -> StreamedCorpus:
  """The corpus of ``data`` with its training split as a re-readable stream of chunks
  (read once into ``spill_dir`` when given: see the module docstring)."""
  if not (data.dir and not data.name and not data.file and (data.level or "word") == "word"):
    raw, vocab, arrays = load_data(data)
    train = arrays["train"]
    return StreamedCorpus(
      raw,
      vocab,
      {s: arrays[s] for s in ("valid", "test")},
      lambda: slices(train, chunk_tokens),
      train.num_tokens,
    )
  root = pathlib.Path(data.dir).expanduser()
  paths = corpus_lib.directory_files(root)
  block = max(1 << 12, chunk_tokens * 6)  # About 6 bytes of text per token.
  train_path = paths["train"]
  spilled = None if spill_dir is None else _Spilled(train_path, block, data, spill_dir)
  vocab = _vocab(train_path, block, data) if spilled is None else spilled.vocab
  if not sum(vocab.counts) - vocab.counts[1]:  # Every token but the </s> of each line.
    raise CorpusError(f"{train_path} has no words; a corpus file needs at least one line of text.")
  heldout = {}
  for split in ("valid", "test"):
    sents = corpus_lib.split_sentences(corpus_lib.read_text(paths[split]), "word")
    heldout[split] = encode_sentences(vocab, sents)
  sentences = {"train": vocab.counts[1], **{s: a.num_sentences for s, a in heldout.items()}}
  info = ShardedCorpus(
    root.name,
    "word",
    {p.name: corpus_lib.sha256_file(p) for p in paths.values()},
    str(root),
    sentences,
  )

  if spilled is not None:
    return StreamedCorpus(info, vocab, heldout, spilled.train, sum(vocab.counts))
  index = {t.encode("utf-8"): i for i, t in enumerate(vocab.tokens)}

  def train() -> Iterator[TokenArray]:
    for b in _blocks(train_path, block):
      yield encode_lines(index, *split_lines(b))

  return StreamedCorpus(info, vocab, heldout, train, sum(vocab.counts))
