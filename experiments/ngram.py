"""Estimates and evaluates an n-gram LM: ``python -m experiments.ngram --config=configs/ngram.py --workdir=DIR``."""

from absl import app, flags
from ml_collections import config_flags

from lm_jax.errors import LMJaxError
from lm_jax.ngram import run

_CONFIG = config_flags.DEFINE_config_file("config", "configs/ngram.py", "N-gram config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for config.json, metrics.jsonl, ...", required=True)


def main(argv):
  del argv
  try:
    run.run(_CONFIG.value, _WORKDIR.value)
  except LMJaxError as e:
    raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
  app.run(main)
