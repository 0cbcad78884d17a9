"""The embedded default corpus: the prose of CPython's reference documentation.

Every Python install ships its language reference as plain text in
``pydoc_data.topics``: real English written by people, available with no
download.  lm_jax keeps its prose paragraphs (code blocks, grammar and heading
rules and repeated paragraphs are dropped), splits them into sentences, lowercases and tokenizes them
into words and punctuation, and deals paragraphs round-robin into splits
(every tenth paragraph to valid, the next to test).  The text differs between
Python versions, so runs record its checksum and the Python version.
"""

from __future__ import annotations

import hashlib
import platform
import re

from lm_jax.data.corpus import RawCorpus

_WORD_RE = re.compile(r"[a-z0-9_]+(?:'[a-z]+)?|[^\sa-z0-9_]")
_SENT_END_RE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")
_RULE_RE = re.compile(r"^[*=\-^~]{3,}$")


def paragraphs() -> list[str]:
  """Prose paragraphs of the reference documentation, in a fixed order."""
  from pydoc_data import topics  # Part of the standard library.

  out = []
  for key in sorted(topics.topics):
    for block in re.split(r"\n\s*\n", topics.topics[key]):
      lines = block.split("\n")
      if any(l.startswith(" ") for l in lines) or any(_RULE_RE.match(l.strip()) for l in lines):
        continue  # Code, grammar productions, tables and headings.
      para = " ".join(l.strip() for l in lines).strip()
      if len(para.split()) >= 4:
        out.append(para)
  # Topics repeat shared sections word for word; keep each paragraph once so
  # that no valid or test paragraph is also a training paragraph.
  return list(dict.fromkeys(out))


def tokenize(sentence: str) -> list[str]:
  return _WORD_RE.findall(sentence.lower())


def load() -> RawCorpus:
  paras = paragraphs()
  splits = {"train": [], "valid": [], "test": []}
  for i, para in enumerate(paras):
    split = {8: "valid", 9: "test"}.get(i % 10, "train")
    splits[split].extend(t for t in (tokenize(s) for s in _SENT_END_RE.split(para)) if t)
  digest = hashlib.sha256("\n".join(paras).encode("utf-8")).hexdigest()
  source = f"pydoc_data.topics (Python {platform.python_version()})"
  return RawCorpus("pydoc", "word", splits, {"pydoc_data.topics": digest}, source)
