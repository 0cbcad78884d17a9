"""The n-gram experiment: read a corpus, estimate, evaluate, sample, write the workdir."""

from __future__ import annotations

import os
import time

import jax
import ml_collections
from absl import logging

from lm_jax import evaluation, rundir
from lm_jax.data.pipeline import load_data
from lm_jax.errors import ConfigError
from lm_jax.metric_writer import MetricWriter
from lm_jax.ngram import arpa
from lm_jax.ngram.model import NGramLM
from lm_jax.ngram.sample import sample
from lm_jax.ngram.smoothing import NORMALIZED, SMOOTHINGS


def validate(config: ml_collections.ConfigDict) -> None:
  if not isinstance(config.order, int) or config.order < 1:
    raise ConfigError(f"order must be an integer >= 1, got {config.order!r}.")
  if config.smoothing not in SMOOTHINGS:
    raise ConfigError(f"unknown smoothing {config.smoothing!r}; choose one of {', '.join(SMOOTHINGS)}.")
  if config.smoothing == "add_k" and not config.k > 0:
    raise ConfigError(f"add-k smoothing needs k > 0, got k={config.k}; k=1 is Laplace.")


def run(config: ml_collections.ConfigDict, workdir: str, verbose: bool = True) -> dict:
  """Runs the experiment of ``config`` into ``workdir``; returns the final records by split.

  ``verbose`` prints the human-readable summary (the files are written either way).
  """
  say = print if verbose else (lambda *a, **k: None)
  validate(config)
  rundir.ensure_writable(workdir)
  for stale in ("model.arpa", "samples.txt", "valid.tokens.tsv", "test.tokens.tsv"):
    # A rerun must not leave the previous run's outputs beside the new config.
    if os.path.exists(os.path.join(workdir, stale)):
      os.remove(os.path.join(workdir, stale))
  raw, vocab, arrays = load_data(config.data)
  info = rundir.write_run_info(workdir, config, vocab, raw)
  writer = MetricWriter(workdir, fresh=True)
  logging.info("corpus %s: %s", raw.name, raw.describe()["sentences"])
  t0 = time.perf_counter()
  lm = NGramLM.estimate(arrays["train"], vocab, config.order, config.smoothing, k=config.k,
                        discount_fallback=config.discount_fallback,
                        stupid_backoff_alpha=config.stupid_backoff_alpha,
                        kn_statistics=config.kn_statistics)
  seconds = time.perf_counter() - t0
  for note in lm.tables.info.get("discount_notes", []):
    logging.warning("discount fallback: %s", note)
  writer.write({"event": "estimate", "seconds": seconds, "ngrams": lm.trie.sizes(),
                "vocab_size": vocab.num_predictable, "vocab_hash": info["vocab_hash"],
                **{k: v for k, v in lm.tables.info.items() if k != "discount_notes"}})
  say(f"{config.order}-gram {config.smoothing} on {raw.name}: {vocab.num_predictable} types, "
        f"n-grams per order {lm.trie.sizes()}, estimated in {seconds:.2f}s")
  if config.write_arpa:
    arpa.write_arpa(lm, os.path.join(workdir, "model.arpa"))
  finals = {}
  if config.smoothing in NORMALIZED:
    for split in ("valid", "test"):
      logp = lm.token_logprobs(arrays[split])
      res = evaluation.from_token_logprobs(split, logp, arrays[split].oov, arrays[split].num_sentences)
      finals[split] = rec = res.record()
      writer.write(rec)
      say(f"[{split}] perplexity {res.perplexity:.4f} (excluding OOVs "
            f"{res.perplexity_excluding_oovs:.4f}), {res.tokens} tokens, nll {res.nll:.2f} nats\n"
            + "\n".join("    " + line for line in res.srilm().splitlines()))
      if config.dump_tokens:
        evaluation.write_token_dump(os.path.join(workdir, f"{split}.tokens.tsv"), arrays[split],
                                    logp, vocab)
  else:
    say(f"{config.smoothing} scores are not probabilities: no perplexity is reported.")
  key = jax.random.key(config.seed)
  lines = []
  for i in range(config.num_samples):
    s = sample(lm, jax.random.fold_in(key, i), config.max_sample_len, config.temperature)
    text = vocab.detokenize(s.ids)
    writer.write({"event": "sample", "index": i, "text": text, "logprob": s.logprob,
                  "tokens": len(s.ids), "truncated": s.truncated})
    lines.append(f"{s.logprob:10.2f}  {text}")
  if lines:
    with open(os.path.join(workdir, "samples.txt"), "w", encoding="utf-8") as f:
      f.write("\n".join(lines) + "\n")
    say("samples (ln p, text):\n" + "\n".join("  " + l for l in lines))
  return finals
