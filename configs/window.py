"""The fixed-window neural language model (Bengio et al. 2003) on PTB.

Run::

  python -m experiments.train --config=configs/window.py:ptb --workdir=/tmp/window_ptb
  python -m experiments.train --config=configs/window.py:ptb,tiny --workdir=/tmp/window_tiny

Preset ``ptb``: 5 words of context (a 6-gram window), 256-dim embeddings, 512
tanh units, dropout 0.3, Adam halved on plateaus, 10 epochs (Mikolov et al.
2011 feed-forward NNLM: 140.2 test). Measured: test 131.19, valid 140.03, 30 min
on a 2-core CPU (experiments/results/window_ptb.json).
"""

from configs import base_config, make_tiny, parse_arg


def ptb():
  """5 words of context, 256-dim embeddings, 512 tanh units, dropout 0.3, Adam halved on plateaus."""
  c = base_config()
  c.model.update(kind="window", context=5, embed_dim=256, hidden_dim=512, num_layers=1, dropout=0.3)
  c.train.update(batch_size=64, seq_len=35, num_epochs=10, loss_normalizer="tokens")
  c.optim.update(
    name="adam",
    learning_rate=1e-3,
    clip_norm=1.0,
    plateau=dict(enabled=True, factor=0.5, patience=1, rtol=5e-3, cooldown=0, min_scale=0.0),
  )
  return c


PRESETS = {"ptb": ptb}


def get_config(arg: str | None = None):
  """``ptb`` or ``ptb,tiny``."""
  preset, tiny = parse_arg(arg, PRESETS)
  c = PRESETS[preset]()
  return make_tiny(c) if tiny else c
