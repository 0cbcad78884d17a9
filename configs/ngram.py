"""N-gram language models.

Command (embedded default corpus, no download, a few seconds):
  python -m experiments.ngram --config=configs/ngram.py --workdir=/tmp/ngram

Penn Treebank, interpolated modified Kneser-Ney 5-gram (estimation about 1 s
on a 2-core CPU; test perplexity 141.19, valid 148.01 -- lmplz gives 141.1862):
  python -m experiments.ngram --config=configs/ngram.py:ptb --workdir=/tmp/kn5

Any field can be overridden, e.g. ``--config.order=3 --config.smoothing=katz``
or ``--config.data.name= --config.data.dir=DIR`` for a directory holding
train.txt/valid.txt/test.txt.  Presets: ``default`` (embedded corpus, 3-gram
modified KN), ``ptb`` (5-gram modified KN), ``shakespeare`` (character 7-gram).
"""

import ml_collections

from lm_jax.data.pipeline import data_config


def get_config(arg: str = "default") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.order = 3
  c.smoothing = "modified_kneser_ney"  # mle, add_k, laplace, katz, kneser_ney, modified_kneser_ney, stupid_backoff
  c.k = 1.0                            # add_k's k (Lidstone); laplace forces 1
  c.discount_fallback = ml_collections.FieldReference(None, field_type=str)  # e.g. "0.5,1.0,1.5"
  c.kn_statistics = "lmplz"            # "lmplz": discounts exactly as lmplz; "exact": Chen & Goodman
  c.stupid_backoff_alpha = 0.4         # 1.0 is the lecture's simplified back-off rule
  c.seed = 0
  c.data = data_config()
  c.write_arpa = False
  c.dump_tokens = False                # per-token log-probabilities as DIR/{valid,test}.tokens.tsv
  c.num_samples = 3
  c.max_sample_len = 60
  c.temperature = 1.0
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
