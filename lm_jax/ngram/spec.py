"""The n-gram run spec: ``parse_ngram`` validates a whole n-gram config before any work.

Field defaults of ``NGramSpec`` are the only defaults (``configs/ngram.py`` builds
its ConfigDict from them).
"""

from __future__ import annotations

import dataclasses
import math
import os

import ml_collections

from lm_jax.config_fields import freeze, one_of, section
from lm_jax.errors import ConfigError
from lm_jax.spec import DataSpec, check_sampling, parse_data, recorded

SMOOTHINGS = (
  "mle",
  "add_k",
  "laplace",
  "katz",
  "kneser_ney",
  "modified_kneser_ney",
  "stupid_backoff",
)
KN_STATISTICS = ("lmplz", "exact")
# Counting keeps one table per order with `order` columns: memory and time grow with
# order^2 x tokens.  Word models gain nothing past about 10 (Chen & Goodman 1998).
MAX_ORDER = 20


@dataclasses.dataclass(frozen=True)
class NGramSpec:
  """A validated n-gram config."""

  order: int = 3
  smoothing: str = "modified_kneser_ney"
  k: float = 1.0  # add_k's k (Lidstone); laplace forces 1
  discount_fallback: str | None = None  # e.g. "0.5,1.0,1.5"
  kn_statistics: str = "lmplz"  # "lmplz": discounts exactly as lmplz; "exact": Chen & Goodman
  prune: str | None = None  # count thresholds per order, as lmplz --prune: "0,0,1"
  prune_entropy: float = 0.0  # relative-entropy threshold, as SRILM's -prune (e.g. 1e-8)
  memory: str | None = None  # out-of-core budget, as lmplz -S: "4G", "500M", "50%"; None: in RAM
  temp_dir: str | None = None  # spill directory for memory (lmplz -T); None: the system's
  stupid_backoff_alpha: float = 0.4  # 1.0 is the lecture's simplified back-off rule
  seed: int = 0
  data: DataSpec = DataSpec()
  write_arpa: bool = False
  evaluate: bool = True  # score valid and test; False: estimate and write only, as lmplz
  dump_tokens: bool = False  # per-token log-probabilities as DIR/{valid,test}.tokens.tsv
  num_samples: int = 3
  max_sample_len: int = 60
  temperature: float = 1.0
  config: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)


def parse_fallback(value) -> tuple[float, ...] | None:
  """``"0.5,1.0,1.5"`` (or three numbers) -> discounts D1, D2, D3+ (lmplz's --discount_fallback)."""
  if value in (None, "", ()):
    return None
  try:
    vals = tuple(float(x) for x in (value.split(",") if isinstance(value, str) else value))
  except (TypeError, ValueError):
    vals = ()
  if len(vals) != 3 or not all(0 <= v < math.inf for v in vals):
    raise ConfigError(
      f"discount_fallback needs three non-negative discounts D1,D2,D3+ "
      f"(lmplz uses 0.5,1.0,1.5); got {value!r}."
    )
  return vals


def parse_ngram(config: ml_collections.ConfigDict) -> NGramSpec:
  """The whole n-gram config, validated; raises ConfigError naming the key and the fix."""
  values = {k: config[k] for k in config.keys() if k != "data"}
  spec = freeze("", values, NGramSpec, ignore=frozenset({"data", "config"}))
  data = parse_data(section(config, "data"))
  spec = dataclasses.replace(spec, data=data, config=recorded(config, data))
  if not 1 <= spec.order <= MAX_ORDER:
    raise ConfigError(
      f"order={spec.order} is outside 1..{MAX_ORDER}: counting keeps one table per order with "
      "`order` columns, so time and memory grow with order^2 x tokens (KenLM's lmplz is "
      f"built for order <= 6 by default); choose an order in 1..{MAX_ORDER}."
    )
  one_of("smoothing", spec.smoothing, SMOOTHINGS)
  one_of("kn_statistics", spec.kn_statistics, KN_STATISTICS)
  if spec.smoothing == "add_k" and not spec.k > 0:
    raise ConfigError(f"add-k smoothing needs k > 0, got k={spec.k}; k=1 is Laplace.")
  if not spec.stupid_backoff_alpha > 0:
    raise ConfigError(f"stupid_backoff_alpha must be > 0, got {spec.stupid_backoff_alpha}.")
  parse_fallback(spec.discount_fallback)
  from lm_jax.ngram.prune import check_smoothing, parse_prune  # Deferred: imports numpy.

  if not spec.prune_entropy >= 0:
    raise ConfigError(f"prune_entropy must be >= 0 (0 = off), got {spec.prune_entropy}.")
  check_smoothing(
    spec.smoothing, parse_prune(spec.prune, spec.order) is not None, bool(spec.prune_entropy)
  )
  if spec.memory not in (None, ""):
    _check_out_of_core(spec)
  check_sampling(spec.temperature, spec.num_samples, spec.max_sample_len)
  if spec.dump_tokens and not spec.evaluate:
    raise ConfigError(
      "dump_tokens=True with evaluate=False: the dumps are valid's and test's scores; "
      "set evaluate=True or drop dump_tokens."
    )
  if spec.dump_tokens and spec.smoothing == "stupid_backoff":
    raise ConfigError(
      "dump_tokens=True with smoothing='stupid_backoff': its scores are not "
      "probabilities, so there is nothing to interpolate; use katz or kneser_ney."
    )
  return spec


def _check_out_of_core(spec: NGramSpec) -> None:
  """What a memory budget supports: Kneser-Ney of order >= 2, unpruned, from a word corpus."""
  from lm_jax.ngram.external import parse_memory  # Deferred: imports numpy.

  parse_memory(spec.memory)
  if spec.smoothing not in ("kneser_ney", "modified_kneser_ney"):
    raise ConfigError(
      f"memory={spec.memory!r} (out-of-core estimation) builds Kneser-Ney models, as lmplz; "
      f"smoothing={spec.smoothing!r} is estimated in memory: drop memory or use kneser_ney."
    )
  if spec.prune or spec.prune_entropy:
    raise ConfigError(
      f"memory={spec.memory!r} does not prune yet; estimate in memory (drop memory) to prune."
    )
  if spec.order < 2:
    raise ConfigError("memory needs order >= 2; a unigram model fits in memory: drop memory.")
  if spec.temp_dir and not os.path.isdir(spec.temp_dir):
    raise ConfigError(
      f"temp_dir={spec.temp_dir!r} is not a directory; create it or point temp_dir elsewhere."
    )
