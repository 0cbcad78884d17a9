"""The One Billion Word benchmark (Chelba et al. 2013) as the registered corpus ``lm1b``.

The archive (1.8 GB, 0.8 billion training words) is found in ``data.dir`` /
``$LM_JAX_DATA_DIR`` / the cache or downloaded, checked against its sha256, and
the shards the standard split uses are extracted once next to it.  The split is
Chelba et al.'s: training shards 1-99 of ``training-monolingual.tokenized.shuffled``
(shard 0 is the held-out data), ``news.en.heldout-00000-of-00050`` as test;
``news.en.heldout-00001-of-00050`` serves as validation.  The benchmark's
vocabulary keeps the words seen at least 3 times in training (793,471 types with
``</s>`` and ``<unk>``); ``data.min_count`` overrides it.

Reading is shard by shard: one pass counts the training types, a second encodes
each shard and appends its ids to a file next to the extracted shards (once per
vocabulary), so the raw text of at most one shard is in memory at a time.  The
training split comes back memory-mapped from that file (4 bytes a token, 3.2 GB
for the 0.8B tokens): training cuts each step's segment out of it
(``TrainStream.segment``) and never holds the corpus in memory.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import tarfile
from collections.abc import Iterator

import numpy as np

from lm_jax.data.corpus import describe
from lm_jax.data.tokens import TokenArray, encode_sentences
from lm_jax.data.vocab import Vocab
from lm_jax.errors import CorpusError

NAME = "lm1b"
MIN_COUNT = 3  # The benchmark's vocabulary: training words seen at least 3 times.
ROOT = "1-billion-word-language-modeling-benchmark-r13output"
TRAIN_DIR = "training-monolingual.tokenized.shuffled"
HELDOUT_DIR = "heldout-monolingual.tokenized.shuffled"
TRAIN_SHARDS = tuple(f"{TRAIN_DIR}/news.en-{i:05d}-of-00100" for i in range(1, 100))
SPLIT_SHARDS = {
  "train": TRAIN_SHARDS,
  "valid": (f"{HELDOUT_DIR}/news.en.heldout-00001-of-00050",),
  "test": (f"{HELDOUT_DIR}/news.en.heldout-00000-of-00050",),
}
_DONE = ".lm_jax-extracted"


@dataclasses.dataclass(frozen=True)
class ShardedCorpus:
  """Where a sharded corpus came from and how many sentences each split has."""

  name: str
  level: str
  checksums: dict[str, str]
  source: str
  sentences: dict[str, int]

  def describe(self) -> dict:
    return describe(self, self.sentences)


def extract(archive: pathlib.Path) -> pathlib.Path:
  """Extracts the split's shards next to ``archive`` (once); returns the benchmark's root."""
  dest = archive.parent
  root = dest / ROOT
  if (root / _DONE).is_file():
    return root
  wanted = {f"{ROOT}/{s}" for shards in SPLIT_SHARDS.values() for s in shards}
  try:
    with tarfile.open(archive, "r:*") as tar:
      members = [m for m in tar if m.name in wanted]
      missing = sorted(wanted - {m.name for m in members})
      if missing:
        raise CorpusError(
          f"{archive} lacks {len(missing)} shard(s) of the standard split, e.g. "
          f"{missing[0]}; it is not the r13output archive: download it again."
        )
      tar.extractall(dest, members=members, filter="data")  # Nothing outside dest.
  except (tarfile.TarError, OSError, EOFError) as e:
    raise CorpusError(f"cannot extract {archive} ({e}); delete it and download it again.") from None
  (root / _DONE).write_text("\n".join(sorted(wanted)) + "\n", encoding="utf-8")
  return root


def _sentences(path: pathlib.Path) -> list[list[str]]:
  try:
    text = path.read_text(encoding="utf-8")
  except UnicodeDecodeError as e:
    raise CorpusError(f"{path} is not UTF-8 ({e}); extract the archive again.") from None
  return [line.split() for line in text.split("\n") if line.strip()]


def _train_sentences(root: pathlib.Path) -> Iterator[list[str]]:
  for shard in TRAIN_SHARDS:
    yield from _sentences(root / shard)


def _train_on_disk(root: pathlib.Path, vocab: Vocab) -> TokenArray:
  """The training shards encoded with ``vocab`` into files (once), memory-mapped read-only."""
  cache = root / f".lm_jax-train-{vocab.hash[:16]}"
  names = {"ids": np.int32, "starts": np.int64, "oov": np.bool_}
  if not (cache / _DONE).is_file():
    cache.mkdir(exist_ok=True)
    # Private temporary names, renamed into place: several processes of one job may write.
    tmp = {k: cache / f"{k}.{os.getpid()}.tmp" for k in names}
    total = 0
    try:
      with open(tmp["ids"], "wb") as ids, open(tmp["starts"], "wb") as starts:
        with open(tmp["oov"], "wb") as oov:
          starts.write(np.zeros(1, np.int64).tobytes())
          for shard in TRAIN_SHARDS:
            part = encode_sentences(vocab, _sentences(root / shard))
            ids.write(part.ids.tobytes())
            oov.write(part.oov.tobytes())
            starts.write((part.starts[1:] + total).astype(np.int64).tobytes())
            total += part.num_tokens
    except BaseException:  # A bad shard or a full disk leaves no partial file behind.
      for path in tmp.values():
        path.unlink(missing_ok=True)
      raise
    if not total:
      raise CorpusError(f"the train shards of {root} are empty; extract the archive again.")
    for k in names:
      os.replace(tmp[k], cache / k)
    (cache / _DONE).write_text(f"{total} tokens\n", encoding="utf-8")
  arrays = {k: np.memmap(cache / k, dtype, mode="r") for k, dtype in names.items()}
  return TokenArray(ids=arrays["ids"], starts=arrays["starts"], oov=arrays["oov"])


def _concat(parts: list[TokenArray]) -> TokenArray:
  offsets = np.cumsum([0] + [p.num_tokens for p in parts[:-1]])
  starts = np.concatenate(
    [p.starts[:-1] + o for p, o in zip(parts, offsets)]
    + [np.array([sum(p.num_tokens for p in parts)], np.int64)]
  )
  return TokenArray(
    ids=np.concatenate([p.ids for p in parts]),
    starts=starts,
    oov=np.concatenate([p.oov for p in parts]),
  )


def load(
  archive: pathlib.Path,
  sha256: str,
  min_count: int | None = None,
  max_size: int | None = None,
  vocab: Vocab | None = None,
) -> tuple[ShardedCorpus, Vocab, dict[str, TokenArray]]:
  """Vocabulary from the training shards, then every split encoded shard by shard.

  ``sha256`` is the archive's verified checksum, recorded with the run.
  """
  root = extract(archive)
  if vocab is None:
    vocab = Vocab.build(
      _train_sentences(root),
      level="word",
      min_count=MIN_COUNT if min_count is None else min_count,
      max_size=max_size,
    )
  arrays = {"train": _train_on_disk(root, vocab)}
  for split in ("valid", "test"):  # One shard each: encoded in memory.
    shards = SPLIT_SHARDS[split]
    parts = [encode_sentences(vocab, _sentences(root / s)) for s in shards]
    parts = [p for p in parts if p.num_sentences]
    if not parts:
      raise CorpusError(f"the {split} shards of {root} are empty; extract the archive again.")
    arrays[split] = _concat(parts)
  info = ShardedCorpus(
    NAME, "word", {archive.name: sha256}, str(root), {s: a.num_sentences for s, a in arrays.items()}
  )
  return info, vocab, arrays
