r"""Generates a large word corpus with realistic n-gram statistics, reproducibly.

Sentences are drawn from an interpolated modified Kneser-Ney model of a real
corpus (PTB by default, its 5-gram: test perplexity 141), so the text has PTB's
counts, and its distinct n-grams keep growing with its length (new n-grams come
from the model's back-off), as in real text.  PTB's vocabulary is closed (10k
types, rarer words are ``<unk>``, 4.6% of tokens), so a sampled ``<unk>`` is
written as one word of an open Zipfian tail (``r<rank>``, rank ~ Zipf(``--zipf``)):
the vocabulary then grows with the text (about N^(1/a) types from N draws), which
gives the unigrams and every order the rare n-grams (adjusted count 1 and 2)
real corpora have and Kneser-Ney's discounts need.  The same flags give the same
files byte for byte.

  python -m experiments.make_ngram_corpus --out_dir=/tmp/kn250m --tokens=250000000

writes ``train.txt`` (``--tokens`` tokens, ``</s>`` counted) and ``valid.txt`` /
``test.txt`` (``--heldout_tokens`` each, drawn with other seeds) -- a directory
for ``--config.data.name= --config.data.dir=DIR``.
"""

from __future__ import annotations

import os
import time

import numpy as np
from absl import app, flags

from lm_jax.data.pipeline import data_config, load_data
from lm_jax.data.vocab import UNK_ID
from lm_jax.ngram.model import NGramLM
from lm_jax.ngram.sample import sample_corpus

_OUT = flags.DEFINE_string("out_dir", None, "Directory for train.txt, valid.txt, test.txt.")
_TOKENS = flags.DEFINE_integer("tokens", 10_000_000, "Training tokens (</s> included).")
_HELDOUT = flags.DEFINE_integer("heldout_tokens", 200_000, "Tokens of valid.txt and test.txt each.")
_SOURCE = flags.DEFINE_string("source", "ptb", "Registered corpus the sampled model is built on.")
_ORDER = flags.DEFINE_integer("order", 5, "Order of the sampled model.")
_ZIPF = flags.DEFINE_float("zipf", 1.2, "Exponent of the rare-word tail that replaces <unk>.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of train.txt (valid and test use seed+1, seed+2).")


def write(lm, path: str, tokens: int, seed: int, zipf: float) -> int:
  words = np.array(lm.vocab.tokens, dtype=object)
  rng = np.random.default_rng([seed, 1])  # The tail's draws: apart from the sentences'.
  lines = 0
  with open(path + ".tmp", "w", encoding="utf-8") as f:
    batch = []

    def flush():
      ids = np.concatenate(batch)
      text = words[ids]
      unk = np.nonzero(ids == UNK_ID)[0]
      text[unk] = np.char.add("r", rng.zipf(zipf, len(unk)).astype(str)).astype(object)
      ends = np.cumsum([len(b) for b in batch])[:-1]
      f.write("\n".join(" ".join(s) for s in np.split(text, ends)) + "\n")

    for sent in sample_corpus(lm, tokens, seed):
      batch.append(sent)
      if len(batch) == 100_000:
        flush()
        lines, batch = lines + len(batch), []
    if batch:
      flush()
      lines += len(batch)
  os.replace(path + ".tmp", path)  # No half-written corpus under the final name.
  return lines


def main(argv):
  del argv
  if not _OUT.value:
    raise app.UsageError("--out_dir is required.")
  os.makedirs(_OUT.value, exist_ok=True)
  _, vocab, arrays = load_data(data_config(_SOURCE.value))
  lm = NGramLM.estimate(arrays["train"], vocab, _ORDER.value, "modified_kneser_ney")
  for name, tokens, seed in (
    ("train", _TOKENS.value, _SEED.value),
    ("valid", _HELDOUT.value, _SEED.value + 1),
    ("test", _HELDOUT.value, _SEED.value + 2),
  ):
    t0 = time.perf_counter()
    lines = write(lm, os.path.join(_OUT.value, f"{name}.txt"), tokens, seed, _ZIPF.value)
    print(f"{name}.txt: {lines} sentences, {tokens} tokens, {time.perf_counter() - t0:.1f}s")


if __name__ == "__main__":
  app.run(main)
