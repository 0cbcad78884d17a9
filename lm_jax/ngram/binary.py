"""A binary n-gram model that is scored from its files: never loaded whole into RAM.

``save_binary(lm, directory)`` writes what scoring reads, one ``.npy`` file per
array: each order's sorted ``(suffix, first)`` keys (int64, with a sentinel) and
its float32 log-probabilities and back-off weights, the unigram tables, and the
vocabulary.  ``load_binary(directory)`` opens the files of orders 2 and up as
``npy.FileArray``s: a scoring pass reads just the blocks its lookups need, with
plain reads, so a model larger than RAM scores from disk; the operating system's
page cache keeps the hot parts, and the process holds only a search index of
1/512 of the keys. (Memory-mapping them instead would map each page a lookup
touches, with whole cached folios of the file around it, into the process's
resident memory: a scoring pass over a large model would look as large as the
model.) Scores equal the in-memory model's bit for bit (the same float32 arrays
and the same arithmetic).
"""

from __future__ import annotations

import json
import os

import numpy as np

from lm_jax.data.vocab import Vocab
from lm_jax.errors import ArpaError
from lm_jax.ngram import npy
from lm_jax.ngram.model import NGramLM, Scorer

FORMAT = "lm_jax-ngram-binary-1"


class MappedNGramLM(Scorer):
  """An n-gram model scored from its files (``load_binary``)."""

  def __init__(self, vocab: Vocab, smoothing: str, order: int, normalized: bool, arrays):
    self.vocab, self.smoothing, self.order, self.normalized = vocab, smoothing, order, normalized
    self._score_arrays = arrays


def save_binary(lm: NGramLM, directory: str) -> None:
  """Writes the scoring arrays of ``lm`` (one ``.npy`` each), the vocabulary and a header."""
  os.makedirs(directory, exist_ok=True)
  size, logp1, logbow1, orders = lm._score_arrays
  np.save(os.path.join(directory, "logp1.npy"), logp1)
  np.save(os.path.join(directory, "logbow1.npy"), logbow1)
  for k, (keys, logp, logbow) in enumerate(orders, start=2):
    np.save(os.path.join(directory, f"keys{k}.npy"), keys)
    np.save(os.path.join(directory, f"logp{k}.npy"), logp)
    np.save(os.path.join(directory, f"logbow{k}.npy"), logbow)
  write_header(directory, lm.vocab, size, lm.smoothing, lm.normalized, lm.trie.sizes())


def write_header(directory: str, vocab: Vocab, size: int, smoothing: str, normalized: bool, ngrams):
  """The vocabulary and ``model.json`` beside the arrays (also ``arrays_io.save_scoring``'s)."""
  vocab.save(os.path.join(directory, "vocab.json"))
  header = {
    "format": FORMAT,
    "order": len(ngrams),
    "vocab_size": size,
    "smoothing": smoothing,
    "normalized": normalized,
    "ngrams": list(ngrams),
  }
  with open(os.path.join(directory, "model.json"), "w", encoding="utf-8") as f:
    json.dump(header, f, indent=1)


def load_binary(directory: str) -> MappedNGramLM:
  """Maps a ``save_binary`` directory read-only; ArpaError (naming the fix) if it is not one."""
  try:
    with open(os.path.join(directory, "model.json"), encoding="utf-8") as f:
      header = json.load(f)
    if header.get("format") != FORMAT:
      raise ValueError(f"format {header.get('format')!r}, expected {FORMAT!r}")
    order = int(header["order"])

    def load(name: str) -> npy.FileArray:
      return npy.FileArray(os.path.join(directory, f"{name}.npy"))

    orders = tuple(
      (load(f"keys{k}"), load(f"logp{k}"), load(f"logbow{k}")) for k in range(2, order + 1)
    )
    for k, (keys, logp, logbow) in enumerate(orders, start=2):
      if not len(keys) == len(logp) == len(logbow) == header["ngrams"][k - 1] + 1:
        raise ValueError(f"the {k}-gram arrays do not match the header's {header['ngrams'][k - 1]}")
    vocab = Vocab.load(os.path.join(directory, "vocab.json"))
    unigrams = [np.load(os.path.join(directory, f"{n}1.npy")) for n in ("logp", "logbow")]
    arrays = (int(header["vocab_size"]), *unigrams, orders)
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise ArpaError(
      f"{directory} is not a complete lm_jax binary n-gram model ({e}); write it again with "
      "lm_jax.ngram.binary.save_binary."
    ) from None
  return MappedNGramLM(vocab, header["smoothing"], order, bool(header["normalized"]), arrays)
