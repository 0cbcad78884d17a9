"""Samples sentences from a trained run: ``python -m experiments.sample --workdir=DIR``.

Prints one line per sample: the model's log-probability of the sentence
(natural log, ``</s>`` included) and its text. Deterministic for a ``--seed``.
"""

from absl import app, flags

from lm_jax import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory written by experiments.train.")
_NUM = flags.DEFINE_integer("num_samples", 5, "Number of sentences.")
_TEMPERATURE = flags.DEFINE_float("temperature", 1.0, "Softmax temperature (>= 1e-3).")
_SEED = flags.DEFINE_integer("seed", 0, "PRNG seed.")
_TOP_K = flags.DEFINE_integer("top_k", None, "Sample among the k most likely ids only.")
_MAX_LEN = flags.DEFINE_integer("max_len", 100, "Stop a sentence after this many tokens.")
flags.mark_flag_as_required("workdir")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  from lm_jax import sampling  # Deferred: imports jax.

  samples = sampling.sample_from_workdir(
    _WORKDIR.value, _NUM.value, _TEMPERATURE.value, _SEED.value, _TOP_K.value, _MAX_LEN.value
  )
  for s in samples:
    print(f"{s.logprob:.3f}\t{s.text}{' ...' if s.truncated else ''}")


if __name__ == "__main__":
  cli.run(main)  # lm_jax errors exit with one line, no traceback.
