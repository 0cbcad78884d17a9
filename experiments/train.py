"""Trains a neural language model: ``python -m experiments.train --config=FILE:PRESET --workdir=DIR``.

``--config.train.num_epochs=3`` style overrides are checked against the config's
keys (unknown keys are rejected). Rerunning with the same ``--workdir`` resumes
from its latest checkpoint.
"""

from absl import app, flags, logging
from ml_collections import config_flags

from lm_jax import cli

_CONFIG = config_flags.DEFINE_config_file(
  "config",
  None,
  "Config file and preset, e.g. configs/rnn.py:lstm_small_ptb[,tiny].",
  lock_config=True,
)
_WORKDIR = flags.DEFINE_string(
  "workdir", None, "Run directory: config, vocab, metrics, checkpoints."
)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.INFO)
  from lm_jax import train  # Deferred: a refused flag or config costs no jax start-up.

  train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
  cli.run(main)  # lm_jax errors exit with one line, no traceback.
