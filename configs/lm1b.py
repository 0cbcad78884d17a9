"""The One Billion Word table's neural models (Chelba et al. 2013 benchmark) as batch jobs.

Data: ``data.name=lm1b`` (training shards 1-99, heldout shard 0 as test; words seen
fewer than 3 times map to ``<unk>``: 793,471 types). These are GPU/TPU jobs: plan one
before submitting it, and launch it as the README's "Running on GPUs and TPUs" says
(``LM_JAX_DATA_DIR`` holding the benchmark's archive, or ``data.download``)::

  python -m experiments.plan --config=configs/lm1b.py:adaptive_small_lm1b --devices=8 \\
      --vocab_size=793471 --tokens=800000000
  python -m experiments.train --config=configs/lm1b.py:adaptive_small_lm1b --workdir=DIR

Presets (published test perplexity; architecture as published, optimizer settings from
the authors' released code where it exists, else lm_jax's stated choice):

- ``adaptive_small_lm1b``: Grave et al. (2017) "small": 1-layer LSTM-2048, 512-d
  embedding, adaptive softmax (cutoffs 20k / 200k, div 4), dropout 0.25, Adagrad 0.1
  halved every epoch after the 5th, clip 0.1, batch 128 x 20 (their released
  ``train_big_lstm.lua`` and its README). Published: 43.9.
- ``adaptive_large_lm1b``: the same with 2 layers (Grave et al. "large"). Published: 39.8.
- ``lstm_2048_512_lm1b``: Jozefowicz et al. (2016) LSTM-2048-512: one LSTM layer of 2048
  units projected to 512 (LSTMP), 512-d embedding, sampled softmax of 8192 candidates,
  Adagrad 0.2, clip 1.0, batch 128 x 20. Published: 43.7, 0.83B parameters.
- ``lstm_8192_1024_lm1b``: Jozefowicz et al. 2-layer LSTM-8192-1024, 1024-d embedding,
  otherwise as above; dropout 0.25 (lm_jax's choice). Published: 30.6, 1.8B parameters.
- ``rnnme_lm1b``: Chelba et al. (2013) RNN-1024 + MaxEnt 9-gram: a 1024-unit Elman RNN
  with hashed n-gram features up to order 9 in 2^30 weights (4 GiB), full softmax;
  the MaxEnt weights on plain SGD with L2 as RNNME's direct connections, the network
  on Adagrad (lm_jax's choice; the original trained by per-token SGD). Published: 51.3.

What the plan command says for 8 devices (``--devices=8 --vocab_size=793471
--tokens=800000000``: one pass over the 0.8B training tokens, times the preset's 10
epochs = 3,125,000 steps). Memory is the largest per device of three compiled programs:
the step (state, the device's rows of one segment, temporaries), the state's initialiser
(its random draws: it sets both adaptive presets' replicated figure) and one segment of
the evaluation (``eval.batch_size`` = 128 rows scored over the whole vocabulary: it sets
``lstm_2048_512_lm1b``'s ``model=8`` figure), with parameters and optimizer
state replicated (data parallelism) and with ``--config.mesh.model=8`` (vocabulary
matrices split over the 8 devices, which then all compute the whole batch). Time is the
analytic FLOP count at 30% of the accelerator's published float32/TF32 peak: an
optimistic bound, since a recurrent step over 16 rows per device reaches a far
smaller share of peak, and it leaves out the collectives.

=======================  =============  ==========  ==========  ==========  ===============
preset                   parameters     replicated  model=8     H100 (8x)   tpu-v5e (16 GB)
=======================  =============  ==========  ==========  ==========  ===============
adaptive_small_lm1b        638,429,953  9.30 GiB    2.23 GiB    57 min      fits, 2.4 h
adaptive_large_lm1b        671,992,577  9.55 GiB    2.82 GiB    1.3 h       fits, 3.3 h
lstm_2048_512_lm1b         822,753,663  12.27 GiB   2.31 GiB    9.2 min     fits, 23 min
lstm_8192_1024_lm1b      1,776,883,583  26.23 GiB   6.83 GiB    1.8 h       model=8, 4.5 h
rnnme_lm1b               2,701,663,103  36.26 GiB   93.17 GiB   9.2 h       does not fit
=======================  =============  ==========  ==========  ==========  ===============

793,471 does not divide by 8, so a [D, V] output matrix is stored split on D.
Evaluation moves it onto V first (an uneven split, which XLA pads inside the program):
otherwise every device would hold all 128 x 20 rows' scores over the whole vocabulary,
15.55 GiB for ``lstm_2048_512_lm1b`` and 16.46 GiB for ``lstm_8192_1024_lm1b``.

RNN + MaxEnt keeps its 2^30-weight table replicated (its hashed windows cross any
split), and with one device on the data axis each device gathers the windows of all
128 rows: run it data parallel on 80 GB devices.

``,tiny`` shrinks any preset to a seconds-long run on the embedded corpus (CI trains each).
"""

