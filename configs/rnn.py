"""Recurrent language models (Elman, LSTM) on PTB and Tiny Shakespeare.

Run (from the repository root; PTB files in $LM_JAX_DATA_DIR/ptb or downloaded)::

  python -m experiments.train --config=configs/rnn.py:lstm_small_ptb --workdir=/tmp/lstm_small
  python -m experiments.train --config=configs/rnn.py:elman_ptb,tiny --workdir=/tmp/elman_tiny

Presets (runtimes on a 2-core CPU; perplexities are PTB test, lm_jax convention):

- ``elman_ptb``: 1-layer tanh Elman RNN, 400 units, tied softmax, dropout 0.3, batch 32,
  Adam 2e-3 halved when an epoch improves valid loss by < 0.5%, 12 epochs
  (Mikolov et al. 2011 RNN LM: 131.3 test). Measured: test 120.00, valid 127.24,
  53 min on a 2-core CPU shared with other jobs (experiments/results/elman_ptb.json).
- ``lstm_small_ptb``: Zaremba et al. (2014) small: 2x200 LSTM, 35 steps, batch 20,
  SGD lr 1 halved each epoch after epoch 4, 13 epochs, clip 5, init ±0.1, no
  dropout (paper: 114.5 test). Measured: test 112.88, valid 117.32, 28 min on a
  2-core CPU (experiments/results/lstm_small_ptb.json).
- ``lstm_medium_ptb``: Zaremba et al. (2014) medium: 2x650 LSTM, dropout 0.5,
  init ±0.05, lr 1 divided by 1.2 each epoch after epoch 6, 39 epochs (paper:
  82.7 test). A GPU/TPU batch job; not measured here.
- ``char_shakespeare``: 2x384 character LSTM on Tiny Shakespeare (90/5/5 split),
  embedding 128, dropout 0.25, 100-step BPTT, batch 16, Adam 5e-3 with a cosine decay
  over 16 epochs, a validation point every 100 steps. Measured: valid 1.350 nats/char
  (1.948 bits), test 1.500 nats/char, 21 min on an idle 2-core CPU; below 1.50 from
  step 1700 (epoch 2.7, 3.5 min) on. At equal wall time it is below nanoGPT's CPU configuration
  evaluated on the same validation text at every one of nanoGPT's evaluations
  (experiments/results/char_shakespeare.json).

- ``lstm_small_ptb_adaptive``, ``_class``, ``_sampled``: ``lstm_small_ptb`` with another
  output layer (``model.output``). Adaptive: head of 1000 ids, clusters [1000, 4000) and
  [4000, V) with projections of 100 and 50, dropout 0.5 on those projections
  (``model.adaptive_dropout``). Measured: test 108.66, valid 113.20 (full softmax:
  112.88 / 117.32), 17 min on a 2-core CPU
  (experiments/results/lstm_small_ptb_adaptive.json). Without the tail dropout the
  clusters overfit under this preset's undropped SGD: three layouts stalled near valid
  131 by epoch 4-5 (experiments/results/lstm_small_ptb_adaptive_attempts.log).
- ``elman_maxent_ptb``: ``elman_ptb`` plus MaxEnt n-gram features up to order 3 (RNNME,
  Mikolov et al. 2011) in 2^22 hashed weights, trained by plain SGD with L2 as RNNME's
  direct connections (``optim.maxent_learning_rate``; the network on Adam), 8 epochs,
  the rate halved each epoch after the 4th. Measured: test 114.38, valid 121.02 (plain
  Elman: 120.00 / 127.24), 84 min on a 2-core CPU shared with other jobs
  (experiments/results/elman_maxent_ptb.json). With the n-gram weights on Adam they
  overfit from epoch 3 (experiments/results/elman_maxent_ptb_attempt.log).

``,tiny`` shrinks any preset to a seconds-long run on the embedded pydoc corpus.
"""

from configs import base_config, make_tiny, parse_arg
from lm_jax.data.pipeline import data_config


