"""The One Billion Word benchmark's reader on a small synthetic archive of the same layout."""

import dataclasses
import hashlib
import tarfile

import numpy as np
import pytest

from lm_jax.data import corpus as corpus_lib
from lm_jax.data import lm1b
from lm_jax.data.pipeline import load_data
from lm_jax.data.tokens import encode_sentences
from lm_jax.errors import CorpusError
from lm_jax.spec import DataSpec


def _write(path, lines):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


@pytest.fixture
def archive(tmp_path, monkeypatch):
  """A tar.gz with all 100 training shards and the two held-out shards the split reads."""
  src = tmp_path / "src" / lm1b.ROOT
  for i in range(100):
    # Shard 0 is held-out data in Chelba et al.'s split: its word must never be seen.
    word = "shardzero" if i == 0 else f"w{i % 3}"
    _write(
      src / f"{lm1b.TRAIN_DIR}/news.en-{i:05d}-of-00100",
      [f"the {word} ."] + (["a rare ."] if i == 1 else []),
    )
  _write(src / f"{lm1b.HELDOUT_DIR}/news.en.heldout-00000-of-00050", ["the w1 .", "unseen w2 ."])
  _write(src / f"{lm1b.HELDOUT_DIR}/news.en.heldout-00001-of-00050", ["the w0 ."])
  spec = corpus_lib.REGISTRY["lm1b"]
  path = tmp_path / "data" / "lm1b" / spec.files[0].name
  path.parent.mkdir(parents=True)
  with tarfile.open(path, "w:gz") as tar:
    tar.add(src, arcname=lm1b.ROOT)
  sha = hashlib.sha256(path.read_bytes()).hexdigest()
  fake = dataclasses.replace(spec, files=(dataclasses.replace(spec.files[0], sha256=sha),))
  monkeypatch.setitem(corpus_lib.REGISTRY, "lm1b", fake)
  return path


def test_standard_split_and_vocabulary_convention(archive):
  data = DataSpec(name="lm1b", dir=str(archive.parent.parent), download=False)
  info, vocab, arrays = load_data(data)
  # Training = shards 1-99: 99 sentences "the wK ." plus shard 1's "a rare .".
  assert arrays["train"].num_sentences == 100
  assert arrays["test"].num_sentences == 2 and arrays["valid"].num_sentences == 1
  # Count >= 3: the, w0, w1, w2 (33 each), "." (100); "a" and "rare" (once) and shard 0's
  # word (never read) are <unk>.
  assert set(vocab.tokens) == {"<unk>", "</s>", "<s>", "the", ".", "w0", "w1", "w2"}
  assert "shardzero" not in vocab.index and "rare" not in vocab.index
  assert int(arrays["test"].oov.sum()) == 1  # "unseen"
  assert info.describe()["sentences"] == {"train": 100, "valid": 1, "test": 2}
  assert info.checksums == {archive.name: corpus_lib.REGISTRY["lm1b"].files[0].sha256}
  # min_count overrides the convention.
  _, vocab1, _ = load_data(dataclasses.replace(data, min_count=1))
  assert "rare" in vocab1.index and "shardzero" not in vocab1.index
  assert (archive.parent / lm1b.ROOT / ".lm_jax-extracted").is_file()  # Extracted once.
  # The training split is memory-mapped from its encoding on disk, equal to encoding in memory.
  train = arrays["train"]
  assert isinstance(train.ids, np.memmap) and isinstance(train.starts, np.memmap)
  sentences = [
    s for shard in lm1b.TRAIN_SHARDS for s in lm1b._sentences(archive.parent / lm1b.ROOT / shard)
  ]
  want = encode_sentences(vocab, sentences)
  for field in ("ids", "starts", "oov"):
    np.testing.assert_array_equal(getattr(train, field), getattr(want, field))
  _, _, again = load_data(data)  # The second run reads the encoding the first one wrote.
  assert again["train"].ids.filename == train.ids.filename
  np.testing.assert_array_equal(again["train"].ids, want.ids)


def test_a_damaged_archive_is_one_line(archive):
  data = DataSpec(name="lm1b", dir=str(archive.parent.parent), download=False)
  archive.write_bytes(archive.read_bytes()[:200])
  with pytest.raises(CorpusError, match="has sha256 .* delete it and download it again"):
    load_data(data)


def test_missing_archive_names_the_url(tmp_path, monkeypatch):
  monkeypatch.setattr(corpus_lib, "cache_dir", lambda: tmp_path / "cache")
  with pytest.raises(CorpusError, match="statmt.org/lm-benchmark"):
    load_data(DataSpec(name="lm1b", dir=str(tmp_path), download=False))
