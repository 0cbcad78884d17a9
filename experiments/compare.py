"""Compares run directories: ``python -m experiments.compare DIR [DIR ...] [--plot=curves.png]``."""

from absl import flags

from lm_jax import cli, compare

_PLOT = flags.DEFINE_string("plot", None, "Write a PNG of the learning curves to this path.")
_ALLOW = flags.DEFINE_bool(
  "allow_mismatch", False, "Compare runs even if their vocabulary or corpus checksums differ."
)
_OUT = flags.DEFINE_string("output", None, "Also write the markdown table to this file.")


def main(argv):
  if len(argv) < 2:
    raise SystemExit("usage: python -m experiments.compare DIR [DIR ...]")
  report = compare.compare(argv[1:], allow_mismatch=_ALLOW.value, plot_path=_PLOT.value or None)
  print(report)
  if _OUT.value:
    compare.write_report(_OUT.value, report)


if __name__ == "__main__":
  cli.run(main)
