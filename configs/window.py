"""The fixed-window neural language model (Bengio et al. 2003) on PTB.

Run::

  python -m experiments.train --config=configs/window.py:ptb --workdir=/tmp/window_ptb
  python -m experiments.train --config=configs/window.py:ptb,tiny --workdir=/tmp/window_tiny

Preset ``ptb``: 4 words of context (a 5-gram window). Not yet measured.
"""

from configs import base_config, make_tiny, parse_arg


def ptb():
  c = base_config()
  c.model.update(kind="window", context=4, embed_dim=128, hidden_dim=512, num_layers=1,
                 dropout=0.3)
  c.train.update(batch_size=64, seq_len=35, num_epochs=10, loss_normalizer="tokens")
  c.optim.update(name="adam", learning_rate=1e-3, clip_norm=1.0)
  return c


PRESETS = {"ptb": ptb}


def get_config(arg: str | None = None):
  """``ptb`` or ``ptb,tiny``."""
  preset, tiny = parse_arg(arg, PRESETS)
  c = PRESETS[preset]()
  return make_tiny(c) if tiny else c
