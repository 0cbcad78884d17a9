"""The n-gram experiment: read a corpus, estimate, evaluate, sample, write the workdir."""

from __future__ import annotations

import contextlib
import os
import time

import ml_collections
from absl import logging

from lm_jax import evaluation
from lm_jax.errors import WorkdirError
from lm_jax.ngram.spec import NGramSpec, parse_ngram
from lm_jax.rundir import RunDir


def run(config: ml_collections.ConfigDict | NGramSpec, workdir: str, verbose: bool = True) -> dict:
  """Runs the experiment of ``config`` into ``workdir``; returns the final records by split.

  ``verbose`` prints the human-readable summary (the files are written either way).
  """
  spec = config if isinstance(config, NGramSpec) else parse_ngram(config)
  with RunDir.create(workdir, "ngram") as rd:
    return _run(spec, rd, print if verbose else (lambda *a, **k: None))


def _refuse_another_config(spec: NGramSpec, rd: RunDir) -> None:
  """A rerun recomputes the same model; another config would silently replace the run."""
  if not os.path.isfile(rd.file("config.json")):
    return
  from lm_jax.checkpoint_meta import flat_config

  outputs = {
    *("write_arpa", "evaluate", "dump_tokens"),
    *("num_samples", "max_sample_len", "temperature", "seed"),
  }
  before, now = (
    {k: v for k, v in flat_config(c).items() if k not in outputs}
    for c in (rd.read_config(), spec.config)
  )
  diffs = [
    f"{k}: {before.get(k, '<absent>')!r} -> {now.get(k, '<absent>')!r}"
    for k in sorted(set(before) | set(now))
    if before.get(k, "<absent>") != now.get(k, "<absent>")
  ]
  if diffs:
    raise WorkdirError(
      f"{rd.path} holds an n-gram run with another config ({'; '.join(diffs[:5])}); rerunning "
      "would replace it and its token dumps. Give the new model its own --workdir."
    )


def _run(spec: NGramSpec, rd: RunDir, say) -> dict:
  if spec.memory:
    return _run_out_of_core(spec, rd, say)
  from lm_jax.data.pipeline import load_data
  from lm_jax.ngram.model import NGramLM

  _refuse_another_config(spec, rd)
  # A rerun must not leave the previous run's outputs beside the new config.
  rd.remove_outputs("model.arpa", "samples.txt", "valid.tokens.tsv", "test.tokens.tsv")
  raw, vocab, arrays = load_data(spec.data)
  info = rd.write_start(spec.config, vocab, raw)
  writer = rd.metrics(fresh=True)
  logging.info("corpus %s: %s", raw.name, raw.describe()["sentences"])
  t0 = time.perf_counter()
  lm = NGramLM.estimate(
    arrays["train"],
    vocab,
    spec.order,
    spec.smoothing,
    k=spec.k,
    discount_fallback=spec.discount_fallback,
    stupid_backoff_alpha=spec.stupid_backoff_alpha,
    kn_statistics=spec.kn_statistics,
    prune=spec.prune,
    prune_entropy=spec.prune_entropy,
  )
  seconds = time.perf_counter() - t0
  _record_estimate(
    spec, writer, say, seconds, lm.trie.sizes(), vocab, info, lm.tables.info, raw.name
  )
  return _score_while_writing(spec, rd, lm, lm, vocab, arrays, writer, say)


def _record_estimate(spec, writer, say, seconds, sizes, vocab, info, extra, name, how="") -> None:
  for note in extra.get("discount_notes", []):
    logging.warning("discount fallback: %s", note)
  writer.write(
    {
      "kind": "estimate",
      "seconds": seconds,
      "ngrams": sizes,
      "vocab_size": vocab.num_predictable,
      "vocab_hash": info["vocab_hash"],
      **{k: v for k, v in extra.items() if k != "discount_notes"},
    }
  )
  say(
    f"{spec.order}-gram {spec.smoothing} on {name}{how}: {vocab.num_predictable} types, "
    f"n-grams per order {sizes}, estimated in {seconds:.2f}s"
  )


def _score_while_writing(spec, rd, arpa_model, lm, vocab, arrays, writer, say, stages=None):
  """Scores and samples ``lm`` while ``model.arpa`` is written from ``arpa_model`` (if asked)."""
  from lm_jax.ngram import arpa

  with contextlib.ExitStack() as stack:
    arpa_writer = None
    if spec.write_arpa:  # Started now; its other process writes while this one scores.
      path = stack.enter_context(rd.writing("model.arpa"))  # A kill leaves no partial file.
      arpa_writer = arpa.ArpaWriter(arpa_model, path)
      stack.callback(arpa_writer.close)
    finals = _score_and_sample(spec, rd, lm, vocab, arrays, writer, say)
    if stages is not None:
      stages.done("score and sample")
    if arpa_writer is not None:
      arpa_writer.finish()
      if stages is not None:
        stages.done("arpa (rest)")
  return finals


