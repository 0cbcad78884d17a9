"""The main job: ``python -m experiments.lecture --workdir=DIR [--config=configs/lecture.py[:ptb]]``."""

from absl import flags, logging
from ml_collections import config_flags

from lm_jax import cli, lecture

_CONFIG = config_flags.DEFINE_config_file(
  "config", "configs/lecture.py", "Lecture config.", lock_config=True
)
_WORKDIR = flags.DEFINE_string(
  "workdir", None, "Output directory (one run directory per model).", required=True
)


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # Progress lines come from lecture.run.
  lecture.run(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
  cli.run(main)
