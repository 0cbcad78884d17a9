"""Every workdir describes itself: config, vocabulary, corpus checksums, versions, devices."""

from __future__ import annotations

import json
import os
import platform
import sys
from importlib import metadata

import tempfile

import ml_collections

from lm_jax.data.corpus import RawCorpus
from lm_jax.data.vocab import Vocab
from lm_jax.errors import WorkdirError

_PACKAGES = ("lm_jax", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy",
             "ml-collections", "absl-py")


def environment() -> dict:
  """Library versions, Python, devices and XLA flags of this process."""
  import jax  # Deferred: importing jax is slow and not every caller needs it.
  versions = {}
  for p in _PACKAGES:
    try:
      versions[p] = metadata.version(p)
    except metadata.PackageNotFoundError:
      versions[p] = None
  return {
      "python": sys.version.split()[0],
      "platform": platform.platform(),
      "versions": versions,
      "devices": [str(d) for d in jax.devices()],
      "backend": jax.default_backend(),
      "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
  }


def ensure_writable(workdir: str) -> str:
  """Creates ``workdir`` and proves a file can be written there, before any work is done."""
  path = os.path.abspath(workdir)
  try:
    os.makedirs(path, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path, prefix=".lm_jax-write-test-"):
      pass
  except OSError as e:
    raise WorkdirError(
        f"cannot write the run directory {path} ({e.strerror or e}: {e.filename or path}); "
        "choose a --workdir you can write to, or fix its permissions.") from None
  return path


def write_run_info(workdir: str, config: ml_collections.ConfigDict, vocab: Vocab,
                   corpus: RawCorpus) -> dict:
  """Writes ``config.json``, ``vocab.json`` and ``run.json`` into the workdir."""
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "config.json"), "w", encoding="utf-8") as f:
    f.write(config.to_json(indent=2, sort_keys=True))
  vocab.save(os.path.join(workdir, "vocab.json"))
  info = {
      "vocab_hash": vocab.hash,
      "vocab_size": vocab.num_predictable,
      "corpus": corpus.describe(),
      "environment": environment(),
      "argv": sys.argv,
  }
  with open(os.path.join(workdir, "run.json"), "w", encoding="utf-8") as f:
    json.dump(info, f, indent=2)
  return info