from configs import base_config, make_tiny, parse_arg
from lm_jax.data.pipeline import data_config

VOCAB = 793_471  # the benchmark's types (count >= 3), <unk> and </s> included
CUTOFFS = "20000,200000"


def _lm1b(embed: int, hidden: int, layers: int):
  c = base_config()
  c.data = data_config("lm1b", "word")
  c.model.update(kind="lstm", embed_dim=embed, hidden_dim=hidden, num_layers=layers, init_scale=0.1)
  c.train.update(batch_size=128, seq_len=20, num_epochs=10, loss_normalizer="tokens")
  c.train.update(eval_every_epochs=1, eval_every_steps=20_000, checkpoint_every_steps=5_000)
  c.eval.batch_size = 128
  return c


def adaptive_small_lm1b():
  """Grave et al. 2017 small: 1-layer LSTM-2048 with an adaptive softmax."""
  c = _lm1b(512, 2048, 1)
  c.model.update(output="adaptive", adaptive_cutoffs=CUTOFFS, adaptive_div=4.0, dropout=0.25)
  c.optim.update(
    name="adagrad",
    learning_rate=0.1,
    clip_norm=0.1,
    schedule="epoch_decay",
    decay_rate=0.5,
    decay_after_epochs=5,
  )
  return c


def adaptive_large_lm1b():
  """Grave et al. 2017 large: 2-layer LSTM-2048 with an adaptive softmax."""
  c = adaptive_small_lm1b()
  c.model.num_layers = 2
  return c


def lstm_2048_512_lm1b():
  """Jozefowicz et al. 2016 LSTM-2048-512: LSTMP, sampled softmax of 8192 candidates."""
  c = _lm1b(512, 2048, 1)
  c.model.update(projection=512, output="sampled", num_sampled=8192)
  c.optim.update(name="adagrad", learning_rate=0.2, clip_norm=1.0)
  return c


def lstm_8192_1024_lm1b():
  """Jozefowicz et al. 2016 2-layer LSTM-8192-1024, dropout 0.25."""
  c = _lm1b(1024, 8192, 2)
  c.model.update(projection=1024, output="sampled", num_sampled=8192, dropout=0.25)
  c.optim.update(name="adagrad", learning_rate=0.2, clip_norm=1.0)
  return c


def rnnme_lm1b():
  """Chelba et al. 2013 RNN-1024 + MaxEnt 9-gram (RNNME)."""
  c = _lm1b(1024, 1024, 1)
  c.model.update(kind="elman", maxent_order=9, maxent_hash_size=1 << 30)
  # MaxEnt: RNNME's per-token SGD rate 0.1 on a mean over 128 x 20 tokens, its L2 1e-6.
  c.optim.update(name="adagrad", learning_rate=0.1, clip_norm=1.0, maxent_l2=1e-6)
  c.optim.maxent_learning_rate = 0.1 * c.train.batch_size * c.train.seq_len
  return c


PRESETS = {
  f.__name__: f
  for f in (
    adaptive_small_lm1b,
    adaptive_large_lm1b,
    lstm_2048_512_lm1b,
    lstm_8192_1024_lm1b,
    rnnme_lm1b,
  )
}


def get_config(arg: str | None = None):
  """``PRESET`` or ``PRESET,tiny`` (see the module docstring)."""
  preset, tiny = parse_arg(arg, PRESETS)
  c = PRESETS[preset]()
  if not tiny:
    return c
  c = make_tiny(c)
  c.model.maxent_hash_size = min(c.model.maxent_hash_size, 1 << 16)
  c.train.eval_every_steps = None
  return c