def _run_out_of_core(spec: NGramSpec, rd: RunDir, say) -> dict:
  """``memory`` set: stream the text into ``external`` within the budget, write the ARPA file
  from the arrays, score and sample from the model on disk; temporaries in ``temp_dir``."""
  import tempfile

  from lm_jax.data.stream import stream_data
  from lm_jax.ngram import external
  from lm_jax.ngram.arrays_io import ArrayModel, save_scoring
  from lm_jax.ngram.binary import load_binary
  from lm_jax.ngram.spec import parse_fallback

  _refuse_another_config(spec, rd)
  rd.remove_outputs("model.arpa", "samples.txt", "valid.tokens.tsv", "test.tokens.tsv")
  memory = external.parse_memory(spec.memory)
  with tempfile.TemporaryDirectory(prefix="lm_jax-ngram-", dir=spec.temp_dir) as tmp:
    # The training text is read once, to its ids in ``tmp``; the passes read those back.
    corpus = stream_data(spec.data, external.chunk_tokens(memory), spill_dir=tmp)
    vocab = corpus.vocab
    info = rd.write_start(spec.config, vocab, corpus.info)
    writer = rd.metrics(fresh=True)
    t0 = time.perf_counter()
    stages = external.Stages(tmp)
    est = external.estimate_kneser_ney(
      corpus.train(),
      vocab.size,
      vocab.bos_id,
      spec.order,
      memory,
      tmp,
      modified=spec.smoothing == "modified_kneser_ney",
      fallback=parse_fallback(spec.discount_fallback),
      lmplz_statistics=spec.kn_statistics == "lmplz",
      out_dir=os.path.join(tmp, "arrays"),
      stages=stages,
    )
    seconds = time.perf_counter() - t0
    stages.restart(tmp)
    extra = {"memory": memory, **{k: v for k, v in est.info.items() if k != "stages"}}
    how = f" (out of core, memory {memory / 2**20:.0f} MiB)"
    _record_estimate(
      spec, writer, say, seconds, est.sizes(), vocab, info, extra, corpus.info.name, how
    )
    lm = None  # Text in, ARPA out (evaluate=False, num_samples=0) needs no scoring model.
    if spec.evaluate or spec.num_samples:
      save_scoring(est, vocab, os.path.join(tmp, "scoring"), spec.smoothing)
      stages.done("scoring arrays")
      lm = load_binary(os.path.join(tmp, "scoring"))
    finals = _score_while_writing(
      spec, rd, ArrayModel(est, vocab), lm, vocab, corpus.heldout, writer, say, stages
    )
    del lm  # Its memory maps close before the directory goes.
  writer.write({"kind": "stages", "stages": stages.rows})
  return finals


def _score_and_sample(spec: NGramSpec, rd: RunDir, lm, vocab, arrays, writer, say) -> dict:
  from lm_jax.ngram.sample import sample
  from lm_jax.ngram.smoothing import NORMALIZED

  finals = {}
  if spec.evaluate and spec.smoothing not in NORMALIZED:
    say(f"{spec.smoothing} scores are not probabilities: no perplexity is reported.")
  elif spec.evaluate:
    for split in ("valid", "test"):
      logp = lm.token_logprobs(arrays[split])
      res = evaluation.from_token_logprobs(
        split, logp, arrays[split].oov, arrays[split].num_sentences
      )
      finals[split] = rec = res.record()
      writer.write(rec)
      say(
        f"[{split}] perplexity {res.perplexity:.4f} (excluding OOVs "
        f"{res.perplexity_excluding_oovs:.4f}), {res.tokens} tokens, nll {res.nll:.2f} nats\n"
        + "\n".join("    " + line for line in res.srilm().splitlines())
      )
      if spec.dump_tokens:
        rd.write_text(f"{split}.tokens.tsv", evaluation.token_dump(arrays[split], logp, vocab))
  lines = []
  for i in range(spec.num_samples):
    s = sample(lm, (spec.seed, i), spec.max_sample_len, spec.temperature)
    text = vocab.detokenize(s.ids)
    writer.write(
      {
        "kind": "sample",
        "index": i,
        "text": text,
        "logprob": s.logprob,
        "tokens": len(s.ids),
        "truncated": s.truncated,
      }
    )
    lines.append(f"{s.logprob:10.2f}  {text}")
  if lines:
    rd.write_text("samples.txt", "\n".join(lines) + "\n")
    say("samples (ln p, text):\n" + "\n".join("  " + line for line in lines))
  return finals