def elman_ptb():
  """1-layer tanh Elman RNN, 400 units, tied softmax, dropout 0.3, Adam halved on plateaus."""
  c = base_config()
  c.model.update(
    kind="elman", embed_dim=400, hidden_dim=400, num_layers=1, dropout=0.3, tie_weights=True
  )
  c.train.update(batch_size=32, num_epochs=12, loss_normalizer="tokens")
  c.optim.update(
    name="adam",
    learning_rate=2e-3,
    clip_norm=1.0,
    plateau=dict(enabled=True, factor=0.5, patience=1, rtol=5e-3, cooldown=0, min_scale=0.0),
  )
  c.eval.batch_size = 1  # The test set as one stream, as Mikolov's RNNLM scores it.
  return c


def lstm_small_ptb():
  """Zaremba et al. (2014) small; the base config already holds its sizes and optimizer."""
  c = base_config()
  c.optim.schedule = "epoch_decay"
  c.eval.batch_size = 1  # Zaremba's test pass: batch 1, state carried through the whole split.
  return c


def lstm_medium_ptb():
  """Zaremba et al. (2014) medium: 2x650, dropout 0.5, lr / 1.2 per epoch after epoch 6."""
  c = lstm_small_ptb()
  c.model.update(embed_dim=650, hidden_dim=650, dropout=0.5, init_scale=0.05)
  c.train.num_epochs = 39
  c.optim.update(decay_rate=1 / 1.2, decay_after_epochs=6)
  return c


def char_shakespeare():
  """2x384 character LSTM, 100-step BPTT, batch 16, Adam 5e-3 with a cosine decay over 16 epochs."""
  c = base_config()
  c.data = data_config("tinyshakespeare", "char")
  c.model.update(embed_dim=128, hidden_dim=384, num_layers=2, dropout=0.25, init_scale=0.08)
  c.train.update(
    batch_size=16, seq_len=100, num_epochs=16, loss_normalizer="tokens", eval_every_steps=100
  )  # A valid point every ~12 s: curves against wall time.
  c.optim.update(name="adam", learning_rate=5e-3, clip_norm=5.0, schedule="cosine")
  c.eval.batch_size = 16
  return c


def lstm_small_ptb_adaptive():
  """``lstm_small_ptb`` with an adaptive softmax: head of 1000 ids, clusters [1000, 4000), [4000, V),
  dropout 0.5 on the clusters' projections (undropped, the tail clusters overfit)."""
  c = lstm_small_ptb()
  c.model.update(
    output="adaptive", adaptive_cutoffs="1000,4000", adaptive_div=2.0, adaptive_dropout=0.5
  )
  return c


def lstm_small_ptb_class():
  """``lstm_small_ptb`` with Mikolov's class factorization: 100 frequency bins."""
  c = lstm_small_ptb()
  c.model.update(output="class", num_classes=100)
  return c


def lstm_small_ptb_sampled():
  """``lstm_small_ptb`` trained with a sampled softmax of 1024 log-uniform candidates."""
  c = lstm_small_ptb()
  c.model.update(output="sampled", num_sampled=1024)
  return c


def elman_maxent_ptb():
  """``elman_ptb`` plus MaxEnt n-gram features up to order 3 (RNNME, Mikolov et al. 2011)."""
  c = elman_ptb()
  c.model.update(maxent_order=3, maxent_hash_size=1 << 22)
  # The n-gram weights learn fast: 8 epochs, Adam's rate halved each epoch after the 4th.
  c.train.num_epochs = 8
  c.optim.update(schedule="epoch_decay", decay_after_epochs=4, decay_rate=0.5)
  c.optim.plateau.enabled = False
  # The n-gram weights by plain SGD with L2, as RNNME's direct connections (Adam overfits
  # them: experiments/results/elman_maxent_ptb_attempt.log). 100 on a mean over 32 x 35
  # tokens is about RNNME's per-token rate 0.1 (0.089); L2 1e-6 is its beta.
  c.optim.update(maxent_learning_rate=100.0, maxent_l2=1e-6)
  return c


PRESETS = {
  f.__name__: f
  for f in (
    elman_ptb,
    lstm_small_ptb,
    lstm_medium_ptb,
    char_shakespeare,
    lstm_small_ptb_adaptive,
    lstm_small_ptb_class,
    lstm_small_ptb_sampled,
    elman_maxent_ptb,
  )
}


def get_config(arg: str | None = None):
  """``PRESET`` or ``PRESET,tiny`` (see the module docstring)."""
  preset, tiny = parse_arg(arg, PRESETS)
  c = PRESETS[preset]()
  return make_tiny(c) if tiny else c
