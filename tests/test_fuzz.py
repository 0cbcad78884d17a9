"""Bad input: corpora, vocabularies, ARPA files and configs either load or raise an LMJaxError."""

import contextlib
import json
import math
import pathlib
import tempfile
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from configs import rnn as rnn_configs
from lm_jax.data import corpus
from lm_jax.data.pipeline import data_config, load_data
from lm_jax.data.tokens import encode_sentences
from lm_jax.data.vocab import Vocab
from lm_jax.errors import LMJaxError
from lm_jax.ngram.arpa import read_arpa, write_arpa
from lm_jax.ngram.model import NGramLM
from lm_jax.spec import parse_neural

FUZZ = settings(
  max_examples=50, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)  # Reproducible in CI; the examples still vary by strategy.


def accepts_or_explains(fn, *args, **kwargs):
  """Runs ``fn``; an LMJaxError with a message is fine, any other exception fails the test."""
  try:
    return fn(*args, **kwargs)
  except LMJaxError as e:
    assert str(e).strip(), f"{type(e).__name__} without a message"
    return None


@contextlib.contextmanager
def scratch() -> Iterator[pathlib.Path]:
  """A temporary directory for one example, removed after it (hypothesis reuses fixtures)."""
  with tempfile.TemporaryDirectory(prefix="lm_jax_fuzz_") as d:
    yield pathlib.Path(d)


# Text that stresses line splitting and tokenizing: reserved tokens, odd line breaks, controls.
TEXT = st.lists(
  st.one_of(
    st.text(max_size=40),
    st.sampled_from(
      ["<s>", "</s>", "<unk>", "\r\n", "\x85", "\u2028", "\x00", "\ufeff", " \t ", "\n\n"]
    ),
  ),
  max_size=30,
).map("".join)
# Mostly plausible corpora (so loading succeeds often enough to check its output), else noise.
WORDS = st.lists(
  st.lists(st.sampled_from(["a", "b", "the", "<unk>", "é", "x" * 300]), min_size=1, max_size=8).map(
    " ".join
  ),
  min_size=1,
  max_size=12,
).map("\n".join)
BYTES = st.one_of(
  *[WORDS.map(str.encode)] * 6,
  TEXT.map(lambda t: t.encode("utf-8")),
  st.binary(max_size=300),
  TEXT.map(lambda t: t.encode("utf-16")),
)


@FUZZ
@given(train_=BYTES, valid=BYTES, test=BYTES, level=st.sampled_from(["word", "char", None]))
def test_corpus_directories(train_, valid, test, level):
  with scratch() as root:
    for name, data in (("train", train_), ("valid", valid), ("test", test)):
      (root / f"{name}.txt").write_bytes(data)
    data = data_config(None, level)
    data.dir = str(root)
    out = accepts_or_explains(load_data, data)
    if out is not None:  # Loaded: every split is encoded with the train vocabulary.
      _, vocab, splits = out
      assert all(s.ids.max(initial=0) < vocab.bos_id for s in splits.values())


@FUZZ
@given(data=BYTES, level=st.sampled_from(["word", "char"]))
def test_raw_corpus_files(data, level):
  with scratch() as tmp:
    path = tmp / "raw.txt"
    path.write_bytes(data)
    accepts_or_explains(corpus.load_file, str(path), level)


def test_a_huge_line_is_one_sentence():
  with scratch() as tmp:
    path = tmp / "huge.txt"
    path.write_text("a b " * 1_000_000 + "\nshort line\n", encoding="utf-8")
    raw = corpus.load_file(str(path), "word", fractions=(0.5, 0.25))
    assert len(raw.splits["train"]) == 1 and len(raw.splits["train"][0]) == 2_000_000


JSON = st.recursive(
  st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
  lambda inner: (
    st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=6), inner, max_size=5)
  ),
  max_leaves=20,
)
TOKENS = st.lists(
  st.one_of(st.sampled_from(["<unk>", "</s>", "<s>"]), st.text(max_size=4)), max_size=8
)
VALID_TOKENS = st.lists(
  st.text(min_size=1, max_size=4).filter(lambda t: t not in ("<unk>", "</s>", "<s>")),
  unique=True,
  max_size=8,
).map(lambda t: ["<unk>", "</s>", *t, "<s>"])
LEVEL = st.one_of(st.sampled_from(["word", "char"]), JSON)
VOCAB_JSON = st.one_of(
  st.fixed_dictionaries({"tokens": VALID_TOKENS}, optional={"level": LEVEL}),
  st.fixed_dictionaries({"tokens": st.one_of(TOKENS, JSON)}, optional={"level": LEVEL}),
  st.fixed_dictionaries({}, optional={"tokens": VALID_TOKENS, "level": LEVEL}),
)


