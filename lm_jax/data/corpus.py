"""Corpus readers, the registry of public corpora, and the embedded default corpus.

A corpus is three splits of sentences (token lists).  Word corpora have one
sentence per line, tokens separated by whitespace.  Character corpora read
each line as a sentence of characters; its newline becomes ``</s>``, so the
scored tokens are exactly the characters of the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pathlib
import shutil
import sys
import tempfile
import urllib.request

from lm_jax.data.registry import REGISTRY, CorpusSpec, RemoteFile
from lm_jax.errors import CorpusError

__all__ = ["REGISTRY", "CorpusSpec", "RemoteFile"]  # Part of this module's interface.

SPLITS = ("train", "valid", "test")
DATA_DIR_ENV = "LM_JAX_DATA_DIR"
EMBEDDED = "pydoc"


@dataclasses.dataclass(frozen=True)
class RawCorpus:
  """Three splits of sentences plus where they came from."""

  name: str
  level: str
  splits: dict[str, list[list[str]]]
  checksums: dict[str, str]  # file or source -> sha256
  source: str

  def describe(self) -> dict:
    return describe(self, {k: len(v) for k, v in self.splits.items()})


def describe(corpus, sentences: dict[str, int]) -> dict:
  """What ``run.json`` records of a corpus (any object with name, level, source, checksums)."""
  return {
    "name": corpus.name,
    "level": corpus.level,
    "source": corpus.source,
    "checksums": corpus.checksums,
    "sentences": sentences,
  }


def sha256_file(path: str | os.PathLike) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      h.update(block)
  return h.hexdigest()


def read_text(path: str | os.PathLike) -> str:
  """Reads a UTF-8 text file with errors that name the file and the fix."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise CorpusError(f"corpus file {path} does not exist; check data.dir or {DATA_DIR_ENV}.")
  data = path.read_bytes()
  try:
    text = data.decode("utf-8")
  except UnicodeDecodeError as e:
    raise CorpusError(
      f"{path} is not UTF-8 (byte {e.start}: {data[e.start : e.start + 4]!r}); "
      "convert it, e.g. `iconv -f latin1 -t utf-8`."
    ) from None
  if not text.strip():
    raise CorpusError(f"{path} is empty; a corpus file needs at least one line of text.")
  return text


def split_sentences(text: str, level: str) -> list[list[str]]:
  """One sentence per line; a last line without a newline is still a sentence."""
  # Lines end at "\n" only (as in KenLM and SRILM); a final newline ends the last line.
  lines = text.split("\n")
  if lines and lines[-1] == "":
    lines.pop()
  if level == "char":
    return [list(line) for line in lines]
  return [line.split() for line in lines]


def resolve_data_dir(data_dir: str | None) -> pathlib.Path | None:
  d = data_dir or os.environ.get(DATA_DIR_ENV)
  return pathlib.Path(d).expanduser() if d else None


def cache_dir() -> pathlib.Path:
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return pathlib.Path(base) / "lm_jax"


def _download(f: RemoteFile, dest: pathlib.Path) -> None:
  dest.parent.mkdir(parents=True, exist_ok=True)
  print(f"lm_jax: downloading {f.url} -> {dest}", file=sys.stderr)
  try:
    with (
      urllib.request.urlopen(f.url, timeout=60) as r,
      tempfile.NamedTemporaryFile(dir=dest.parent, delete=False) as tmp,
    ):
      shutil.copyfileobj(r, tmp)
  except OSError as e:
    raise CorpusError(
      f"could not download {f.url} ({e}); download it by hand into {dest.parent}, "
      f"or set {DATA_DIR_ENV} / data.dir to a directory that holds {f.name}."
    ) from None
  got = sha256_file(tmp.name)
  if got != f.sha256:
    os.unlink(tmp.name)
    raise CorpusError(
      f"downloaded {f.url} but its sha256 is {got}, expected {f.sha256}; "
      "the file at that address changed or the transfer broke: retry."
    )
  os.replace(tmp.name, dest)


def locate_file(
  spec: CorpusSpec, f: RemoteFile, data_dir: str | None, download: bool
) -> pathlib.Path:
  """Finds (or downloads) one file of a registered corpus and verifies its checksum."""
  root = resolve_data_dir(data_dir)
  candidates = [root / spec.name / f.name, root / f.name] if root else []
  candidates.append(cache_dir() / spec.name / f.name)
  path = next((p for p in candidates if p.is_file()), None)
  if path is None:
    if not download:
      where = " or ".join(str(p) for p in candidates)
      raise CorpusError(
        f"corpus {spec.name!r}: {f.name} not found (looked in {where}). Put the file there, "
        f"set {DATA_DIR_ENV} or data.dir to its directory, or allow data.download "
        f"to fetch it from {f.url}."
      )
    path = cache_dir() / spec.name / f.name
    _download(f, path)
  got = sha256_file(path)
  if got != f.sha256:
    raise CorpusError(
      f"{path} has sha256 {got}, but {spec.name}'s {f.name} is {f.sha256}; the file is "
      "corrupt or a different version: delete it and download it again from " + f.url
    )
  return path


