"""Linear interpolation of language models from their per-token probabilities.

``p(w|h) = Σ_m λ_m p_m(w|h)`` with ``Σ λ = 1``; the weights are tuned on the
validation split by expectation-maximization (each step sets ``λ_m`` to the
mean posterior responsibility of model m for the tokens), which never lowers
the validation likelihood.  Models must score the same tokens under the same
vocabulary: each run's ``{valid,test}.tokens.tsv`` dump is the input.
"""

from __future__ import annotations

import numpy as np

from lm_jax import evaluation
from lm_jax.errors import LMJaxError
from lm_jax.rundir import RunDir


def em_weights(logp_MxN: np.ndarray, iters: int = 200, tol: float = 1e-9) -> np.ndarray:
  """Mixture weights maximizing Σ_t ln Σ_m λ_m p_m(t) (EM from uniform weights)."""
  m = logp_MxN.shape[0]
  lam = np.full(m, 1.0 / m)
  prev = -np.inf
  for _ in range(iters):
    with np.errstate(divide="ignore"):  # A weight may reach exactly 0.
      joint = np.log(lam)[:, None] + logp_MxN
    total = np.logaddexp.reduce(joint, axis=0)
    lam = np.exp(joint - total).mean(axis=1)
    ll = total.sum()
    if ll - prev < tol * abs(ll):
      break
    prev = ll
  return lam


def mix(logp_MxN: np.ndarray, lam: np.ndarray) -> np.ndarray:
  """ln Σ_m λ_m p_m for every token."""
  with np.errstate(divide="ignore"):
    return np.logaddexp.reduce(np.log(lam)[:, None] + logp_MxN, axis=0)


def interpolate(workdirs: list[str]) -> dict:
  """Tunes weights on valid, reports valid and test perplexity of the mixture and of each model."""
  if len(workdirs) < 2:
    raise LMJaxError("interpolation needs at least two run directories.")
  runs = [RunDir.open(d, ("neural", "ngram"), what="experiments.interpolate") for d in workdirs]
  out = {"workdirs": [r.path for r in runs]}
  data = {}
  for split in ("valid", "test"):
    dumps = [r.read_token_dump(split) for r in runs]
    for r, (toks, _, _) in zip(runs[1:], dumps[1:]):
      if toks != dumps[0][0]:
        raise LMJaxError(
          f"{r.path} scored different tokens than {runs[0].path} on {split} "
          "(another corpus or vocabulary); interpolate models over the same text "
          "and vocabulary."
        )
    data[split] = (
      np.stack([lp for _, lp, _ in dumps]),
      dumps[0][2],
      sum(t == "</s>" for t in dumps[0][0]),
    )
  lam = em_weights(data["valid"][0])
  out["weights"] = lam.tolist()
  for split, (logp, oov, sents) in data.items():
    out[split] = evaluation.from_token_logprobs(split, mix(logp, lam), oov, sents).record()
    out[f"{split}_single"] = [
      evaluation.from_token_logprobs(split, lp, oov, sents).perplexity for lp in logp
    ]
  out["info"] = runs[0].read_info()
  return out


def run(workdirs: list[str], out: str | None = None) -> dict:
  """Interpolates and, with ``out``, writes a self-describing run directory for the mixture.

  ``config.json`` names the mixed runs and weights; ``run.json`` carries the first
  run's vocabulary and corpus (the same for all, which ``interpolate`` checked);
  ``metrics.jsonl`` holds the mixture's valid and test records.
  """
  res = interpolate(workdirs)
  if out is not None:
    with RunDir.create(out, "interpolation") as rd:
      info = res["info"]
      rd.write_json("config.json", {"workdirs": res["workdirs"], "weights": res["weights"]})
      rd.write_json(
        "run.json",
        {
          "kind": "interpolation",
          "mixes": res["workdirs"],
          **{k: info.get(k) for k in ("vocab_hash", "vocab_size", "corpus")},
        },
      )
      w = rd.metrics(fresh=True)
      w.write({"kind": "interpolation", "workdirs": res["workdirs"], "weights": res["weights"]})
      for split in ("valid", "test"):
        w.write(res[split])
  return res
