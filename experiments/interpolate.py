"""Interpolates runs linearly: ``python -m experiments.interpolate DIR DIR [...] --workdir=OUT``."""

import json
import os

from absl import flags

from lm_jax import cli, interpolate
from lm_jax.metric_writer import MetricWriter

_WORKDIR = flags.DEFINE_string("workdir", None, "Where to write metrics.jsonl of the mixture.")


def main(argv):
  res = interpolate.interpolate(argv[1:])
  names = [os.path.basename(os.path.normpath(d)) for d in argv[1:]]
  print("| model | weight | valid ppl | test ppl |\n| --- | --- | --- | --- |")
  for i, n in enumerate(names):
    print(f"| {n} | {res['weights'][i]:.3f} | {res['valid_single'][i]:.2f} | {res['test_single'][i]:.2f} |")
  print(f"| mixture | 1 | {res['valid']['perplexity']:.2f} | {res['test']['perplexity']:.2f} |")
  if _WORKDIR.value:
    w = MetricWriter(_WORKDIR.value, fresh=True)
    w.write({"event": "interpolation", "workdirs": res["workdirs"], "weights": res["weights"]})
    for split in ("valid", "test"):
      w.write(res[split])
    with open(os.path.join(_WORKDIR.value, "interpolation.json"), "w") as f:
      json.dump(res, f, indent=2)


if __name__ == "__main__":
  cli.run(main)
