"""The run directory: the one writer and the one reader of a workdir's files.

A workdir holds one run of one kind (``neural``, ``ngram``, ``lecture``,
``interpolation``), recorded in ``run.json`` when the directory is created.
``RunDir.create`` refuses an empty path, a non-empty folder that is not a run
directory, and a run of another kind; it takes the directory's lock
(``.lock``: host, pid) so a second process on the same workdir is refused at
once, and a lock left by a killed process on this host is recognised as stale.
Files are written atomically (temporary file + rename) and only inside the
directory; readers (``RunDir.open``) give one-line errors for missing or
truncated files and tolerate a ``metrics.jsonl`` line torn by a kill.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import sys
from typing import Any

from absl import logging

from lm_jax.environment import environment
from lm_jax.errors import WorkdirError
from lm_jax.lock import LOCK, WorkdirLock
from lm_jax.metric_writer import MetricWriter, final_records, parse_records

KINDS = ("neural", "ngram", "lecture", "interpolation")
# Every file lm_jax may write into a run directory; nothing else is ever replaced or removed.
OUTPUTS = (
  "config.json",
  "vocab.json",
  "run.json",
  "metrics.jsonl",
  "samples.txt",
  "model.arpa",
  "valid.tokens.tsv",
  "test.tokens.tsv",
  "results.md",
  "curves.png",
  "checksums.json",
)
_A = {
  "neural": "a neural",
  "ngram": "an n-gram",
  "lecture": "a lecture",
  "interpolation": "an interpolation",
}
_HINTS = {
  "ngram": "python -m experiments.ngram",
  "neural": "python -m experiments.train",
  "lecture": "python -m experiments.lecture",
  "interpolation": "python -m experiments.interpolate",
}


def _kind_of(path: str) -> str | None:
  """The kind recorded in ``run.json``; None for a folder that holds no run."""
  try:
    with open(os.path.join(path, "run.json"), encoding="utf-8") as f:
      kind = json.load(f).get("kind")
  except FileNotFoundError:
    return None
  except (OSError, ValueError, AttributeError) as e:
    raise WorkdirError(
      f"{path}/run.json is unreadable ({e}); the run directory is damaged. Use another --workdir."
    ) from None
  if kind not in KINDS:
    raise WorkdirError(
      f"{path}/run.json records kind {kind!r}, not one of {KINDS}; use another --workdir."
    )
  return kind


class RunDir:
  """One workdir: its kind, its lock, its files."""

  def __init__(self, path: str, kind: str, writer: bool):
    self.path, self.kind, self.writer = path, kind, writer
    self._lock: WorkdirLock | None = None

  # ------------------------------------------------------------------ opening
  @classmethod
  def create(cls, workdir: str | None, kind: str, *, primary: bool = True) -> RunDir:
    """Opens ``workdir`` for writing a ``kind`` run (new or resumed) and takes its lock.

    ``primary=False`` (the non-zero processes of a multi-host job) writes nothing.
    """
    if kind not in KINDS:
      raise ValueError(f"unknown run kind {kind!r}")
    if not workdir or not str(workdir).strip():
      raise WorkdirError(
        "--workdir is empty (an unset shell variable?); give the run its own "
        "directory, e.g. --workdir=/tmp/my_run."
      )
    path = os.path.abspath(os.path.expanduser(str(workdir)))
    if os.path.exists(path) and not os.path.isdir(path):
      raise WorkdirError(f"--workdir {path} is a file, not a directory; choose a directory.")
    run = cls(path, kind, writer=primary)
    if not primary:
      return run
    try:
      os.makedirs(path, exist_ok=True)
      probe = os.path.join(path, f".write-test-{os.getpid()}")
      with open(probe, "w", encoding="utf-8"):
        pass
      os.remove(probe)
    except OSError as e:
      raise WorkdirError(
        f"cannot write the run directory {path} ({e.strerror or e}); choose a "
        "--workdir you can write to, or fix its permissions."
      ) from None
    found = _kind_of(path)
    if found is None:
      foreign = sorted(n for n in os.listdir(path) if n != LOCK)
      if foreign:
        raise WorkdirError(
          f"--workdir {path} is not empty ({', '.join(foreign[:4])}{' ...' if len(foreign) > 4 else ''}) "
          "and holds no lm_jax run; give the run a new or empty directory."
        )
    elif found != kind:
      raise WorkdirError(
        f"{path} holds {_A[found]} run ({_HINTS[found]}); {_A[kind]} run there would overwrite "
        "its files. Give this run its own --workdir."
      )
    run._lock = WorkdirLock.acquire(path)
    if found is None:
      run.write_json("run.json", {"kind": kind})
    return run

  @classmethod
  def open(
    cls, workdir: str, kind: str | tuple[str, ...] | None = None, what: str = "this command"
  ) -> RunDir:
    """A finished (or running) run directory, for reading; ``kind`` restricts what is accepted."""
    path = os.path.abspath(os.path.expanduser(str(workdir or "")))
    if not workdir or not os.path.isdir(path):
      raise WorkdirError(f"{workdir!r} is not a directory; give the --workdir of an lm_jax run.")
    found = _kind_of(path)
    if found is None:
      raise WorkdirError(
        f"{path} is not an lm_jax run directory (no run.json); give a directory "
        "written by experiments.train, .ngram, .lecture or .interpolate."
      )
    kinds = (kind,) if isinstance(kind, str) else kind
    if kinds and found not in kinds:
      raise WorkdirError(
        f"{path} holds {_A[found]} run; {what} needs {' or '.join(_A[k] for k in kinds)} run."
      )
    return cls(path, found, writer=False)

  def close(self) -> None:
    """Releases the lock (idempotent)."""
    if self._lock is not None:
      self._lock.release()
      self._lock = None

  def __enter__(self) -> RunDir:
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  # ------------------------------------------------------------------ writing
  def file(self, name: str) -> str:
    return os.path.join(self.path, name)

  def write_text(self, name: str, text: str) -> str:
    """Writes ``name`` atomically (a reader never sees half a file); returns its path."""
    path = self.file(name)
    if not self.writer:
      return path
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
      with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
      os.replace(tmp, path)
    finally:
      if os.path.exists(tmp):
        os.remove(tmp)
    return path

  @contextlib.contextmanager
  def writing(self, name: str):
    """A temporary path to write ``name`` through (a big file, by another writer); it is
    renamed into place only when the block ends without an error, else removed."""
    path = self.file(name)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
      yield tmp
      if self.writer:
        os.replace(tmp, path)
    finally:
      if os.path.exists(tmp):
        os.remove(tmp)

  def write_json(self, name: str, obj: Any) -> str:
    return self.write_text(name, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")

  def remove_outputs(self, *names: str) -> None:
    """Removes earlier outputs of this run (named files inside the directory only)."""
    for name in names:
      if name not in OUTPUTS:
        raise ValueError(f"{name} is not a run-directory output")
      if self.writer and os.path.isfile(self.file(name)):
        os.remove(self.file(name))

  def write_start(self, config: dict, vocab=None, corpus=None, **extra) -> dict:
    """``config.json``, ``vocab.json`` and ``run.json`` (kind, vocabulary hash, corpus, versions)."""
    self.write_json("config.json", config)
    info: dict[str, Any] = {"kind": self.kind}
    if vocab is not None:
      self.write_text("vocab.json", vocab.to_json())
      info.update(vocab_hash=vocab.hash, vocab_size=vocab.num_predictable)
    if corpus is not None:
      info["corpus"] = corpus.describe()
    info.update(extra, environment=environment(), argv=sys.argv)
    self.write_json("run.json", info)
    return info

  def metrics(
    self, fresh: bool = False, tensorboard: bool = False, purge_step: int | None = None
  ) -> MetricWriter:
    """The ``metrics.jsonl`` writer (and TensorBoard event files with ``tensorboard``)."""
    return MetricWriter(
      self.path, fresh=fresh, enabled=self.writer, tensorboard=tensorboard, purge_step=purge_step
    )

  def checkpointer(self, keep: int):
    """The run's checkpoints (verified on opening; see ``lm_jax.checkpoint``)."""
    from lm_jax.checkpoint import Checkpointer  # Deferred: orbax is slow to import.

    return Checkpointer(self.path, keep, primary=self.writer)

  def restore_params(self, abstract_params, meta: dict):
    """``(step, params)`` of the newest intact checkpoint: parameters only, no lock needed."""
    from lm_jax.checkpoint import restore_params  # Deferred, as above.

    return restore_params(self.path, abstract_params, meta)

  # ------------------------------------------------------------------ reading
  def _read(self, name: str) -> str:
    try:
      with open(self.file(name), encoding="utf-8") as f:
        return f.read()
    except FileNotFoundError:
      raise WorkdirError(
        f"{self.path} has no {name}; {_A[self.kind]} run did not get that far "
        f"(rerun {_HINTS[self.kind]} with this --workdir)."
      ) from None
    except (OSError, UnicodeDecodeError) as e:
      raise WorkdirError(f"cannot read {self.file(name)} ({e}).") from None

  def read_json(self, name: str) -> Any:
    text = self._read(name)
    try:
      return json.loads(text)
    except ValueError as e:
      raise WorkdirError(
        f"{self.file(name)} is truncated or corrupt ({e}); the run directory is "
        f"damaged: rerun {_HINTS[self.kind]} into a new --workdir."
      ) from None

  def read_config(self) -> dict:
    config = self.read_json("config.json")
    if not isinstance(config, dict):
      raise WorkdirError(f"{self.file('config.json')} does not hold a config object.")
    return config

  def read_info(self) -> dict:
    return self.read_json("run.json")

  def read_vocab(self):
    from lm_jax.data.vocab import Vocab  # Deferred: readers of metrics need no vocabulary.

    return Vocab.load(self.file("vocab.json"))

  def read_metrics(self) -> list[dict]:
    """Every record; a line torn by a kill is skipped with a warning, as resuming does."""
    if not os.path.isfile(self.file("metrics.jsonl")):
      return []
    records, torn = parse_records(self._read("metrics.jsonl"))
    if torn:
      logging.warning(
        "%s: skipped %d unreadable line(s) (%s), e.g. torn by a kill",
        self.file("metrics.jsonl"),
        len(torn),
        ", ".join(map(str, torn[:5])),
      )
    return records

  def final_records(self) -> dict[str, dict]:
    """The last evaluation record of each split."""
    return final_records(self.read_metrics())

  def read_token_dump(self, split: str):
    """``(tokens, ln_p, oov)`` of ``{split}.tokens.tsv``, checked against the run's eval record."""
    import numpy as np  # Deferred, as above.

    name = f"{split}.tokens.tsv"
    if not os.path.isfile(self.file(name)):
      key = "eval.dump_tokens" if self.kind == "neural" else "dump_tokens"
      raise WorkdirError(
        f"{self.path} has no per-token dump {name}; rerun that model with "
        f"--config.{key}=True to write it."
      )
    try:
      with open(self.file(name), encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
      tokens = [r["token"] for r in rows]
      logp = np.array([float(r["ln_prob"]) for r in rows])
      oov = np.array([r["oov"] == "1" for r in rows])
    except (KeyError, ValueError, TypeError, csv.Error, UnicodeDecodeError) as e:
      raise WorkdirError(
        f"{self.file(name)} is truncated or corrupt ({type(e).__name__}: {e}); "
        f"rerun {_HINTS[self.kind]} to write it again."
      ) from None
    expected = self.final_records().get(split, {}).get("tokens")
    if expected is not None and expected != len(tokens):
      raise WorkdirError(
        f"{self.file(name)} has {len(tokens)} rows but the run scored {expected} "
        f"{split} tokens; the dump is truncated: rerun {_HINTS[self.kind]}."
      )
    return tokens, logp, oov
