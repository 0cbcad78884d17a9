"""Config to arrays: the one place that turns ``config.data`` into vocab and token arrays."""

from __future__ import annotations

import ml_collections

from lm_jax.data import corpus as corpus_lib
from lm_jax.data import lm1b
from lm_jax.data.tokens import TokenArray, encode_sentences
from lm_jax.data.vocab import Vocab
from lm_jax.errors import CorpusError
from lm_jax.spec import DataSpec, as_config, parse_data


def data_config(
  name: str | None = corpus_lib.EMBEDDED, level: str | None = None
) -> ml_collections.ConfigDict:
  """The ``config.data`` block shared by every launcher (fields and defaults: ``spec.DataSpec``)."""
  c = as_config(DataSpec())
  c.name, c.level = name, level
  return c


def load_data(
  data: DataSpec | ml_collections.ConfigDict, vocab: Vocab | None = None
) -> tuple[corpus_lib.RawCorpus, Vocab, dict[str, TokenArray]]:
  """Reads the corpus, builds the vocabulary from train (unless given), encodes all splits."""
  if not isinstance(data, DataSpec):
    data = parse_data({k: data[k] for k in data.keys()})
  if data.name == lm1b.NAME:  # 0.8B words: read shard by shard, never as one text.
    spec = corpus_lib.REGISTRY[lm1b.NAME]
    archive = corpus_lib.locate_file(spec, spec.files[0], data.dir, data.download)
    return lm1b.load(archive, spec.files[0].sha256, data.min_count, data.max_size, vocab)
  raw = corpus_lib.load(
    name=data.name, data_dir=data.dir, file=data.file, level=data.level, download=data.download
  )
  if vocab is None:
    vocab = Vocab.build(
      raw.splits["train"], level=raw.level, min_count=data.min_count, max_size=data.max_size
    )
  for split, sents in raw.splits.items():
    if not sents:
      raise CorpusError(
        f"the {split} split of corpus {raw.name!r} ({raw.source}) is empty; use a "
        "longer text or a directory with train.txt, valid.txt and test.txt."
      )
  arrays = {s: encode_sentences(vocab, sents) for s, sents in raw.splits.items()}
  return raw, vocab, arrays
