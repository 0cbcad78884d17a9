"""Interpolates runs linearly: ``python -m experiments.interpolate DIR DIR [...] --workdir=OUT``."""

import os

from absl import flags

from lm_jax import cli, interpolate

_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory for the mixture (config, metrics).")


def main(argv):
  res = interpolate.run(argv[1:], _WORKDIR.value)
  names = [os.path.basename(os.path.normpath(d)) for d in argv[1:]]
  print("| model | weight | valid ppl | test ppl |\n| --- | --- | --- | --- |")
  for i, n in enumerate(names):
    print(
      f"| {n} | {res['weights'][i]:.3f} | {res['valid_single'][i]:.2f} | {res['test_single'][i]:.2f} |"
    )
  print(f"| mixture | 1 | {res['valid']['perplexity']:.2f} | {res['test']['perplexity']:.2f} |")


if __name__ == "__main__":
  cli.run(main)
