"""Recurrent language models (Elman, LSTM) on PTB and Tiny Shakespeare.

Run (from the repository root; PTB files in $LM_JAX_DATA_DIR/ptb or downloaded)::

  python -m experiments.train --config=configs/rnn.py:lstm_small_ptb --workdir=/tmp/lstm_small
  python -m experiments.train --config=configs/rnn.py:elman_ptb,tiny --workdir=/tmp/elman_tiny

Presets (runtimes on a 2-core CPU; perplexities are PTB test, lm_jax convention):

- ``elman_ptb``: 1-layer Elman RNN. Not yet measured.
- ``lstm_small_ptb``: Zaremba et al. (2014) small: 2x200 LSTM, 35 steps, batch 20,
  SGD lr 1 halved each epoch after epoch 4, 13 epochs, clip 5, init ±0.1, no
  dropout (paper: 114.5 test). Not yet measured.
- ``lstm_medium_ptb``: Zaremba et al. (2014) medium: 2x650 LSTM, dropout 0.5,
  init ±0.05, lr 1 divided by 1.2 each epoch after epoch 6, 39 epochs (paper:
  82.7 test). A GPU/TPU batch job; not measured here.
- ``char_shakespeare``: 2-layer character LSTM on Tiny Shakespeare. Not yet measured.

``,tiny`` shrinks any preset to a seconds-long run on the embedded pydoc corpus.
"""

from configs import base_config, make_tiny, parse_arg
from lm_jax.data.pipeline import data_config


def elman_ptb():
  c = base_config()
  c.model.update(kind="elman", embed_dim=256, hidden_dim=256, num_layers=1, dropout=0.0)
  return c


def lstm_small_ptb():
  c = base_config()  # The base config is Zaremba's small model.
  c.optim.schedule = "epoch_decay"
  return c


def lstm_medium_ptb():
  c = base_config()
  c.model.update(embed_dim=650, hidden_dim=650, dropout=0.5, init_scale=0.05)
  c.train.num_epochs = 39
  c.optim.update(schedule="epoch_decay", decay_rate=1 / 1.2, decay_after_epochs=6)
  return c


def char_shakespeare():
  c = base_config()
  c.data = data_config("tinyshakespeare", "char")
  c.model.update(embed_dim=128, hidden_dim=512, num_layers=2, dropout=0.2, init_scale=0.08)
  c.train.update(batch_size=64, seq_len=100, num_epochs=10, loss_normalizer="tokens")
  c.optim.update(name="adam", learning_rate=2e-3, clip_norm=5.0, schedule="cosine")
  c.eval.batch_size = 32
  return c


PRESETS = {f.__name__: f for f in (elman_ptb, lstm_small_ptb, lstm_medium_ptb, char_shakespeare)}


def get_config(arg: str | None = None):
  """``PRESET`` or ``PRESET,tiny`` (see the module docstring)."""
  preset, tiny = parse_arg(arg, PRESETS)
  c = PRESETS[preset]()
  return make_tiny(c) if tiny else c
