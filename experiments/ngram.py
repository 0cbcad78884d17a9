"""Estimates and evaluates an n-gram LM: ``python -m experiments.ngram --config=configs/ngram.py --workdir=DIR``."""

from absl import flags
from ml_collections import config_flags

from lm_jax import cli
from lm_jax.ngram import run

_CONFIG = config_flags.DEFINE_config_file(
  "config", "configs/ngram.py", "N-gram config file.", lock_config=True
)
_WORKDIR = flags.DEFINE_string(
  "workdir", None, "Directory for config.json, metrics.jsonl, ...", required=True
)


def main(argv):
  del argv
  run.run(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
  cli.run(main)
