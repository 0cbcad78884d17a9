"""A training split read in chunks of whole sentences, for estimation in a memory budget.

``load_data`` holds every split as Python token lists, about 60 bytes per word: fine
for PTB, not for a corpus of hundreds of millions of words.  ``stream_data`` reads
a word corpus directory's ``train.txt`` twice, line block by line block (once for
the vocabulary, once to encode), never holding more than one block; valid and
test are small and read whole.  Other corpora (registered ones, one raw file, and
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
  words = collections.Counter({t.decode("utf-8"): c for t, c in counts.items()})
  del counts
  return Vocab.from_counts(words, lines, "word", data.min_count or 1, data.max_size)


def encode_lines(index: dict[bytes, int], tokens: list[bytes], per_line: np.ndarray) -> TokenArray:
  """Sentences of ``per_line`` tokens each (``index``'s keys), each followed by ``</s>``."""
  words = np.fromiter(map(index.get, tokens, itertools.repeat(-1)), np.int32, len(tokens))
  starts = np.zeros(len(per_line) + 1, np.int64)
  np.cumsum(per_line + 1, out=starts[1:])
  ids = np.full(int(starts[-1]), EOS_ID, np.int32)
  is_word = np.ones(len(ids), bool)
  is_word[starts[1:] - 1] = False
  ids[is_word] = words
  oov = ids < 0
  ids[oov] = UNK_ID
  return TokenArray(ids=ids, starts=starts, oov=oov)


def stream_data(data: DataSpec, chunk_tokens: int) -> StreamedCorpus:
  """The corpus of ``data`` with its training split as a re-readable stream of chunks."""
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
  vocab = _vocab(train_path, block, data)
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

  index = {t.encode("utf-8"): i for i, t in enumerate(vocab.tokens)}

  def train() -> Iterator[TokenArray]:
    for b in _blocks(train_path, block):
      yield encode_lines(index, *split_lines(b))

  return StreamedCorpus(info, vocab, heldout, train, sum(vocab.counts))
