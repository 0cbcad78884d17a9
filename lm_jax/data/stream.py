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
import os
import pathlib
import pickle
import sys
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


def _blocks(
  path: pathlib.Path, block_bytes: int, start: int = 0, stop: int | None = None
) -> Iterator[bytes]:
  """Whole lines of a file (of bytes ``start:stop``, both at line starts), about
  ``block_bytes`` at a time, checked to be UTF-8."""
  at = start
  with open(path, "rb") as f:
    f.seek(start)
    while block := f.read(block_bytes if stop is None else min(block_bytes, stop - at)):
      if not block.endswith(b"\n"):
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


def _spill(path, block_bytes: int, start: int, stop: int | None, ids_path, lines_path):
  """Bytes ``start:stop`` of the text to provisional ids (``ids_path``) and tokens per line
  (``lines_path``); returns the tokens in first-seen order, their counts, and the blocks'
  (ids, lines)."""
  seen, counts, blocks = _FirstSeen(), np.zeros(0, np.int64), []
  with open(ids_path, "wb") as fi, open(lines_path, "wb") as fl:
    for block in _blocks(path, block_bytes, start, stop):
      tokens, per_line = split_lines(block)
      ids = np.fromiter(map(seen.__getitem__, tokens), np.int32, len(tokens))
      if len(seen) > len(counts):
        counts = np.concatenate([counts, np.zeros(2 * len(seen) - len(counts), np.int64)])
      counts[: len(seen)] += np.bincount(ids, minlength=len(seen))
      ids.tofile(fi)
      per_line.astype(np.int64).tofile(fl)
      blocks.append((len(ids), len(per_line)))
  return list(seen), counts[: len(seen)], blocks


# A text at least this large is split in two halves, the second read in a forked process.
PARALLEL_MIN_BYTES = 64 * 2**20


def _can_fork() -> bool:
  """Two cores, and no jax runtime whose threads a fork would copy mid-flight."""
  return hasattr(os, "fork") and len(os.sched_getaffinity(0)) > 1 and "jax" not in sys.modules


class _Spilled:
  """The training split read once: provisional ids and tokens per line, in ``spill_dir``.

  A large text on a machine with two cores is read in two halves at once: a forked
  process takes the second (as ``arpa_writer`` forks, only before jax starts), and its
  new words get ids after the first half's, in first-seen order, so the vocabulary and
  every id are those of one pass from the start.
  """

  def __init__(self, path: pathlib.Path, block_bytes: int, data: DataSpec, spill_dir: str):
    spill = pathlib.Path(spill_dir)
    self.parts = [(spill / "train.ids", spill / "train.lines")]
    size = path.stat().st_size
    mid = None
    if size >= PARALLEL_MIN_BYTES and _can_fork():
      with open(path, "rb") as f:
        f.seek(size // 2)
        f.readline()
        mid = f.tell() if f.tell() < size else None
    if mid is None:
      tokens, counts, blocks = _spill(path, block_bytes, 0, None, *self.parts[0])
      self.blocks = [(0, n, m) for n, m in blocks]
      remaps = [np.arange(len(tokens), dtype=np.int64)]
    else:
      self.parts.append((spill / "train.ids.1", spill / "train.lines.1"))
      result = spill / "train.part1.pickle"
      pid = os.fork()
      if pid == 0:  # The child: the second half, its outcome pickled; exit without cleanup.
        code = 1
        try:
          try:
            out = ("ok", _spill(path, block_bytes, mid, None, *self.parts[1]))
          except CorpusError as e:
            out = ("error", str(e))
          with open(result, "wb") as f:
            pickle.dump(out, f, protocol=pickle.HIGHEST_PROTOCOL)
          code = 0
        finally:
          os._exit(code)
      try:
        tokens, counts, blocks = _spill(path, block_bytes, 0, mid, *self.parts[0])
      finally:
        _, status = os.waitpid(pid, 0)
      if status != 0:
        raise OSError(f"the process reading the second half of {path} failed ({status})")
      with open(result, "rb") as f:
        kind, out = pickle.load(f)
      os.remove(result)
      if kind == "error":
        raise CorpusError(out)
      tokens2, counts2, blocks2 = out
      index = {t: i for i, t in enumerate(tokens)}
      for t in tokens2:  # The second half's new words, in first-seen order.
        if t not in index:
          index[t] = len(tokens)
          tokens.append(t)
      to_global = np.fromiter(map(index.__getitem__, tokens2), np.int64, len(tokens2))
      del index
      counts = np.concatenate([counts, np.zeros(len(tokens) - len(counts), np.int64)])
      np.add.at(counts, to_global, counts2)
      self.blocks = [(0, n, m) for n, m in blocks] + [(1, n, m) for n, m in blocks2]
      remaps = [np.arange(len(tokens), dtype=np.int64), to_global]
    lines = sum(m for _, _, m in self.blocks)
    self.vocab = _from_counts(dict(zip(tokens, counts.tolist())), lines, data)
    index = {t: i for i, t in enumerate(self.vocab.tokens)}
    remap = np.fromiter((index.get(t.decode("utf-8"), -1) for t in tokens), np.int32, len(tokens))
    self.remaps = [remap[r] for r in remaps]

  def train(self) -> Iterator[TokenArray]:
    files = [(open(i, "rb"), open(n, "rb")) for i, n in self.parts]
    try:
      for part, n_ids, n_lines in self.blocks:
        fi, fl = files[part]
        ids = np.fromfile(fi, np.int32, n_ids)
        yield _encode(self.remaps[part][ids], np.fromfile(fl, np.int64, n_lines))
    finally:
      for pair in files:
        for f in pair:
          f.close()


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
