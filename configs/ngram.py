"""N-gram language models.

Command (embedded default corpus, no download, a few seconds):
  python -m experiments.ngram --config=configs/ngram.py --workdir=/tmp/ngram

Penn Treebank, interpolated modified Kneser-Ney 5-gram (estimation about 1 s
on a 2-core CPU; test perplexity 141.19, valid 148.01 -- lmplz gives 141.1862):
  python -m experiments.ngram --config=configs/ngram.py:ptb --workdir=/tmp/kn5

Out of core, in a memory budget (as lmplz -S/-T), for corpora whose n-grams do not fit
in RAM; the same model, byte for byte:
  python -m experiments.ngram --config=configs/ngram.py:ptb --config.data.name= \
    --config.data.dir=DIR --config.memory=4G --config.temp_dir=/scratch --workdir=/tmp/big

Any field can be overridden, e.g. ``--config.order=3 --config.smoothing=katz``
or ``--config.data.name= --config.data.dir=DIR`` for a directory holding
train.txt/valid.txt/test.txt.  Presets: ``default`` (embedded corpus, 3-gram
modified KN), ``ptb`` (5-gram modified KN), ``shakespeare`` (character 7-gram).
"""

import ml_collections

from lm_jax.ngram.spec import NGramSpec
from lm_jax.spec import as_config


def get_config(arg: str = "default") -> ml_collections.ConfigDict:
  """Fields and defaults: ``lm_jax.ngram.spec.NGramSpec`` (3-gram modified Kneser-Ney, embedded corpus)."""
  c = as_config(NGramSpec())
  if arg == "ptb":
    c.order = 5
    c.data.name = "ptb"
  elif arg == "shakespeare":
    c.order = 7
    c.data.name = "tinyshakespeare"
    # 65 character types leave the unigram counts-of-counts too sparse for
    # Chen & Goodman's discounts (lmplz needs --discount_fallback here too).
    c.discount_fallback = "0.5,1.0,1.5"
    c.max_sample_len = 300
  elif arg != "default":
    raise ValueError(f"unknown preset {arg!r}; use default, ptb or shakespeare.")
  return c
