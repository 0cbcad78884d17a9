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

import dataclasses
import pathlib
from collections.abc import Callable, Iterator

from lm_jax.data import corpus as corpus_lib
from lm_jax.data.lm1b import ShardedCorpus
from lm_jax.data.pipeline import load_data
from lm_jax.data.tokens import TokenArray, encode_sentences
from lm_jax.data.vocab import Vocab
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


def _blocks(path: pathlib.Path, block_bytes: int) -> Iterator[list[list[str]]]:
  """Sentences (one per line, split at whitespace) in blocks of about ``block_bytes``."""
  try:
    with open(path, encoding="utf-8", newline="\n") as f:
      while lines := f.readlines(block_bytes):
        yield [line.split() for line in lines]
  except UnicodeDecodeError as e:
    raise CorpusError(
      f"{path} is not UTF-8 ({e}); convert it, e.g. `iconv -f latin1 -t utf-8`."
    ) from None


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
  vocab = Vocab.build(
    (s for b in _blocks(train_path, block) for s in b),
    level="word",
    min_count=data.min_count or 1,
    max_size=data.max_size,
  )
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

  def train() -> Iterator[TokenArray]:
    for sents in _blocks(train_path, block):
      yield encode_sentences(vocab, sents)

  return StreamedCorpus(info, vocab, heldout, train, sum(vocab.counts))
