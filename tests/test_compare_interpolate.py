import json
import math

import numpy as np
import pytest

from configs import ngram as ngram_config
from lm_jax import compare, interpolate
from lm_jax.errors import LMJaxError
from lm_jax.ngram import run as ngram_run


def test_em_weights_golden():
  # Model A gives p = 1/2 to each of 4 tokens; model B gives 1/8, 1, 1, 1.
  # With weight λ on A: token 1 gets λ/2 + (1-λ)/8 = (1+3λ)/8, tokens 2-4 get 1 - λ/2.
  # L(λ) = ln((1+3λ)/8) + 3 ln(1 - λ/2);  L'(λ) = 3/(1+3λ) - (3/2)/(1-λ/2) = 0
  #   -> 3 - 1.5λ = 1.5 + 4.5λ -> λ* = 1/4 (L is concave, so this is the maximum).
  a = np.log([0.5] * 4)
  b = np.log([0.125, 1.0, 1.0, 1.0])
  lam = interpolate.em_weights(np.stack([a, b]), iters=5000, tol=0)
  np.testing.assert_allclose(lam, [0.25, 0.75], atol=1e-4)
  # A model that is better on every token takes all the weight.
  lam = interpolate.em_weights(np.stack([a, a - 1.0]), iters=5000, tol=0)
  assert lam[0] > 0.999


def test_mixture_never_worse_on_tuning_data():
  rng = np.random.default_rng(0)
  p = rng.dirichlet(np.ones(5), size=(3, 200))  # 3 models, 200 tokens, 5 outcomes
  y = rng.integers(0, 5, 200)
  logp = np.log(p[:, np.arange(200), y])
  lam = interpolate.em_weights(logp)
  mixed = interpolate.mix(logp, lam).sum()
  assert all(mixed >= lp.sum() - 1e-9 for lp in logp)


def _ngram_run(path, **overrides):
  cfg = ngram_config.get_config()
  cfg.num_samples = 0
  cfg.dump_tokens = True
  for k, v in overrides.items():
    setattr(cfg, k, v)
  ngram_run.run(cfg, str(path))
  return str(path)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
  root = tmp_path_factory.mktemp("runs")
  return (_ngram_run(root / "kn3"), _ngram_run(root / "katz2", order=2, smoothing="katz"))


def test_interpolation_of_runs(two_runs, tmp_path):
  res = interpolate.run(list(two_runs), str(tmp_path / "mix"))
  assert res["valid"]["perplexity"] <= min(res["valid_single"]) + 1e-9
  assert res["test"]["tokens"] > 0 and math.isfinite(res["test"]["perplexity"])
  # The mixture's directory describes itself, so the comparison tool reads it too.
  report = compare.compare([two_runs[0], str(tmp_path / "mix")])
  assert "| mix | interpolation" in report


def test_compare_table_and_plot(two_runs, tmp_path):
  report = compare.compare(list(two_runs), plot_path=str(tmp_path / "c.png"))
  assert "| kn3 |" in report and "| katz2 |" in report
  assert "| order | 3 | 2 |" in report and "| smoothing | modified_kneser_ney | katz |" in report
  assert (tmp_path / "c.png").stat().st_size > 1000


def test_compare_refuses_different_vocabularies(two_runs, tmp_path):
  other = _ngram_run(tmp_path / "mc2", order=2)
  info = json.loads(open(f"{other}/run.json").read())
  info["vocab_hash"] = "0123456789abcdef"
  with open(f"{other}/run.json", "w") as f:
    json.dump(info, f)
  with pytest.raises(LMJaxError, match="not comparable.*allow_mismatch"):
    compare.compare([two_runs[0], other])
  assert "Warning: not comparable" in compare.compare([two_runs[0], other], allow_mismatch=True)
  with pytest.raises(LMJaxError, match="not an lm_jax run directory"):
    compare.compare([str(tmp_path)])
