"""Plans a training job before it runs: ``python -m experiments.plan --config=FILE:PRESET --devices=N``.

Compiles the real train step for a mesh of N simulated CPU devices (shapes only,
nothing allocated) and prints parameters, memory per device from the compiled
executable, FLOPs per step and the projected time on named accelerators; exits
non-zero, naming what to shard, if the job does not fit one of them.
"""

import os

from absl import flags
from ml_collections import config_flags

from lm_jax import cli

_CONFIG = config_flags.DEFINE_config_file("config", None, "Training config.", lock_config=True)
_DEVICES = flags.DEFINE_integer("devices", 1, "Devices of the job's mesh (simulated on the CPU).")
_ACCEL = flags.DEFINE_list(
  "accelerator", ["nvidia-h100-sxm", "tpu-v5e"], "Accelerators to project the time on."
)
_VOCAB = flags.DEFINE_integer(
  "vocab_size",
  None,
  "Predictable vocabulary size; skips reading the corpus (word counts then follow Zipf's law).",
)
_TOKENS = flags.DEFINE_integer(
  "tokens",
  None,
  "With --vocab_size: the training stream's length (one epoch; the config's epochs apply). "
  "Else: a target number of training tokens, if more than the config's epochs give.",
)
flags.mark_flag_as_required("config")


def main(argv):
  del argv
  # Before jax is imported: the mesh is made of simulated CPU devices.
  os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={_DEVICES.value}"
  )
  os.environ.setdefault("JAX_PLATFORMS", "cpu")
  from lm_jax import plan  # Deferred: imports jax.

  print(plan.run(_CONFIG.value, _VOCAB.value, _TOKENS.value, _ACCEL.value))


if __name__ == "__main__":
  cli.run(main)