def load_registered(name: str, data_dir: str | None = None, download: bool = True) -> RawCorpus:
  if name == EMBEDDED:
    from lm_jax.data import embedded  # Local import: builds text only when asked.

    return embedded.load()
  if name not in REGISTRY:
    raise CorpusError(
      f"unknown corpus {name!r}; registered corpora: "
      f"{', '.join([*REGISTRY, EMBEDDED])}, or leave data.name empty and set data.dir."
    )
  spec = REGISTRY[name]
  if name == "lm1b":
    raise CorpusError("lm1b is read shard by shard: load it with lm_jax.data.pipeline.load_data.")
  paths = [locate_file(spec, f, data_dir, download) for f in spec.files]
  checksums = {f.name: f.sha256 for f in spec.files}
  if spec.fractions is None:
    splits = {s: split_sentences(read_text(p), spec.level) for s, p in zip(SPLITS, paths)}
  else:
    splits = split_contiguous(split_sentences(read_text(paths[0]), spec.level), spec.fractions)
  return RawCorpus(name, spec.level, splits, checksums, source=str(paths[0].parent))


def split_contiguous(
  sentences: list[list[str]], fractions: tuple[float, float]
) -> dict[str, list[list[str]]]:
  """Splits a sentence list into contiguous train/valid/test by token share."""
  sizes = [len(s) + 1 for s in sentences]  # +1: the </s> (newline) of each line.
  total, acc, cut = sum(sizes), 0, []
  targets = [fractions[0] * total, (fractions[0] + fractions[1]) * total]
  for i, n in enumerate(sizes):
    while len(cut) < 2 and acc >= targets[len(cut)]:
      cut.append(i)
    acc += n
  cut += [len(sentences)] * (2 - len(cut))
  return {
    "train": sentences[: cut[0]],
    "valid": sentences[cut[0] : cut[1]],
    "test": sentences[cut[1] :],
  }


_PTB_NAMES = {s: f"ptb.{s}.txt" for s in SPLITS}


def directory_files(root: pathlib.Path) -> dict[str, pathlib.Path]:
  """``train.txt``/``valid.txt``/``test.txt`` (or PTB's ``ptb.*.txt``) of a corpus directory."""
  if not root.is_dir():
    raise CorpusError(
      f"data.dir {root} is not a directory; point it at a folder with train.txt, valid.txt, test.txt."
    )
  paths = {}
  for s in SPLITS:
    for cand in (root / f"{s}.txt", root / _PTB_NAMES[s]):
      if cand.is_file():
        paths[s] = cand
        break
    else:
      raise CorpusError(
        f"{root} has no {s}.txt (nor {_PTB_NAMES[s]}); a word corpus directory "
        "needs train.txt, valid.txt and test.txt, one sentence per line."
      )
  return paths


def load_directory(data_dir: str, level: str = "word") -> RawCorpus:
  """Reads ``train.txt``/``valid.txt``/``test.txt`` (or PTB's ``ptb.*.txt``) from a directory."""
  root = pathlib.Path(data_dir).expanduser()
  paths = directory_files(root)
  splits = {s: split_sentences(read_text(p), level) for s, p in paths.items()}
  return RawCorpus(
    root.name, level, splits, {p.name: sha256_file(p) for p in paths.values()}, str(root)
  )


def load_file(path: str, level: str = "char", fractions=(0.9, 0.05)) -> RawCorpus:
  """Reads one raw text file and splits it contiguously into train/valid/test."""
  p = pathlib.Path(path).expanduser()
  splits = split_contiguous(split_sentences(read_text(p), level), fractions)
  return RawCorpus(p.stem, level, splits, {p.name: sha256_file(p)}, str(p))


def check_source(name: str | None, data_dir: str | None, file: str | None) -> None:
  """CorpusError for a data section that names no corpus, an unknown one, or two at once."""
  if name and (file or (name == EMBEDDED and data_dir)):
    given = f"data.file={file!r}" if file else f"data.dir={data_dir!r}"
    raise CorpusError(
      f"data.name={name!r} and {given} are both set, and the name would win; to "
      "read your own corpus, clear the name: --config.data.name="
    )
  if name and name != EMBEDDED and name not in REGISTRY:
    raise CorpusError(
      f"unknown corpus {name!r}; registered corpora: "
      f"{', '.join([*REGISTRY, EMBEDDED])}, or leave data.name empty and set data.dir."
    )
  if not (name or file or data_dir):
    raise CorpusError(
      "no corpus given: set data.name (ptb, tinyshakespeare, lm1b, pydoc), data.dir or data.file."
    )


def load(
  name: str | None = None,
  data_dir: str | None = None,
  file: str | None = None,
  level: str | None = None,
  download: bool = True,
) -> RawCorpus:
  """Loads a corpus by registered name, by directory, or from one raw text file."""
  check_source(name, data_dir, file)
  if name:
    raw = load_registered(name, data_dir, download)
    if level and level != raw.level:
      raw = dataclasses.replace(
        raw,
        level=level,
        splits={s: _relevel(sents, raw.level, level) for s, sents in raw.splits.items()},
      )
    return raw
  if file:
    return load_file(file, level or "char")
  return load_directory(data_dir, level or "word")  # check_source: one of the three is set.


def _relevel(sents: list[list[str]], src: str, dst: str) -> list[list[str]]:
  if src == "word" and dst == "char":
    return [list(" ".join(s)) for s in sents]
  return ["".join(s).split() for s in sents]
