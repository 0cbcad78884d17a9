"""The main job: ``python -m experiments.lecture --workdir=DIR [--config=configs/lecture.py[:ptb]]``."""

import importlib.util

from absl import flags, logging
from ml_collections import config_flags

from lm_jax import cli, lecture
from lm_jax.errors import ConfigError

_CONFIG = config_flags.DEFINE_config_file("config", "configs/lecture.py", "Lecture config.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Output directory (one run directory per model).",
                               required=True)


def load_config(spec: str):
  """``path/to/file.py[:arg]`` -> the file's ``get_config(arg)``."""
  path, _, arg = spec.partition(":")
  module_spec = importlib.util.spec_from_file_location("_lm_jax_config", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg) if arg else module.get_config()


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # Progress lines come from lecture.run.
  config = _CONFIG.value
  neural = {}
  for name in config.models:
    if name not in config.neural:
      raise ConfigError(f"models names {name!r}, which is not in neural ({sorted(config.neural)}).")
    entry = config.neural[name]
    cfg = load_config(entry.config)
    for section, values in entry.overrides.items():
      unknown = set(values) - set(cfg[section])
      if unknown:
        raise ConfigError(f"neural.{name}.overrides.{section}: unknown keys {sorted(unknown)}; "
                          f"{entry.config} has {sorted(cfg[section])}.")
      cfg[section].update(values)
    neural[name] = cfg
  lecture.run(config, _WORKDIR.value, load_config("configs/ngram.py"), neural)


if __name__ == "__main__":
  cli.run(main)
