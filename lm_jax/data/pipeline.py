"""Config to arrays: the one place that turns ``config.data`` into vocab and token arrays."""

from __future__ import annotations

import ml_collections

from lm_jax.data import corpus as corpus_lib
from lm_jax.data.tokens import TokenArray, encode_sentences
from lm_jax.data.vocab import Vocab
from lm_jax.errors import CorpusError


def data_config(name: str | None = corpus_lib.EMBEDDED, level: str | None = None) -> ml_collections.ConfigDict:
  """The ``config.data`` block shared by every launcher (fields are the contract)."""
  # Optional fields are typed placeholders so that ``--config.data.dir=...`` can set them.
  opt = lambda value, kind: ml_collections.FieldReference(value, field_type=kind)
  return ml_collections.ConfigDict({
      "name": opt(name, str),  # registered corpus: ptb, tinyshakespeare, pydoc (embedded)
      "dir": opt(None, str),   # local directory (registered corpus files, or train/valid/test.txt)
      "file": opt(None, str),  # one raw text file, split contiguously 90/5/5
      "level": opt(level, str),  # "word" or "char"; None: the corpus default
      "download": True,        # fetch a registered corpus into the cache if it is not found
      "min_count": 1,          # rarer training types become <unk>
      "max_size": opt(None, int),  # cap on vocabulary size (with specials)
  })


def load_data(data: ml_collections.ConfigDict, vocab: Vocab | None = None,
              ) -> tuple[corpus_lib.RawCorpus, Vocab, dict[str, TokenArray]]:
  """Reads the corpus, builds the vocabulary from train (unless given), encodes all splits."""
  raw = corpus_lib.load(name=data.name, data_dir=data.dir, file=data.get("file"),
                        level=data.level, download=data.download)
  if vocab is None:
    vocab = Vocab.build(raw.splits["train"], level=raw.level, min_count=data.min_count,
                        max_size=data.max_size)
  for split, sents in raw.splits.items():
    if not sents:
      raise CorpusError(f"the {split} split of corpus {raw.name!r} ({raw.source}) is empty; use a "
                        "longer text or a directory with train.txt, valid.txt and test.txt.")
  arrays = {s: encode_sentences(vocab, sents) for s, sents in raw.splits.items()}
  return raw, vocab, arrays
