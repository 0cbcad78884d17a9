import hashlib

import pytest

from lm_jax.data import corpus, embedded
from lm_jax.errors import CorpusError
from tests.conftest import write_corpus


def test_directory_reader_and_last_line_without_newline(tmp_path):
  root = write_corpus(tmp_path / "c", "a b\nb c", valid="a\n\nb\n")
  raw = corpus.load(data_dir=str(root))
  assert raw.splits["train"] == [["a", "b"], ["b", "c"]]  # No newline at EOF: still a sentence.
  assert raw.splits["valid"] == [["a"], [], ["b"]]  # Empty line: a sentence of only </s>.
  assert set(raw.checksums) == {"train.txt", "valid.txt", "test.txt"}


def test_ptb_file_names_are_accepted(tmp_path):
  for s in corpus.SPLITS:
    (tmp_path / f"ptb.{s}.txt").write_text("x y\n")
  assert corpus.load_directory(str(tmp_path)).splits["test"] == [["x", "y"]]


def test_missing_split_names_the_files(tmp_path):
  (tmp_path / "train.txt").write_text("a\n")
  with pytest.raises(CorpusError, match="no valid.txt"):
    corpus.load_directory(str(tmp_path))


def test_empty_and_non_utf8_files(tmp_path):
  write_corpus(tmp_path / "e", "  \n")
  with pytest.raises(CorpusError, match="empty"):
    corpus.load(data_dir=str(tmp_path / "e"))
  root = write_corpus(tmp_path / "l", "x\n")
  (root / "train.txt").write_bytes("caf\xe9\n".encode("latin-1"))
  with pytest.raises(CorpusError, match="not UTF-8.*iconv"):
    corpus.load(data_dir=str(root))


def test_registered_corpus_missing_says_where_and_how(tmp_path, monkeypatch):
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
  with pytest.raises(CorpusError) as e:
    corpus.load("ptb", data_dir=str(tmp_path), download=False)
  msg = str(e.value)
  assert "ptb.train.txt" in msg and corpus.DATA_DIR_ENV in msg and "https://" in msg


def test_checksum_mismatch_is_refused(tmp_path, monkeypatch):
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
  (tmp_path / "ptb").mkdir()
  for s in corpus.SPLITS:
    (tmp_path / "ptb" / f"ptb.{s}.txt").write_text("not the real ptb\n")
  with pytest.raises(CorpusError, match="sha256.*download it again"):
    corpus.load("ptb", data_dir=str(tmp_path), download=False)


def test_unknown_corpus_lists_the_registry():
  with pytest.raises(CorpusError, match="ptb, tinyshakespeare, lm1b, pydoc"):
    corpus.load("wikitext")


def test_contiguous_split_of_a_char_file(tmp_path):
  p = tmp_path / "t.txt"
  p.write_text("".join(f"line {i}\n" for i in range(100)))
  raw = corpus.load(file=str(p), level="char")
  n = {s: sum(len(x) + 1 for x in raw.splits[s]) for s in corpus.SPLITS}
  assert sum(n.values()) == len(p.read_text())  # Every character (newline = </s>) lands once.
  assert 0.88 < n["train"] / sum(n.values()) < 0.92
  flat = [s for sp in corpus.SPLITS for s in raw.splits[sp]]
  assert ["".join(s) for s in flat] == p.read_text().splitlines()  # Order kept, contiguous.


def test_embedded_corpus_is_real_deterministic_text():
  a, b = embedded.load(), embedded.load()
  assert a.splits == b.splits and a.checksums == b.checksums
  train = a.splits["train"]
  assert sum(map(len, train)) > 30_000
  assert "python" in {w for s in train for w in s}
  paras = embedded.paragraphs()
  assert len(paras) == len(set(paras))  # No paragraph repeated across splits.
  digest = hashlib.sha256("\n".join(paras).encode()).hexdigest()
  assert a.checksums["pydoc_data.topics"] == digest


def test_tinyshakespeare_split_covers_every_character(ptb_dir):
  raw = corpus.load("tinyshakespeare", data_dir=str(ptb_dir), download=False)
  chars = sum(len(s) + 1 for sp in corpus.SPLITS for s in raw.splits[sp])
  assert chars == 1_115_394  # The file's length (data README); newline = </s>.


def _fake_registry(monkeypatch, tmp_path, content: bytes, sha: str):
  src = tmp_path / "remote" / "input.txt"
  src.parent.mkdir(parents=True)
  src.write_bytes(content)
  spec = corpus.CorpusSpec(
    name="fake",
    level="char",
    fractions=(0.8, 0.1),
    files=(corpus.RemoteFile("input.txt", src.as_uri(), sha),),
  )
  monkeypatch.setitem(corpus.REGISTRY, "fake", spec)
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
  monkeypatch.delenv(corpus.DATA_DIR_ENV, raising=False)


def test_download_verifies_checksum_then_caches(tmp_path, monkeypatch):
  content = "".join(f"line {i}\n" for i in range(50)).encode()
  _fake_registry(monkeypatch, tmp_path, content, hashlib.sha256(content).hexdigest())
  raw = corpus.load("fake")
  assert (tmp_path / "cache" / "lm_jax" / "fake" / "input.txt").read_bytes() == content
  assert sum(len(s) + 1 for sp in corpus.SPLITS for s in raw.splits[sp]) == len(content)
  (tmp_path / "remote" / "input.txt").unlink()
  assert corpus.load("fake").splits == raw.splits  # Second load reads the cache.


def test_download_with_wrong_checksum_keeps_nothing(tmp_path, monkeypatch):
  _fake_registry(monkeypatch, tmp_path, b"tampered\n", "0" * 64)
  with pytest.raises(CorpusError, match="sha256.*retry"):
    corpus.load("fake")
  assert not (tmp_path / "cache" / "lm_jax" / "fake" / "input.txt").exists()


def test_a_corpus_name_with_a_directory_or_file_of_ones_own_is_refused(tmp_path):
  root = write_corpus(tmp_path / "c", "a b\n")
  with pytest.raises(CorpusError, match="clear the name"):
    corpus.load("pydoc", data_dir=str(root))  # The default name would silently win.
  with pytest.raises(CorpusError, match="clear the name"):
    corpus.load("ptb", file=str(root / "train.txt"))
  assert corpus.load(None, data_dir=str(root)).splits["train"] == [["a", "b"]]


def test_lines_end_at_newline_only(tmp_path):
  root = write_corpus(tmp_path / "c", "a\x0cb c\nd\u2028e\n")
  assert corpus.load(data_dir=str(root)).splits["train"] == [["a", "b", "c"], ["d", "e"]]
  assert corpus.split_sentences("ab\x85c\n", "char") == [["a", "b", "\x85", "c"]]