@FUZZ
@given(
  obj=st.one_of(VOCAB_JSON, VOCAB_JSON, JSON),
  raw=st.one_of(st.none(), st.none(), st.binary(max_size=50)),
)
def test_vocab_files(obj, raw):
  with scratch() as tmp:
    path = tmp / "vocab.json"
    if raw is None:
      path.write_text(json.dumps(obj), encoding="utf-8")
    else:
      path.write_bytes(raw)
    vocab = accepts_or_explains(Vocab.load, str(path))
    if vocab is not None:
      assert vocab.tokens[:2] == ("<unk>", "</s>") and vocab.tokens[-1] == "<s>"


def valid_arpa() -> str:
  sents = [s.split() for s in ("a b c", "b c a", "c a b a", "a a b")]
  vocab = Vocab.build(sents)
  lm = NGramLM.estimate(
    encode_sentences(vocab, sents), vocab, 3, "kneser_ney", discount_fallback="0.5,1.0,1.5"
  )
  with scratch() as tmp:
    path = tmp / "ok.arpa"
    write_arpa(lm, str(path))
    return path.read_text(encoding="utf-8")


ARPA = valid_arpa()


@st.composite
def mutated_arpa(draw):
  lines = ARPA.split("\n")
  for _ in range(draw(st.integers(1, 4))):
    i = draw(st.integers(0, len(lines) - 1))
    op = draw(st.sampled_from(["delete", "duplicate", "replace", "insert", "swap_field"]))
    if op == "delete":
      del lines[i]
    elif op == "duplicate":
      lines.insert(i, lines[i])
    elif op == "replace":
      lines[i] = draw(st.text(max_size=30))
    elif op == "insert":
      lines.insert(
        i,
        draw(
          st.sampled_from(
            [
              "\\data\\",
              "ngram 1=3",
              "ngram 9=1",
              "\\2-grams:",
              "\\4-grams:",
              "\\end\\",
              "-1.0\tzzz",
              "nan a",
              "inf b",
            ]
          )
        ),
      )
    else:
      fields = lines[i].split("\t")
      fields[draw(st.integers(0, len(fields) - 1))] = draw(
        st.sampled_from(["", "x", "1e999", "-inf", "nan", "0", "<s>", "a b", "-99"])
      )
      lines[i] = "\t".join(fields)
    if not lines:
      break
  text = "\n".join(lines)
  return text[: draw(st.integers(0, len(text)))] if draw(st.booleans()) else text


@FUZZ
@given(text=st.one_of(mutated_arpa(), TEXT, st.just(ARPA)), level=st.sampled_from(["word", "char"]))
def test_arpa_files(text, level):
  with scratch() as tmp:
    path = tmp / "lm.arpa"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    lm = accepts_or_explains(read_arpa, str(path), level)
    if lm is not None and text == ARPA:
      assert lm.vocab.size == 6


FIELDS = [
  (s, k)
  for s, d in rnn_configs.get_config("elman_ptb,tiny").items()
  if s in ("train", "eval", "model", "optim")
  for k in d.keys()
  if k != "plateau"
]
VALUES = st.one_of(
  st.integers(1, 64),
  st.floats(0.0, 0.9),
  st.none(),
  st.booleans(),
  st.integers(-(10**12), 10**12),
  st.floats(),
  st.text(max_size=8),
  st.lists(st.integers(), max_size=3),
  st.sampled_from([0, 1, -1, 0.5, 1e-9, math.inf, "lstm", "adam", "tokens"]),
)


@FUZZ
@given(changes=st.lists(st.tuples(st.sampled_from(FIELDS), VALUES), min_size=1, max_size=3))
def test_config_values(changes):
  config = rnn_configs.get_config("elman_ptb,tiny")
  with config.ignore_type():  # What a hand-edited config file (not --config.x flags) can hold.
    for (section, key), value in changes:
      config[section][key] = value
  accepts_or_explains(parse_neural, config)


@pytest.mark.parametrize(
  "section,key,value",
  [
    ("train", "batch_size", "20"),
    ("train", "num_steps", 2.5),
    ("model", "dropout", "0.1"),
    ("optim", "learning_rate", math.nan),
    ("model", "hidden_dim", True),
    ("eval", "batch_size", None),
  ],
)
def test_config_type_errors_name_the_field(section, key, value):
  config = rnn_configs.get_config("elman_ptb,tiny")
  with config.ignore_type():
    config[section][key] = value
  with pytest.raises(LMJaxError, match=f"{section}.{key}"):
    parse_neural(config)


@pytest.mark.parametrize("valid", ["a <s> b\n", "a </s> b\n"])
def test_literal_boundaries_in_valid_or_test_are_refused(tmp_path, valid):
  """Found by the corpus fuzzer: a literal <s> in valid became a target outside the softmax."""
  from lm_jax.errors import VocabError
  from tests.conftest import write_corpus

  data = data_config(None, "word")
  data.dir = str(write_corpus(tmp_path, "a b\nb a\n", valid=valid))
  with pytest.raises(VocabError, match="reserved token <s> or </s> \\(1 times\\)"):
    load_data(data)
