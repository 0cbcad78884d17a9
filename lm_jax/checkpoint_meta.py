"""What a checkpoint must agree on with the run that restores it (``meta``), and the diff.

``run_meta`` records the config (minus the keys a resumed run may change), the
vocabulary hash and size, every parameter's shape and the corpus checksums;
``check_meta`` refuses a checkpoint of another model, config or vocabulary with a
one-line diff instead of loading part of it (orbax #2972).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from lm_jax.data.vocab import Vocab
from lm_jax.errors import CheckpointError

# Config keys that may change between a run and its resumption: they affect
# logging, storage or extra outputs, not the trained numbers.  (eval.batch_size
# is not here: it changes the per-epoch validation loss that the plateau
# schedule reacts to; data.dir may move, but the corpus checksums must match.)
RESUMABLE_KEYS = frozenset(
  {
    "train.log_every_steps",
    "train.checkpoint_every_steps",
    "train.keep_checkpoints",
    "eval.dump_tokens",
    "data.dir",
    "data.download",
    "mesh.model",  # where the numbers live, not what they are: resume on another mesh
  }
)


def flat_config(config: dict) -> dict[str, Any]:
  """``{"model.hidden_dim": 200, ...}`` with JSON values, minus the resumable keys."""
  out = {}

  def walk(prefix: str, d: dict) -> None:
    for k, v in d.items():
      key = f"{prefix}{k}"
      if isinstance(v, dict):
        walk(key + ".", v)
      elif key not in RESUMABLE_KEYS:
        out[key] = v

  walk("", config)
  return json.loads(json.dumps(out, default=str))  # Tuples become lists, as they come back.


def param_shapes(params) -> dict[str, str]:
  """``{"layers/0/W_h": "float32[200,200]", ...}``."""
  import jax  # Deferred: n-gram runs read flat_config without starting jax.

  leaves = jax.tree_util.tree_flatten_with_path(params)[0]
  return {
    "/".join(
      str(getattr(k, "key", getattr(k, "idx", k))) for k in path
    ): f"{np.dtype(x.dtype).name}[{','.join(map(str, x.shape))}]"
    for path, x in leaves
  }


def run_meta(config: dict, vocab: Vocab, params, corpus_checksums: dict | None = None) -> dict:
  """What a checkpoint must agree on with the run that restores it.

  ``corpus_checksums`` (the training run's) are compared when both sides have
  them: the same vocabulary can come from a different text.
  """
  meta = {
    "config": flat_config(config),
    "vocab_hash": vocab.hash,
    "vocab_size": vocab.size,
    "params": param_shapes(params),
  }
  if corpus_checksums is not None:
    meta["corpus_checksums"] = dict(corpus_checksums)
  return meta


def diff_meta(saved: dict, current: dict) -> list[str]:
  """One line per difference: ``key: <checkpoint> (checkpoint) != <this run> (this run)``."""
  lines = []
  for section in ("vocab_hash", "vocab_size", "corpus_checksums"):
    if section == "corpus_checksums" and (section not in saved or section not in current):
      continue  # Sampling restores without reading the corpus.
    if saved.get(section) != current.get(section):
      lines.append(
        f"{section}: {saved.get(section)!r} (checkpoint) != {current.get(section)!r} (this run)"
      )
  for section in ("config", "params"):
    a, b = saved.get(section, {}), current.get(section, {})
    for k in sorted(set(a) | set(b)):
      if k not in a and b.get(k) is None:
        continue  # An optional field added since the checkpoint, left unset: nothing changed.
      if a.get(k, "<absent>") != b.get(k, "<absent>"):
        lines.append(
          f"{section} {k}: {a.get(k, '<absent>')!r} (checkpoint) != "
          f"{b.get(k, '<absent>')!r} (this run)"
        )
  return lines


def check_meta(saved: dict, meta: dict, step: int, directory: str) -> None:
  diffs = diff_meta(saved, meta)
  if diffs:
    raise CheckpointError(
      f"the checkpoint at step {step} in {directory} was written by a different run; "
      "refusing a partial or mismatched restore. Differences: "
      + "; ".join(diffs)
      + ". Use a fresh --workdir for a new configuration, or restore with the original config."
    )
