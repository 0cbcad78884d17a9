"""The lecture in one command: counting models, neural models, perplexity, samples.

Embedded corpus (no download; 42 s measured on a 2-core CPU)::

  python -m experiments.lecture --workdir=/tmp/lecture

Penn Treebank, the lecture's perplexity table with the shipped configs (KN
5-gram vs Elman RNN vs LSTM, plus their interpolation; the neural runs take
hours on a 2-core CPU and resume when restarted)::

  python -m experiments.lecture --config=configs/lecture.py:ptb --workdir=/tmp/lecture_ptb

Fields: ``ngram.orders`` and ``ngram.smoothings`` (tuples; every combination is
estimated, e.g. ``--config.ngram.orders='(3, 5)'``), ``neural`` (name -> config file and preset, plus overrides),
``models`` (which neural entries to run, in order), ``interpolate`` (two model
names mixed with weights tuned on valid),
``num_samples``, ``temperature``, ``seed``.
"""

import ml_collections

from lm_jax.data.pipeline import data_config


def _neural(config: str, **overrides: dict) -> ml_collections.ConfigDict:
  """A neural run: its config file and preset, and nested overrides (``train={...}``)."""
  return ml_collections.ConfigDict({"config": config, "overrides": overrides})


def get_config(arg: str = "pydoc") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.data = data_config("pydoc")
  c.num_samples = 3
  c.temperature = 0.8
  c.ngram = ml_collections.ConfigDict(
    {
      "orders": (1, 2, 3, 4, 5),
      "smoothings": ("mle", "laplace", "katz", "kneser_ney", "modified_kneser_ney"),
    }
  )
  # Sized for the ~45k-token embedded corpus: 10-20 s per network on 2 cores.
  train = {
    "batch_size": 16,
    "seq_len": 35,
    "num_epochs": 20,
    "log_every_steps": 50,
    "checkpoint_every_steps": 10_000,
    "loss_normalizer": "tokens",
  }
  optim = {"name": "adam", "learning_rate": 3e-3, "clip_norm": 1.0, "schedule": "constant"}
  evals = {"batch_size": 4}
  c.neural = ml_collections.ConfigDict(
    {
      "window": _neural(
        "configs/window.py:ptb",
        train=train,
        optim=optim,
        eval=evals,
        model={"context": 4, "embed_dim": 64, "hidden_dim": 128, "dropout": 0.3},
      ),
      "elman": _neural(
        "configs/rnn.py:elman_ptb",
        train=train,
        optim=optim,
        eval=evals,
        model={"embed_dim": 128, "hidden_dim": 128, "dropout": 0.3},
      ),
      "lstm": _neural(
        "configs/rnn.py:lstm_small_ptb",
        train=train,
        optim=optim,
        eval=evals,
        model={
          "embed_dim": 128,
          "hidden_dim": 128,
          "num_layers": 1,
          "dropout": 0.3,
          "tie_weights": True,
        },
      ),
    }
  )
  c.models = ("window", "elman", "lstm")  # which entries of ``neural`` to run, in this order
  c.interpolate = ("modified_kneser_ney_5", "lstm")
  if arg == "ptb":
    c.data = data_config("ptb")
    c.ngram.orders = (3, 5)
    c.ngram.smoothings = ("katz", "modified_kneser_ney")
    c.neural = ml_collections.ConfigDict(
      {
        "window": _neural("configs/window.py:ptb"),
        "elman": _neural("configs/rnn.py:elman_ptb"),
        "elman_maxent": _neural("configs/rnn.py:elman_maxent_ptb"),
        "lstm": _neural("configs/rnn.py:lstm_small_ptb"),
      }
    )
    c.models = ("window", "elman", "elman_maxent", "lstm")
  elif arg != "pydoc":
    raise ValueError(f"unknown preset {arg!r}; use pydoc (default) or ptb.")
  return c
